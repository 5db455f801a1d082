"""openai-whisper backend: the official ``{'dims', 'model_state_dict'}`` checkpoint in PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .windows import Decoded, DecodeSettings, suppressed_tokens


def load_whisper_checkpoint(path: str | Path, device: Any = "cpu") -> Any:
    """Build ``whisper.model.Whisper`` from an official checkpoint file, without any download.

    Weights stay float32 (as ``whisper.load_model``); fp16 is applied per forward pass on GPU.
    """
    import torch
    from whisper.model import ModelDimensions, Whisper

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise CheckpointError(f"Cannot read the Whisper checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= set(checkpoint):
        raise CheckpointError(f"{path} is not an openai-whisper checkpoint (expected the keys 'dims' and "
                              "'model_state_dict'); download it again with `logsam models download`.")
    try:
        model = Whisper(ModelDimensions(**checkpoint["dims"]))
        model.load_state_dict(checkpoint["model_state_dict"])
    except (TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path} does not match the Whisper architecture: {error}") from error
    return model.to(device).eval()


class OpenAIWhisperBackend:
    """encode / detect_language / decode on a ``whisper.model.Whisper`` (see ``windows.Backend``)."""

    def __init__(self, model: Any, fp16: bool) -> None:
        self.model = model
        self.fp16 = fp16
        self.multilingual = bool(model.is_multilingual)
        self.num_languages = int(model.num_languages)
        self.n_text_ctx = int(model.dims.n_text_ctx)
        self.n_mels = int(model.dims.n_mels)

    @property
    def device(self) -> Any:
        return self.model.device

    def mel(self, audio: Any) -> Any:
        """Log-mel of the whole recording plus 30 s of zero padding (Whisper's framing)."""
        from whisper.audio import N_SAMPLES, log_mel_spectrogram

        return log_mel_spectrogram(audio, self.n_mels, padding=N_SAMPLES)

    def encode(self, window: Any) -> Any:
        import torch

        dtype = torch.float16 if self.fp16 else torch.float32
        with torch.no_grad():
            return self.model.encoder(window.unsqueeze(0).to(self.device, dtype))

    def detect_language(self, encoded: Any, tokenizer: Any) -> dict[str, float]:
        # Encoded features of the right shape make whisper skip its own encoder pass.
        _, probs = self.model.detect_language(encoded, tokenizer)
        return probs[0]

    def decode(self, encoded: Any, tokenizer: Any, previous: list[int], temperature: float,
               settings: DecodeSettings) -> Decoded:
        import whisper

        suppress = suppressed_tokens(tokenizer, settings)
        options = whisper.DecodingOptions(
            task=tokenizer.task, language=tokenizer.language, temperature=temperature,
            sample_len=settings.sample_len,
            beam_size=settings.beam_size if temperature == 0 else None,
            best_of=settings.best_of if temperature > 0 else None,
            prompt=list(previous) or None, suppress_tokens=suppress,
            max_initial_timestamp=settings.max_initial_timestamp, without_timestamps=settings.without_timestamps,
            fp16=self.fp16,
        )
        result = whisper.decode(self.model, encoded, options)[0]
        return Decoded(tokens=list(result.tokens), avg_logprob=float(result.avg_logprob),
                       no_speech_prob=float(result.no_speech_prob), temperature=temperature)
