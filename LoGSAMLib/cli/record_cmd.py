"""`logsam record`: record a dictation from the microphone to a WAV file."""

from __future__ import annotations

import sys
import threading
from typing import Any

from ..errors import LoGSAMError
from .common import add_verbose, print_json

HELP = "record a dictation from the microphone to a WAV file"
DEFAULT_MAX_SECONDS = 300.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "record", help=HELP, description=HELP + ". Press Enter (or Ctrl-C) to stop.")
    parser.add_argument("-o", "--output", help="WAV file to write (16 kHz mono)")
    parser.add_argument("--device", help="input device index or name (see --list-devices)")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"stop after this many seconds (default: on Enter, at most {DEFAULT_MAX_SECONDS:.0f} s)")
    parser.add_argument("--list-devices", action="store_true", help="list the audio inputs and exit")
    parser.add_argument("--json", action="store_true", help="with --list-devices: print JSON")
    add_verbose(parser)
    parser.set_defaults(func=run)


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def _list_devices(as_json: bool) -> int:
    from ..audio import list_input_devices

    devices = list_input_devices()
    if as_json:
        print_json(devices)
        return 0
    if not devices:
        print("No audio input devices found.")
        return 0
    for d in devices:
        mark = "*" if d["default"] else " "
        print(f"{mark} {d['index']:3d}  {d['name']}  ({d['hostapi']}, {d['channels']} ch, {d['samplerate']:.0f} Hz)")
    print("* = default input; choose one with --device INDEX")
    return 0


def _meter(elapsed: float, level: float, level_db: float, width: int = 30) -> str:
    filled = 0 if level_db == float("-inf") else int(round(width * min(1.0, max(0.0, (level_db + 60.0) / 60.0))))
    warn = "  CLIPPING" if level >= 0.99 else ""
    db = "  -inf" if level_db == float("-inf") else f"{level_db:6.1f}"
    minutes, seconds = divmod(elapsed, 60.0)
    return f"\r● {int(minutes):02d}:{seconds:04.1f} [{'#' * filled}{'-' * (width - filled)}] {db} dBFS{warn}  "


def _watch_enter(stop: threading.Event) -> None:
    """Set ``stop`` when a line arrives on stdin; end of input (a closed pipe) does not stop."""

    def reader() -> None:
        try:
            line = sys.stdin.readline()
        except (OSError, ValueError):
            return
        if line:
            stop.set()

    threading.Thread(target=reader, name="logsam-record-enter", daemon=True).start()


def record(recorder: Any, stop: threading.Event, show_meter: bool, message: str = "") -> Any:
    """Run ``recorder`` until ``stop`` is set, its maximum length is reached, or Ctrl-C.

    ``message`` is printed once the input is open (so a device error is not preceded by it).
    """
    recorder.start()
    if message:
        print(message, file=sys.stderr, flush=True)
    try:
        while not stop.is_set() and not recorder.wait(0.1):
            if show_meter:
                sys.stderr.write(_meter(recorder.elapsed, recorder.level, recorder.level_db))
                sys.stderr.flush()
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the recording; the audio is kept
    finally:
        audio = recorder.stop()
        if show_meter:
            sys.stderr.write("\n")
    return audio


def run(args) -> int:
    if args.list_devices:
        return _list_devices(args.json)
    if not args.output:
        raise LoGSAMError("Give the WAV file to write with -o/--output (or use --list-devices).")
    if args.seconds is not None and args.seconds <= 0:
        raise LoGSAMError("--seconds must be positive.")
    from ..audio import SAMPLE_RATE, Recorder, check_signal, dbfs, write_wav

    max_seconds = args.seconds if args.seconds is not None else DEFAULT_MAX_SECONDS
    recorder = Recorder(device=_device(args.device), max_seconds=max_seconds)
    stop = threading.Event()
    interactive = sys.stderr.isatty()
    if args.seconds is None:
        _watch_enter(stop)
        message = f"Recording... press Enter (or Ctrl-C) to stop (at most {max_seconds:.0f} s)."
    else:
        message = f"Recording {max_seconds:g} s... (Ctrl-C stops early)"
    audio = record(recorder, stop, show_meter=interactive, message=message)
    check_signal(audio, SAMPLE_RATE)
    write_wav(args.output, audio, SAMPLE_RATE)
    peak = float(abs(audio).max())
    print(f"wrote {args.output} ({audio.size / SAMPLE_RATE:.1f} s, peak {dbfs(peak):.1f} dBFS)")
    if recorder.overflows:
        print(f"warning: {recorder.overflows} input overflows (dropped audio); close other audio programs "
              "if the recording sounds choppy.", file=sys.stderr)
    return 0
