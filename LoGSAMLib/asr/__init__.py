"""Speech recognition: Whisper transcription and English translation of a dictation.

One encoder pass per 30 s window feeds both the transcript and the translation; two
backends share that loop: openai-whisper (PyTorch, the official checkpoints) and
faster-whisper's CTranslate2 format (int8 on CPU). Heavy imports happen on first use.
"""

from .live import LiveTranscriber
from .transcriber import (
    BACKENDS,
    Transcriber,
    can_translate,
    default_asr_model,
    load_transcriber,
    whisper_name,
)
from .windows import DecodeSettings

__all__ = ["BACKENDS", "DecodeSettings", "LiveTranscriber", "Transcriber", "can_translate", "default_asr_model",
           "load_transcriber", "whisper_name"]
