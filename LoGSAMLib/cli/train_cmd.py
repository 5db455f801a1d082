"""`logsam train`: LoRA-adapt Grounding DINO on your own data (the published LoGSAM recipe by default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from .common import add_verbose, print_json, terminal_progress

HELP = "LoRA-adapt Grounding DINO on your own data"

EPILOG = """\
examples:
  logsam train --data brisc2025/ --out my-adapter
      BRISC 2025 folder (images + masks, class in the file name; train split), published recipe
  logsam train --coco train.json --images imgs/ --out my-adapter --config my.yaml --epochs 20
  logsam train --data brisc2025/ --out my-adapter --resume
      continue an interrupted run from its last finished epoch
  logsam train --out my-adapter --export-pth logsam_lora_dino.pth
      write an existing adapter in the published .pth layout

use the adapter: logsam run --adapter my-adapter ...;  logsam evaluate --detector-only --adapter my-adapter ...
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help=HELP, description=HELP, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="DIR", type=Path, help="BRISC 2025 style folder (images + masks)")
    data.add_argument("--split", choices=("train", "test", "all"), default="train",
                      help="BRISC split to train on (default: train; keep test for logsam evaluate)")
    data.add_argument("--coco", metavar="JSON", type=Path, help="COCO detection file instead of --data")
    data.add_argument("--images", metavar="DIR", type=Path, help="image folder of the COCO file")
    data.add_argument("--val-fraction", type=float, metavar="F",
                      help="share of images held out for validation, per class (default 0.2; 0 = none)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="ADAPTER_DIR", type=Path, required=True,
                     help="folder for the adapter (PEFT), training.json and checkpoints")
    out.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    out.add_argument("--export-pth", metavar="FILE", type=Path,
                     help="also write the adapter in the published LoGSAM .pth layout")
    out.add_argument("--json", action="store_true", help="print the result as JSON")
    recipe = parser.add_argument_group("recipe (defaults: the published one; see the README)")
    recipe.add_argument("--config", metavar="CFG", type=Path, help="YAML or JSON file of training settings")
    recipe.add_argument("--epochs", type=int, metavar="N", help="default 130")
    recipe.add_argument("--batch-size", type=int, metavar="N", help="default 8")
    recipe.add_argument("--grad-accum", type=int, metavar="N", help="batches per optimiser step (small GPUs)")
    recipe.add_argument("--lr", type=float, metavar="LR", help="peak learning rate (default 2e-4)")
    recipe.add_argument("--rank", type=int, metavar="R", help="LoRA rank (default 64)")
    recipe.add_argument("--alpha", type=float, metavar="A", help="LoRA alpha (default: = rank, as published)")
    recipe.add_argument("--seed", type=int, metavar="S", help="seed of the split, LoRA init and data order")
    recipe.add_argument("--image-size", type=int, metavar="PX",
                        help="shorter image side (default 800, as the detector)")
    recipe.add_argument("--base-model", metavar="ID", help="registry id of the base detector")
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    runtime.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="default: fp16 autocast on CUDA")
    runtime.add_argument("--workers", type=int, metavar="N", help="data loading processes (default 0)")
    parser.set_defaults(func=run)


def _samples(args) -> tuple[list, dict]:
    from ..datasets import detection_samples_from_brisc, load_brisc, load_coco

    if args.data and (args.coco or args.images):
        raise InputError("Give either --data DIR or --coco JSON --images DIR, not both.")
    if args.data:
        samples = detection_samples_from_brisc(load_brisc(args.data, split=args.split))
        return samples, {"source": "brisc", "path": str(args.data.resolve()), "split": args.split}
    if args.coco and args.images:
        samples = load_coco(args.coco, args.images)
        return samples, {"source": "coco", "path": str(args.coco.resolve()), "images": str(args.images.resolve())}
    raise InputError("Training needs data: --data DIR (BRISC 2025 layout) or --coco JSON --images DIR.")


def _config(args):
    from ..training import load_config

    return load_config(args.config, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                       lr=args.lr, rank=args.rank, alpha=args.alpha, seed=args.seed, short_side=args.image_size,
                       val_fraction=args.val_fraction, base_model=args.base_model, device=args.device,
                       precision=args.precision, num_workers=args.workers)


def _export(folder: Path, path: Path) -> Path:
    from ..training import export_pth

    written = export_pth(folder, path)
    print(f"published-layout adapter: {written}", file=sys.stderr)
    return written


def run(args) -> int:
    if not (args.data or args.coco or args.images) and args.export_pth and not args.resume:
        _export(args.out, args.export_pth)  # export only
        return 0
    from ..datasets import split_cases
    from ..training import Trainer

    config = _config(args)
    samples, data_info = _samples(args)
    train, val = split_cases(samples, config.val_fraction, config.seed) if config.val_fraction else (samples, [])
    data_info.update(val_fraction=config.val_fraction, seed=config.seed)
    progress, close = terminal_progress()

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    trainer = Trainer(config, train, val, args.out, data_info=data_info, progress=progress, echo=echo,
                      resume=args.resume)
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        print(f"logsam train: interrupted; the last finished epoch is kept in {args.out}; continue with --resume.",
              file=sys.stderr)
        return 130
    finally:
        close()
    exported = _export(args.out, args.export_pth) if args.export_pth else None
    best = next((r for r in result.history if r.epoch == result.best_epoch), None)
    summary = {
        "adapter": str(args.out), "adapter_epoch": result.best_epoch, "epochs": len(result.history),
        "classes": result.classes, "trainable_parameters": result.parameters.trainable,
        "total_parameters": result.parameters.total, "trainable_fraction": result.parameters.fraction,
        "val_recall": best.mean_recall if best else None, "val_map": best.map if best else None,
        "published_pth": str(exported) if exported else None,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"adapter: {args.out} (epoch {result.best_epoch} of {config.epochs}; {result.parameters})")
        print(f"use it:  logsam run --adapter {args.out} ...   |   "
              f"logsam evaluate --detector-only --adapter {args.out} ...")
    return 0
