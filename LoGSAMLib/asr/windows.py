"""The Whisper long-form loop shared by both backends: 30 s windows, ONE encoder pass each.

For every window the encoder runs once; the spoken-language transcript and, for
non-English speech, the English translation are decoded from that same encoder output
(the published LoGSAM code ran the whole model twice, once per task). The window advance
("seek") follows Whisper's rule on the transcript's timestamp tokens: a window ending in
an unfinished segment is resumed from its last complete timestamp.

A backend supplies ``encode``, ``detect_language`` and ``decode`` (see :class:`Backend`);
tokens come from openai-whisper's tokenizer, whose ids both model formats share. A backend
that also has ``decode_batch`` decodes the transcript and the translation together, as one
batch of two sequences: the decoder weights are read once per step for both. On a 2-core CPU
that costs about 0.8x of two separate decodes (the per-step overhead and the cross-attention
keys per row remain); a GPU, where a step is launch-bound, should gain more.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import LoGSAMError
from ..progress import ProgressCallback, no_progress
from ..types import TranscriptSegment

N_FRAMES = 3000  # mel frames in a 30 s window (10 ms hop)
FRAMES_PER_SECOND = 100
INPUT_STRIDE = 2  # mel frames per encoder position
TIME_PRECISION = INPUT_STRIDE / FRAMES_PER_SECOND  # 0.02 s per timestamp token


@dataclass(frozen=True)
class DecodeSettings:
    """Decoding options; the defaults are openai-whisper ``transcribe()``'s."""

    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    beam_size: int | None = None  # None: greedy at temperature 0
    best_of: int = 5  # samples per temperature > 0
    sample_len: int | None = None  # max tokens per window; None: n_text_ctx // 2 (224)
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    max_initial_timestamp: float = 1.0
    without_timestamps: bool = False  # faster, but one segment per 30 s window
    # Benchmarks only: never end a window early, so every run decodes exactly sample_len tokens.
    suppress_eot: bool = False


@dataclass
class Decoded:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float = 0.0


class Backend(Protocol):
    multilingual: bool
    num_languages: int
    n_text_ctx: int

    def encode(self, window: Any) -> Any: ...

    def detect_language(self, encoded: Any, tokenizer: Any) -> dict[str, float]: ...

    def decode(self, encoded: Any, tokenizer: Any, previous: list[int], temperature: float,
               settings: DecodeSettings) -> Decoded: ...


class BatchBackend(Backend, Protocol):
    def decode_batch(self, encoded: Any, requests: list[tuple[Any, list[int]]], temperature: float,
                     settings: DecodeSettings) -> list[Decoded] | None:
        """Decode several (tokenizer, previous text) prompts on one window's encoder output as
        one batch; None when they cannot share a batch (prompts of different lengths)."""
        ...


@dataclass
class WindowsResult:
    language: str
    language_probability: float | None = None
    segments: list[TranscriptSegment] = field(default_factory=list)
    translated_segments: list[TranscriptSegment] = field(default_factory=list)
    text: str = ""
    translation: str | None = None
    no_speech_probs: list[float] = field(default_factory=list)
    windows: int = 0
    encoder_passes: int = 0


def compression_ratio(text: str) -> float:
    """Raw / zlib-compressed length: high for repetitive (looping) output."""
    raw = text.encode("utf-8")
    return len(raw) / max(1, len(zlib.compress(raw))) if raw else 0.0


N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>


def suppressed_tokens(tokenizer: Any, settings: DecodeSettings) -> list[int]:
    """Token ids never to sample: -1 (Whisper's non-speech symbols), plus end-of-text for
    fixed-length benchmarks, plus the timestamps when none were asked for (a model that emits
    them anyway would otherwise move the window advance)."""
    suppress = [-1]
    if settings.suppress_eot:
        suppress.append(tokenizer.eot)
    if settings.without_timestamps:
        suppress.extend(range(tokenizer.timestamp_begin, tokenizer.timestamp_begin + N_TIMESTAMPS))
    return suppress


def tokenizer_for(backend: Backend, language: str, task: str) -> Any:
    from whisper.tokenizer import get_tokenizer

    return get_tokenizer(backend.multilingual, num_languages=backend.num_languages, language=language, task=task)


