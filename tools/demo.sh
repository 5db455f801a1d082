#!/usr/bin/env bash
# `make demo`: the main job on a sample MRI with a sample spoken dictation.
#  - sample MRI: the MNI152 brain (shipped in nilearn) with a planted left frontal glioma-like lesion
#  - sample dictation: German speech made by espeak-ng, translated by Whisper
# Real weights: downloaded explicitly here on first use (checksums verified). Offline, point
# LOGSAM_HOME at a folder of weights, e.g. the project's tiny test checkpoints:
#   LOGSAM_HOME=build/tiny-models make demo   (after `make tiny-models`)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
LOGSAM="$VENV/bin/logsam"
OUT=${DEMO_DIR:-build/demo}
mkdir -p "$OUT"

"$PY" -m LoGSAMLib.testing.demo_data "$OUT"

# Explicit downloads (a cached, verified model is not fetched again).
models=$("$PY" -m LoGSAMLib.testing.demo_data --models)
for id in $models; do
  "$LOGSAM" models download "$id"
done

outputs=(-o "$OUT/tumor.seg.nrrd" -o "$OUT/tumor.nii.gz" --report "$OUT/report.json")
set +e -x
"$LOGSAM" run "$OUT/sample_t1.nii.gz" --audio "$OUT/dictation_de.wav" "${outputs[@]}"
status=$?
set -e +x
# Exit 3 = nothing affirmed. With the tiny random-weight test models that is expected (their
# Whisper cannot understand speech): say so and run the rest of the pipeline on the text.
if [ "$status" -eq 3 ] && grep -qs "tiny random-weight" "${LOGSAM_HOME:-/nonexistent}/registry.json"; then
  echo "demo: the tiny random-weight Whisper cannot understand speech; running on the dictation's text."
  set -x
  "$LOGSAM" run "$OUT/sample_t1.nii.gz" --text "$(cat "$OUT/dictation_en.txt")" "${outputs[@]}"
  exit $?
fi
exit "$status"
