"""openai-whisper backend: the official ``{'dims', 'model_state_dict'}`` checkpoint in PyTorch."""

from __future__ import annotations

import functools
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

    def _options(self, tokenizer: Any, previous: list[int], temperature: float, settings: DecodeSettings) -> Any:
        import whisper

        return whisper.DecodingOptions(
            task=tokenizer.task, language=tokenizer.language, temperature=temperature,
            sample_len=settings.sample_len,
            beam_size=settings.beam_size if temperature == 0 else None,
            best_of=settings.best_of if temperature > 0 else None,
            prompt=list(previous) or None, suppress_tokens=suppressed_tokens(tokenizer, settings),
            max_initial_timestamp=settings.max_initial_timestamp, without_timestamps=settings.without_timestamps,
            fp16=self.fp16,
        )

    def decode(self, encoded: Any, tokenizer: Any, previous: list[int], temperature: float,
               settings: DecodeSettings) -> Decoded:
        import whisper

        result = whisper.decode(self.model, encoded, self._options(tokenizer, previous, temperature, settings))[0]
        return _decoded(result, temperature)

    def decode_batch(self, encoded: Any, requests: list[tuple[Any, list[int]]], temperature: float,
                     settings: DecodeSettings) -> list[Decoded] | None:
        """Several prompts on one window as one batch (see ``windows.BatchBackend``).

        whisper's ``DecodingTask`` gives every row the same initial tokens; the prompts here
        differ only in their task token and previous text, so the task for the first prompt
        runs with each row's own initial tokens written in. Prompts of different lengths
        cannot share a batch (None).
        """
        import torch
        from whisper.decoding import DecodingTask

        options = [self._options(tokenizer, previous, temperature, settings) for tokenizer, previous in requests]
        rows = [DecodingTask(self.model, option).initial_tokens for option in options]
        if len({len(row) for row in rows}) != 1:
            return None
        task = _row_prompts_task_class()(self.model, options[0], rows)
        with torch.no_grad():
            results = task.run(encoded.repeat(len(rows), 1, 1))
        return [_decoded(result, temperature) for result in results]


def _decoded(result: Any, temperature: float) -> Decoded:
    return Decoded(tokens=list(result.tokens), avg_logprob=float(result.avg_logprob),
                   no_speech_prob=float(result.no_speech_prob), temperature=temperature)


@functools.cache
def _row_prompts_task_class() -> type:
    """Defined on first use: importing whisper imports torch."""
    from whisper.decoding import DecodingTask

    class RowPromptsTask(DecodingTask):
        """A ``DecodingTask`` whose rows start from their own initial tokens (same length)."""

        def __init__(self, model: Any, options: Any, rows: list[tuple[int, ...]]) -> None:
            super().__init__(model, options)
            self.rows = rows

        def _detect_language(self, audio_features: Any, tokens: Any) -> Any:
            # ``run`` builds ``tokens`` from the first prompt for every row, then calls this
            # (before any decoding step); the language is always given, so nothing is detected.
            import torch

            tokens[:] = torch.tensor(self.rows, dtype=tokens.dtype, device=tokens.device)
            return super()._detect_language(audio_features, tokens)

    return RowPromptsTask