def decode_with_fallback(backend: Backend, encoded: Any, tokenizer: Any, previous: list[int],
                         settings: DecodeSettings, first: Decoded | None = None) -> Decoded:
    """Raise the temperature while the output looks repetitive or improbable (Whisper's rule).

    If every temperature fails, keep the most probable result that is not repetitive.
    ``first``: the result at the first temperature, when it was already decoded (in a batch).
    """
    results: list[Decoded] = []
    for index, temperature in enumerate(settings.temperatures):
        if index == 0 and first is not None:
            result = first
        else:
            result = backend.decode(encoded, tokenizer, previous, temperature, settings)
        text = tokenizer.decode([t for t in result.tokens if t < tokenizer.eot])
        result.compression_ratio = compression_ratio(text)
        results.append(result)
        repetitive = (settings.compression_ratio_threshold is not None
                      and result.compression_ratio > settings.compression_ratio_threshold)
        improbable = settings.logprob_threshold is not None and result.avg_logprob < settings.logprob_threshold
        silent = (settings.no_speech_threshold is not None and improbable
                  and result.no_speech_prob > settings.no_speech_threshold)
        if silent or not (repetitive or improbable):
            return result
    fine = [r for r in results if settings.compression_ratio_threshold is None
            or r.compression_ratio <= settings.compression_ratio_threshold]
    best = max(fine or results, key=lambda r: r.avg_logprob)
    best.temperature = results[-1].temperature  # prompt reset follows the highest temperature tried
    return best


def decode_together(backend: Backend, encoded: Any, tracks: list[_Track],
                    settings: DecodeSettings) -> list[Decoded] | None:
    """The tracks' decodes at the first temperature as one batch, or None (decode them one by one)."""
    decode_batch = getattr(backend, "decode_batch", None)
    if decode_batch is None:
        return None
    requests = [(track.tokenizer, track.previous(settings)) for track in tracks]
    return decode_batch(encoded, requests, settings.temperatures[0], settings)


def split_segments(tokens: list[int], timestamp_begin: int, offset: float,
                   window_frames: int) -> tuple[list[tuple[float, float, list[int]]], int]:
    """Cut one window's tokens into (start, end, tokens) segments; return them and the frames consumed.

    Segments are delimited by pairs of consecutive timestamp tokens. When the window ends in
    an unfinished segment (text after the last pair), that tail is dropped and the next
    window starts at the last complete timestamp.
    """
    is_ts = [t >= timestamp_begin for t in tokens]
    ends_with_single_ts = len(tokens) >= 2 and is_ts[-1] and not is_ts[-2]
    cuts = [i for i in range(1, len(tokens)) if is_ts[i] and is_ts[i - 1]]
    if not cuts:
        stamps = [t - timestamp_begin for t in tokens if t >= timestamp_begin]
        duration = window_frames / FRAMES_PER_SECOND
        if stamps and stamps[-1] > 0:
            duration = stamps[-1] * TIME_PRECISION
        return [(offset, offset + duration, tokens)], window_frames
    if ends_with_single_ts:
        cuts.append(len(tokens))
    segments = []
    begin = 0
    for cut in cuts:
        piece = tokens[begin:cut]
        start = offset + (piece[0] - timestamp_begin) * TIME_PRECISION if is_ts[begin] else offset
        end = offset + (piece[-1] - timestamp_begin) * TIME_PRECISION
        segments.append((start, end, piece))
        begin = cut
    if ends_with_single_ts:
        return segments, window_frames
    consumed = (tokens[begin - 1] - timestamp_begin) * INPUT_STRIDE
    return segments, consumed if consumed > 0 else window_frames


def _text_tokens(tokens: list[int], eot: int) -> list[int]:
    return [t for t in tokens if t < eot]


class _Track:
    """Segments, tokens and the rolling prompt of one task (transcribe or translate)."""

    def __init__(self, tokenizer: Any, duration: float, voiced: Callable[[float, float], bool]) -> None:
        self.tokenizer = tokenizer
        self.duration = duration
        self.voiced = voiced
        self.segments: list[TranscriptSegment] = []
        self.tokens: list[int] = []
        self.prompt_since = 0

    def previous(self, settings: DecodeSettings) -> list[int]:
        return self.tokens[self.prompt_since:] if settings.condition_on_previous_text else []

    def add(self, pieces: list[tuple[float, float, list[int]]], result: Decoded) -> None:
        for start, end, piece in pieces:
            start, end = min(max(start, 0.0), self.duration), min(max(end, 0.0), self.duration)
            text_tokens = _text_tokens(piece, self.tokenizer.eot)
            text = self.tokenizer.decode(text_tokens).strip()
            # Drop empty pieces and text placed where the audio holds no voice (hallucination).
            if not text or end <= start or not self.voiced(start, end):
                continue
            self.segments.append(TranscriptSegment(round(start, 2), round(end, 2), text))
            self.tokens.extend(text_tokens)
        if result.temperature > 0.5:
            self.prompt_since = len(self.tokens)  # do not condition on text sampled at high temperature

    def text(self) -> str:
        return self.tokenizer.decode(self.tokens).strip()


