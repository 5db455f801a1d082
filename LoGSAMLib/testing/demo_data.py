"""Sample inputs for `make demo`: an MRI with a planted lesion and a spoken German dictation.

``python -m LoGSAMLib.testing.demo_data DIR`` writes ``DIR/sample_t1.nii.gz`` (MNI152 T1
with a left frontal glioma-like lesion), ``DIR/sample_truth.nii.gz`` (its mask),
``DIR/dictation_de.wav`` (espeak-ng), ``DIR/dictation_de.txt`` and its English translation
``DIR/dictation_en.txt`` (for a run on text, e.g. with the tiny test models, whose random
Whisper cannot understand speech).
``--models`` prints the model ids the default pipeline needs on this machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DICTATION_DE = (
    "Große, randständig kontrastmittelaufnehmende Raumforderung links frontal, "
    "vereinbar mit einem Glioblastom. Kein Anhalt für ein Meningeom."
)
DICTATION_EN = (
    "Large, rim-enhancing mass in the left frontal lobe, consistent with a glioblastoma. "
    "No evidence of a meningioma."
)


def write_demo_inputs(directory: Path) -> dict[str, Path]:
    from ..volume import write_volume
    from .phantoms import LesionSpec, make_phantom
    from .speech import speak

    directory.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=16.0, side="left", region="frontal")],
                           spacing=(1.0, 1.0, 1.0), seed=7)
    paths = {
        "image": directory / "sample_t1.nii.gz",
        "truth": directory / "sample_truth.nii.gz",
        "audio": directory / "dictation_de.wav",
        "text": directory / "dictation_de.txt",
        "text_en": directory / "dictation_en.txt",
    }
    write_volume(phantom.volume, paths["image"])
    write_volume(phantom.mask, paths["truth"])
    speak(DICTATION_DE, paths["audio"], voice="de")
    paths["text"].write_text(DICTATION_DE + "\n", encoding="utf-8")
    paths["text_en"].write_text(DICTATION_EN + "\n", encoding="utf-8")
    return paths


def required_models() -> list[str]:
    """Model ids the default pipeline uses on this machine (device-dependent choices)."""
    from ..pipeline import Pipeline

    pipe = Pipeline()
    segmenter = {"medsam": "medsam-vit-b", "litemedsam": "litemedsam"}[pipe.segmenter_name]
    return [pipe.whisper_model, "groundingdino-swint-ogc", "bert-base-uncased", "logsam-lora-dino", segmenter]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, nargs="?")
    parser.add_argument("--models", action="store_true", help="print the model ids the demo needs")
    args = parser.parse_args(argv)
    if args.models:
        print(" ".join(required_models()))
        return 0
    if args.directory is None:
        parser.error("give an output directory")
    for name, path in write_demo_inputs(args.directory).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
