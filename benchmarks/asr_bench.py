"""Speech recognition: the published two-pass Whisper use vs our one-encoder-pass loop vs faster-whisper.

For each Whisper size, on ``seconds`` of German espeak-ng speech (one 30 s window):

- ``openai-whisper x2 (published)``: ``model.transcribe(task="transcribe")`` then
  ``model.transcribe(task="translate")``, as the published LoGSAM code does: two full runs,
  two encoder passes;
- ``... language detected``: the same, letting each call detect the language (one more
  encoder pass per call, as when the language is not given);
- ``one encoder pass (ours, openai)``: :class:`LoGSAMLib.asr.Transcriber` on the same PyTorch
  model: one encoder pass, language detection from it, transcript and translation decodes;
- ``one encoder pass (ours, faster-whisper int8)``: the same loop on CTranslate2 (the model
  converted with :mod:`LoGSAMLib.asr.convert`, int8 compute).

Fairness: real-size architectures with random weights (same compute as the trained models);
random weights decode garbage of random length, so every decode is forced to exactly
``tokens`` tokens (end-of-text suppressed, ``sample_len`` cap, one temperature, no
timestamps) in every variant; the language is given ("de") except in the "detected" row.
Torch and CTranslate2 use the same number of threads. On a CPU the speed-up column compares
CPU seconds (``time.process_time``), which a CPU shared with other jobs does not distort;
the median column is wall time. On a GPU the speed-up compares wall time.

``python -m benchmarks.asr_bench [--sizes tiny base small] [--encoder-only medium large-v3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import log, measure, print_table, ratio, row, usable_cores


def measure_cpu(fn: Any, repeats: int, device: str) -> dict[str, Any]:
    """``common.measure`` (wall time, memory) plus the median CPU seconds of the timed calls."""
    cpu: list[float] = []

    def timed() -> None:
        start = time.process_time()
        fn()
        cpu.append(time.process_time() - start)

    timing = measure(timed, repeats=repeats, warmup=1, device=device)
    timing["cpu_s"] = statistics.median(cpu[1:])
    return timing

PUBLISHED = "openai-whisper x2 (published)"


def _speech(seconds: float) -> Any:
    from LoGSAMLib.testing.speech import speak_for

    return speak_for(seconds, voice="de")


def _models(dims: dict[str, int], folder: Path, threads: int, device: str) -> tuple[Any, Any]:
    """A random PyTorch Whisper and its CTranslate2 conversion (float16 stored, int8/float16 compute)."""
    from LoGSAMLib.asr.convert import convert_checkpoint
    from LoGSAMLib.asr.faster_backend import CTranslate2Backend
    from LoGSAMLib.testing.tiny_whisper import checkpoint, random_model

    model = random_model(dims, seed=0).to(device)
    convert_checkpoint(checkpoint(model.cpu()), folder, quantization="float16")
    model.to(device)
    return model, CTranslate2Backend(folder, device=device, threads=threads)


def _transcriber(backend: Any, name: str, kind: str, device: str, settings: Any) -> Any:
    from LoGSAMLib.asr.transcriber import Transcriber

    return Transcriber(backend, name, kind, device, True, settings, 0.0)


def bench_size(size: str, dims: dict[str, int], audio: Any, tokens: int, repeats: int, device: str,
               threads: int, weights: str) -> list[dict[str, Any]]:
    import torch
    from whisper.tokenizer import get_tokenizer

    from LoGSAMLib.asr import DecodeSettings
    from LoGSAMLib.asr.openai_backend import OpenAIWhisperBackend
    from LoGSAMLib.asr.windows import suppressed_tokens

    fp16 = device == "cuda"
    settings = DecodeSettings(temperatures=(0.0,), sample_len=tokens, suppress_eot=True, without_timestamps=True)
    seconds = audio.size / 16000
    unit = f"{seconds:g} s audio"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log(f"asr {size}: building the models")
        model, ct2 = _models(dims, Path(tmp) / "ct2", threads, device)
        tokenizer = get_tokenizer(True, num_languages=model.num_languages)
        # Exactly `tokens` text tokens per decode, one window: no end-of-text, no timestamps.
        options = dict(temperature=0.0, sample_len=tokens, suppress_tokens=suppressed_tokens(tokenizer, settings),
                       without_timestamps=True, fp16=fp16, condition_on_previous_text=False, verbose=None)

        def published(language: str | None = "de") -> None:
            with torch.no_grad():
                model.transcribe(audio, task="transcribe", language=language, **options)
                model.transcribe(audio, task="translate", language=language, **options)

        ours = _transcriber(OpenAIWhisperBackend(model, fp16), f"whisper-{size}", "openai", device, settings)
        fast = _transcriber(ct2, f"faster-whisper-{size}", "faster", device, settings)
        variants = [
            (PUBLISHED, published, "two full runs: 2 encoder passes"),
            (f"{PUBLISHED}, language detected", lambda: published(None), "detect + decode, x2: 4 encoder passes"),
            ("one encoder pass (ours, openai)", lambda: ours.transcribe(audio, language="de"),
             "1 encoder pass for transcript + translation"),
            (f"one encoder pass (ours, faster-whisper {ct2.compute_type})",
             lambda: fast.transcribe(audio, language="de"), "same loop on CTranslate2: 1 encoder pass"),
        ]
        # Count encoder passes (a hook on the PyTorch encoder, a wrapper on CTranslate2's) to
        # show that every variant did the work its name says.
        passes = [0]
        model.encoder.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
        ct2_encode = ct2.encode

        def counted_encode(window: Any) -> Any:
            passes[0] += 1
            return ct2_encode(window)

        ct2.encode = counted_encode
        base = None
        for name, fn, note in variants:
            log(f"asr {size}: {name}")
            passes[0] = 0
            timing = measure_cpu(fn, repeats, device)
            per_run = passes[0] / (repeats + 1)
            base = base if base is not None else _cost(timing, device)
            rows.append(row("asr", f"{size}: {name}", unit=unit, kind="measured", weights=weights,
                            ratio=ratio(base, _cost(timing, device)), vs=PUBLISHED if name != PUBLISHED else None,
                            encoder_passes=per_run,
                            note=f"{note} (counted: {per_run:g}); CPU {timing['cpu_s']:.2f} s; {tokens} tokens "
                                 f"per decode; {threads} threads", **timing))
    return rows


def bench_encoder(size: str, dims: dict[str, int], repeats: int, device: str, threads: int,
                  weights: str) -> list[dict[str, Any]]:
    """One 30 s encoder pass: the cost the single-pass loop saves per window.

    Memory-lean for large-v3 (one engine in memory at a time): built in fp16, converted,
    then timed in PyTorch (fp32 on CPU), released, and timed in CTranslate2.
    """
    import gc

    import torch

    from LoGSAMLib.asr.convert import convert_checkpoint
    from LoGSAMLib.asr.faster_backend import CTranslate2Backend
    from LoGSAMLib.testing.tiny_whisper import checkpoint, random_model

    rows = []
    mel = torch.randn(dims["n_mels"], 3000)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"asr {size}: building the models (encoder only)")
        model = random_model(dims, seed=0, dtype=torch.float16)
        convert_checkpoint(checkpoint(model), Path(tmp) / "ct2", quantization="float16")
        dtype = torch.float16 if device == "cuda" else torch.float32
        holder = {"model": model.to(device, dtype)}  # released before CTranslate2 loads
        del model

        def pytorch() -> None:
            with torch.no_grad():
                holder["model"].encoder(mel[None].to(device, dtype))

        log(f"asr {size}: encoder pass, openai-whisper")
        timing = measure_cpu(pytorch, repeats, device)
        base = _cost(timing, device)
        rows.append(row("asr", f"{size}: encoder pass, openai-whisper", unit="30 s window", kind="measured",
                        weights=weights, ratio=1.0, note=f"CPU {timing['cpu_s']:.2f} s; {threads} threads",
                        **timing))
        holder.clear()
        gc.collect()
        ct2 = CTranslate2Backend(Path(tmp) / "ct2", device=device, threads=threads)
        name = f"{size}: encoder pass, CTranslate2 {ct2.compute_type}"
        log(f"asr {name}")
        timing = measure_cpu(lambda: ct2.encode(mel), repeats, device)
        rows.append(row("asr", name, unit="30 s window", kind="measured", weights=weights,
                        ratio=ratio(base, _cost(timing, device)), vs=f"{size}: encoder pass, openai-whisper",
                        note=f"CPU {timing['cpu_s']:.2f} s; {threads} threads", **timing))
    return rows


def _cost(timing: dict[str, Any], device: str) -> float:
    """What speed-ups compare: CPU seconds on a CPU, wall seconds on a GPU."""
    return timing["median_s"] if device == "cuda" else timing["cpu_s"]


def run(seconds: float = 15.0, sizes: tuple[str, ...] = ("tiny", "base", "small", "large-v3"), repeats: int = 3,
        tokens: int = 64, encoder_only: tuple[str, ...] = (), quick: bool = False,
        device: str = "cpu", threads: int | None = None) -> list[dict[str, Any]]:
    """Rows for ``benchmarks.run``; ``quick`` uses the tiny test architecture on 5 s of speech.

    ``threads``: CPU threads for both engines (default: the usable cores). On a CPU shared with
    other jobs, 1 thread gives stable numbers (spinning thread pools degrade badly under load).
    """
    import torch

    from LoGSAMLib.testing.tiny_whisper import REAL_DIMS, tiny_dims

    threads = threads or usable_cores()
    torch.set_num_threads(threads)
    if quick:
        audio = _speech(5.0)
        return bench_size("tiny-test", tiny_dims(80, 51865), audio, tokens=8, repeats=1, device=device,
                          threads=threads, weights="tiny")
    audio = _speech(seconds)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        # The large sizes take minutes per variant on a CPU: one timed call after the warm-up.
        timed = 1 if device == "cpu" and size.startswith(("medium", "large")) else repeats
        rows += bench_size(size, REAL_DIMS[size], audio, tokens, timed, device, threads, "random")
    for size in encoder_only:
        rows += bench_encoder(size, REAL_DIMS[size], repeats, device, threads, "random")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="*", default=["tiny", "base", "small", "large-v3"])
    parser.add_argument("--encoder-only", nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both engines")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.seconds, tuple(args.sizes), args.repeats, args.tokens, tuple(args.encoder_only), args.quick,
               args.device, args.threads)
    print_table(rows, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