def run_windows(backend: Backend, mel: Any, content_frames: int, *, language: str | None,
                translate: bool, settings: DecodeSettings, voiced: Callable[[float, float], bool],
                timings: dict[str, float], check_language: Callable[[str], None] | None = None,
                progress: ProgressCallback = no_progress, cancel: Callable[[], None] | None = None,
                pad: Callable[[Any, int], Any] | None = None) -> WindowsResult:
    """Transcribe (and translate) a log-mel spectrogram window by window.

    ``mel`` is ``[n_mels, frames]`` with at least 30 s of padding after ``content_frames``;
    ``pad(window, N_FRAMES)`` pads a shorter last window. ``check_language`` may refuse the
    language once it is known (a model that cannot translate it). ``timings`` is updated in place.
    """
    for key in ("encode", "detect_language", "transcribe", "translate"):
        timings.setdefault(key, 0.0)
    duration = content_frames / FRAMES_PER_SECOND
    result = WindowsResult(language=language or "")
    tracks: dict[str, _Track] = {}
    seek = 0
    while seek < content_frames:
        if cancel is not None:
            cancel()
        progress("asr", seek / content_frames, f"window {result.windows + 1} at {seek / FRAMES_PER_SECOND:.0f} s")
        size = min(N_FRAMES, content_frames - seek)
        window = mel[:, seek:seek + size]
        if pad is not None:
            window = pad(window, N_FRAMES)
        offset = seek / FRAMES_PER_SECOND

        t0 = time.perf_counter()
        encoded = backend.encode(window)
        timings["encode"] += time.perf_counter() - t0
        result.encoder_passes += 1
        result.windows += 1

        if not result.language:
            t0 = time.perf_counter()
            probs = backend.detect_language(encoded, tokenizer_for(backend, "en", "transcribe"))
            timings["detect_language"] += time.perf_counter() - t0
            result.language = max(probs, key=probs.get)
            result.language_probability = float(probs[result.language])
        if not tracks:
            if check_language is not None:
                check_language(result.language)
            tracks["transcribe"] = _Track(tokenizer_for(backend, result.language, "transcribe"), duration, voiced)
            if translate and result.language != "en":
                tracks["translate"] = _Track(tokenizer_for(backend, result.language, "translate"), duration, voiced)

        main = tracks["transcribe"]
        other = tracks.get("translate")
        t0 = time.perf_counter()
        # Both tasks at the first temperature in one batch (timed as "transcribe"); the
        # temperature fallback, when a task needs it, runs for that task alone.
        firsts = decode_together(backend, encoded, [main, other], settings) if other is not None else None
        decoded = decode_with_fallback(backend, encoded, main.tokenizer, main.previous(settings), settings,
                                       first=firsts[0] if firsts else None)
        timings["transcribe"] += time.perf_counter() - t0
        result.no_speech_probs.append(float(decoded.no_speech_prob))

        no_speech = (settings.no_speech_threshold is not None
                     and decoded.no_speech_prob > settings.no_speech_threshold
                     and not (settings.logprob_threshold is not None
                              and decoded.avg_logprob > settings.logprob_threshold))
        if no_speech:  # Whisper judges this window silent: skip it for both tasks
            seek += size
            continue

        pieces, consumed = split_segments(decoded.tokens, main.tokenizer.timestamp_begin, offset, size)
        main.add(pieces, decoded)

        if other is not None:
            t0 = time.perf_counter()
            translated = decode_with_fallback(backend, encoded, other.tokenizer, other.previous(settings),
                                              settings, first=firsts[1] if firsts else None)
            timings["translate"] += time.perf_counter() - t0
            t_pieces, _ = split_segments(translated.tokens, other.tokenizer.timestamp_begin, offset, size)
            if consumed < size:
                # The next window restarts at the transcript's last timestamp; keep only the
                # translated segments that begin before it, the rest is translated again there.
                limit = offset + consumed / FRAMES_PER_SECOND
                t_pieces = [p for p in t_pieces if p[0] < limit]
            other.add(t_pieces, translated)
        seek += consumed

    progress("asr", 1.0, "done")
    if not tracks:  # empty audio: nothing was decoded
        return result
    result.segments = tracks["transcribe"].segments
    result.text = tracks["transcribe"].text()
    if "translate" in tracks:
        result.translated_segments = tracks["translate"].segments
        result.translation = tracks["translate"].text()
    return result


def normalize_language(language: str | None, num_languages: int) -> str | None:
    """A language code ("de") from a code or an English name ("German"); checked against the model."""
    if language is None or language.strip().lower() in ("", "auto"):
        return None
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    code = language.strip().lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    supported = list(LANGUAGES)[:num_languages]
    if code not in supported:
        raise LoGSAMError(f"Unknown or unsupported language {language!r}; use a code such as en, de, fr, "
                          "or leave it out to detect the language.")
    return code


def voiced_lookup(mask: np.ndarray, frame_s: float, tolerance_s: float = 0.3) -> Callable[[float, float], bool]:
    """``voiced(start, end)``: does any active voice frame fall within [start - tol, end + tol]?"""
    cumulative = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])

    def voiced(start: float, end: float) -> bool:
        lo = max(0, int((start - tolerance_s) / frame_s))
        hi = min(len(mask), int(np.ceil((end + tolerance_s) / frame_s)))
        return hi > lo and cumulative[hi] - cumulative[lo] > 0

    return voiced
