"""`logsam transcribe`: transcribe (and translate) a dictation audio file with Whisper."""

from __future__ import annotations

from .common import add_verbose, print_json, terminal_progress
from .remote import add_server_options, transcribe_remote

HELP = "transcribe (and translate) a dictation audio file with Whisper"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "transcribe", help=HELP,
        description=HELP + ". Non-English speech is also translated to English (one encoder pass for both).")
    parser.add_argument("audio", help="audio file (WAV, FLAC, MP3, OGG, ...)")
    parser.add_argument("--model", default=None,
                        help="model id, e.g. whisper-large-v3, whisper-small, faster-whisper-small "
                             "(default: large-v3 on GPU, small on CPU, whichever is cached first)")
    parser.add_argument("--backend", choices=("auto", "openai", "faster"), default="auto",
                        help="openai-whisper (PyTorch) or faster-whisper (CTranslate2); auto: faster on CPU "
                             "when its model is cached")
    parser.add_argument("--language", default=None, help="spoken language code (de, en, ...); default: detect")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", default=None,
                        help="openai: fp32/fp16; faster: a CTranslate2 compute type (int8, float16, ...)")
    parser.add_argument("--no-translate", action="store_true", help="do not translate non-English speech")
    parser.add_argument("--json", action="store_true", help="print the transcript as JSON")
    add_server_options(parser)
    add_verbose(parser)
    parser.set_defaults(func=run)


def _format_timings(timings: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.2f} s" for key, value in timings.items())


def run(args) -> int:
    if args.server:
        return transcribe_remote(args)
    from ..asr import load_transcriber

    progress, close = terminal_progress(None if not args.json else False)
    try:
        transcriber = load_transcriber(args.model, device=args.device, backend=args.backend,
                                       precision=args.precision)
        transcript = transcriber.transcribe(args.audio, language=args.language,
                                            task_translate=not args.no_translate, progress=progress)
    finally:
        close()
    if args.json:
        out = transcript.to_dict()
        out.update(backend=transcriber.backend_name, device=transcriber.device,
                   language_given=args.language is not None, load_seconds=round(transcriber.load_seconds, 3),
                   encoder_passes=transcriber.last_encoder_passes)
        print_json(out)
        return 0
    how = "given" if args.language else "detected"
    print(f"language:    {transcript.language} ({how})")
    print(f"transcript:  {transcript.text}")
    if transcript.translation is not None:
        print(f"translation: {transcript.translation}")
    print(f"model:       {transcript.model_id} ({transcriber.backend_name}, {transcriber.device}; "
          f"loaded in {transcriber.load_seconds:.2f} s)")
    print(f"timings:     {_format_timings(transcript.timings)}")
    return 0
