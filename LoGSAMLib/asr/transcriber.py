"""Load a Whisper model from the cache and turn dictation audio into a Transcript."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, load_audio, speech_seconds, voice_activity
from ..errors import LoGSAMError, NoSpeechError
from ..progress import ProgressCallback, no_progress
from ..types import Transcript
from .windows import DecodeSettings, normalize_language, run_windows, voiced_lookup

log = logging.getLogger(__name__)

BACKENDS = ("auto", "openai", "faster")
MIN_SPEECH_SECONDS = 0.3  # less voice activity than this is "no speech"

# Model-choice order when none is given. large-v3 is the published method's model (the best
# German->English translation) but costs seconds per 30 s window on a CPU; CPU users get small
# (multilingual, translates, several times cheaper; see benchmarks/asr_bench.py) unless they
# choose otherwise with --model.
GPU_PREFERENCE = ("whisper-large-v3", "whisper-medium", "whisper-small", "whisper-base", "whisper-tiny")
CPU_PREFERENCE = ("whisper-small", "whisper-medium", "whisper-base", "whisper-large-v3", "whisper-tiny")


# ---------------------------------------------------------------------------- model ids


def whisper_name(model_id: str) -> str:
    """"large-v3" for whisper-large-v3 or faster-whisper-large-v3 (registry config first)."""
    from ..models import get_spec

    name = get_spec(model_id).config.get("whisper_name")
    if name:
        return str(name)
    for prefix in ("faster-whisper-", "whisper-"):
        if model_id.startswith(prefix):
            return model_id[len(prefix):]
    return model_id


def _kind(model_id: str) -> str:
    """"faster" for a CTranslate2 folder, "openai" for an official checkpoint."""
    from ..models import get_spec

    spec = get_spec(model_id)
    if spec.stage != "asr":
        raise LoGSAMError(f"{model_id!r} is not a speech-recognition model (stage {spec.stage!r}).")
    backend = spec.config.get("backend")
    if backend:
        return "faster" if backend == "faster-whisper" else "openai"
    return "faster" if model_id.startswith("faster-whisper-") else "openai"


def _counterpart(model_id: str, kind: str) -> str:
    name = whisper_name(model_id)
    return f"faster-whisper-{name}" if kind == "faster" else f"whisper-{name}"


def _cached(model_id: str) -> bool:
    from ..models import is_cached

    try:
        return is_cached(model_id)
    except LoGSAMError:  # unknown id
        return False


def can_translate(model_id: str) -> bool:
    """large-v3-turbo was fine-tuned on transcription only: it cannot translate."""
    from ..models import get_spec

    config = get_spec(model_id).config
    if "can_translate" in config:
        return bool(config["can_translate"])
    return "turbo" not in whisper_name(model_id)


def default_asr_model(device: Any = None) -> str:
    """The model to use when none is given: the first cached of a device-dependent order.

    GPU: whisper-large-v3 (the published method's model) first. CPU: whisper-small first,
    a practical speed/accuracy compromise (see ``benchmarks/asr_bench.py``). A faster-whisper
    conversion counts as cached for its size. With nothing cached, the first choice is
    returned so that the error says what to download.
    """
    if device is None:
        from ..device import choose_device

        device = choose_device(None)
    kind = str(getattr(device, "type", device))
    order = GPU_PREFERENCE if kind.startswith(("cuda", "mps")) else CPU_PREFERENCE
    for model_id in order:
        if _cached(model_id) or _cached(_counterpart(model_id, "faster")):
            return model_id
    return order[0]


def decode_settings_for(model_id: str) -> DecodeSettings:
    """Whisper's decoding defaults, unless the registry entry's ``config.decode`` overrides some.

    Only the tiny random-weight test models use this: Whisper's temperature fallback would
    retry every window six times on their meaningless output.
    """
    from dataclasses import fields

    from ..models import get_spec

    overrides = dict(get_spec(model_id).config.get("decode") or {})
    known = {f.name for f in fields(DecodeSettings)}
    unknown = set(overrides) - known
    if unknown:
        raise LoGSAMError(f"Registry entry {model_id!r}: unknown decode option(s) {', '.join(sorted(unknown))}.")
    if "temperatures" in overrides:
        overrides["temperatures"] = tuple(float(t) for t in overrides["temperatures"])
    return DecodeSettings(**overrides)


# ---------------------------------------------------------------------------- loading


class Transcriber:
    """A loaded Whisper model. ``transcribe`` may be called many times (not concurrently)."""

    def __init__(self, backend: Any, model_id: str, backend_name: str, device: str,
                 translate_ok: bool, settings: DecodeSettings, load_seconds: float) -> None:
        self.backend = backend
        self.model_id = model_id
        self.backend_name = backend_name
        self.device = device
        self.can_translate = translate_ok
        self.settings = settings
        self.load_seconds = load_seconds
        self.last_windows = 0  # windows and encoder passes of the latest transcription
        self.last_encoder_passes = 0

    def __repr__(self) -> str:
        return f"Transcriber({self.model_id!r}, backend={self.backend_name!r}, device={self.device!r})"

    def transcribe(self, audio: np.ndarray | str | Path, language: str | None = None, task_translate: bool = True,
                   progress: ProgressCallback | None = None, cancel: Any = None) -> Transcript:
        """Transcribe speech and, when it is not English, translate it to English.

        ``audio``: a file (anything ffmpeg reads) or 16 kHz mono float32 samples.
        ``language``: a code or name to skip detection. Raises :class:`NoSpeechError` when
        the audio holds only silence or noise, rather than returning invented text.
        """
        progress = progress or no_progress
        cancel_check = _cancel_checker(cancel)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if isinstance(audio, (str, Path)):
            t0 = time.perf_counter()
            audio = load_audio(audio)
            timings["load_audio"] = time.perf_counter() - t0
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        language = normalize_language(language, self.backend.num_languages)
        if not self.backend.multilingual:
            if language not in (None, "en"):
                raise LoGSAMError(f"{self.model_id} understands English only; use a multilingual model "
                                  f"for {language!r}.")
            language = "en"
        if task_translate and language is not None:
            self._check_translatable(language)

        t0 = time.perf_counter()
        mask = voice_activity(audio, SAMPLE_RATE)
        timings["voice_activity"] = time.perf_counter() - t0
        if speech_seconds(audio, SAMPLE_RATE) < MIN_SPEECH_SECONDS:
            raise NoSpeechError("No speech detected in the audio (only silence or steady noise); check the "
                                "microphone and record the dictation again.")

        t0 = time.perf_counter()
        mel = self.backend.mel(audio)
        content_frames = int(mel.shape[-1]) - 3000
        timings["features"] = time.perf_counter() - t0

        from whisper.audio import pad_or_trim

        result = run_windows(
            self.backend, mel, content_frames, language=language, translate=task_translate,
            settings=self.settings, voiced=voiced_lookup(mask, 0.03), timings=timings,
            check_language=self._check_translatable if task_translate else None,
            progress=progress, cancel=cancel_check, pad=pad_or_trim,
        )
        timings["total"] = time.perf_counter() - start
        log.debug("asr %s: %d windows, %d encoder passes, %s", self.model_id, result.windows,
                  result.encoder_passes, {k: round(v, 3) for k, v in timings.items()})
        no_speech = min(result.no_speech_probs) if result.no_speech_probs else None
        if not result.text:
            detail = f" (Whisper no-speech probability {no_speech:.2f})" if no_speech is not None else ""
            raise NoSpeechError(f"No speech detected in the audio{detail}; nothing was transcribed. Check the "
                                "microphone and record the dictation again.")
        self.last_windows = result.windows
        self.last_encoder_passes = result.encoder_passes
        return Transcript(
            text=result.text, language=result.language, translation=result.translation,
            segments=result.segments, translated_segments=result.translated_segments, model_id=self.model_id,
            timings={k: round(v, 4) for k, v in timings.items()}, no_speech_probability=no_speech,
        )

    def _check_translatable(self, language: str) -> None:
        if language != "en" and not self.can_translate:
            raise LoGSAMError(
                f"{self.model_id} cannot translate (large-v3-turbo was trained without the translate task), "
                f"so the {language!r} dictation would reach the English NLP untranslated. Use whisper-large-v3 "
                "(or medium/small), or transcribe only with --no-translate."
            )


def _cancel_checker(cancel: Any) -> Callable[[], None] | None:
    """Accept a CancelToken (``.check()``), a callable returning True to cancel, or None."""
    if cancel is None:
        return None
    if hasattr(cancel, "check"):
        return cancel.check

    def check() -> None:
        if cancel():
            from ..errors import Cancelled

            raise Cancelled("Cancelled by the user; no output was written.")

    return check


def load_transcriber(model_id: str | None = "whisper-large-v3", device: Any = None, backend: str = "auto",
                     precision: str | None = None, settings: DecodeSettings | None = None) -> Transcriber:
    """Load a Whisper model from the cache.

    ``model_id``: a registry id (whisper-<size> or faster-whisper-<size>); None picks
    :func:`default_asr_model`. ``backend``: "openai" (PyTorch, official checkpoint),
    "faster" (CTranslate2 folder faster-whisper-<size>) or "auto" (faster on CPU when its
    folder is cached, else openai). ``precision``: openai: fp32/fp16/bf16 (default fp16 on
    CUDA); faster: a CTranslate2 compute type (default int8 on CPU, float16 on CUDA).
    ``settings``: decoding options (default: Whisper's, see :func:`decode_settings_for`).
    Missing model files raise ModelMissingError saying how to get them.
    """
    from ..device import choose_device
    from ..models import model_path

    if backend not in BACKENDS:
        raise LoGSAMError(f"Unknown ASR backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    torch_device = choose_device(device)
    model_id = model_id or default_asr_model(torch_device)
    kind = _kind(model_id)
    if backend == "auto":
        backend = kind
        if kind == "openai" and torch_device.type == "cpu" and _cached(_counterpart(model_id, "faster")):
            backend = "faster"
    if backend != kind:
        model_id = _counterpart(model_id, backend)
    settings = settings or decode_settings_for(model_id)

    t0 = time.perf_counter()
    path = model_path(model_id)
    if backend == "openai":
        from .openai_backend import OpenAIWhisperBackend, load_whisper_checkpoint

        # Whisper decodes in fp32 or fp16 only; reduced precision is a GPU matter (as in whisper itself).
        fp16 = torch_device.type == "cuda" and precision not in ("fp32", "float32")
        if precision not in (None, "fp32", "float32") and not fp16:
            log.warning("Whisper runs in fp32 on %s (precision %r ignored).", torch_device.type, precision)
        engine: Any = OpenAIWhisperBackend(load_whisper_checkpoint(path, torch_device), fp16=fp16)
    else:
        from .faster_backend import CTranslate2Backend

        if torch_device.type not in ("cpu", "cuda"):
            raise LoGSAMError(f"The faster-whisper backend runs on cpu or cuda, not {torch_device.type}; "
                              "use --backend openai.")
        engine = CTranslate2Backend(path, device=torch_device.type, precision=precision)
    load_seconds = time.perf_counter() - t0
    return Transcriber(engine, model_id, backend, str(torch_device), can_translate(model_id), settings,
                       load_seconds)
