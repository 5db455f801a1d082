"""faster-whisper backend: a CTranslate2 Whisper model folder (int8 on CPU, float16 on GPU).

Runs the same window loop as the openai backend (one encoder pass, two decodes), calling
CTranslate2's ``encode`` / ``detect_language`` / ``generate`` directly; openai-whisper's
tokenizer provides the token ids, which CTranslate2 conversions share.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, LoGSAMError
from .windows import Decoded, DecodeSettings, suppressed_tokens

log = logging.getLogger(__name__)

FAST_HINT = "install the optional fast backend with `pip install \"logsam[fast]\"` (faster-whisper, ctranslate2)"


def import_ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError as error:
        raise LoGSAMError(f"The faster-whisper backend is not installed; {FAST_HINT}.") from error
    return ctranslate2


def compute_type_for(device: str, precision: str | None) -> str:
    """int8 on CPU (fast, small), float16 on CUDA, unless ``precision`` names a type the device runs.

    A shared pipeline precision such as "fp16" (meant for the GPU stages) falls back to the
    default on a CPU instead of failing.
    """
    default = "float16" if device == "cuda" else "int8"
    if not precision:
        return default
    aliases = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    wanted = aliases.get(precision, precision)
    supported = import_ctranslate2().get_supported_compute_types(device)
    if wanted not in supported:
        log.warning("CTranslate2 cannot compute in %s on %s; using %s.", wanted, device, default)
        return default
    return wanted


class CTranslate2Backend:
    """encode / detect_language / decode on ``ctranslate2.models.Whisper`` (see ``windows.Backend``)."""

    def __init__(self, folder: str | Path, device: str = "cpu", precision: str | None = None,
                 threads: int = 0) -> None:
        ct2 = import_ctranslate2()
        self.compute_type = compute_type_for(device, precision)
        try:
            self.model = ct2.models.Whisper(str(folder), device=device, compute_type=self.compute_type,
                                            intra_threads=threads)
        except (RuntimeError, ValueError) as error:
            raise CheckpointError(f"Cannot load the CTranslate2 Whisper model in {folder}: {error}") from error
        self._ct2 = ct2
        self.device = device
        self.multilingual = bool(self.model.is_multilingual)
        self.num_languages = int(self.model.num_languages)
        self.n_mels = int(self.model.n_mels)
        self.n_text_ctx = 448

    def mel(self, audio: Any) -> Any:
        from whisper.audio import N_SAMPLES, log_mel_spectrogram

        return log_mel_spectrogram(audio, self.n_mels, padding=N_SAMPLES)

    def encode(self, window: Any) -> Any:
        import numpy as np

        features = np.ascontiguousarray(window.cpu().numpy()[None], dtype=np.float32)
        return self.model.encode(self._ct2.StorageView.from_array(features), to_cpu=False)

    def detect_language(self, encoded: Any, tokenizer: Any) -> dict[str, float]:
        pairs = self.model.detect_language(encoded)[0]
        return {token[2:-2]: float(prob) for token, prob in pairs}

    def _prompt(self, tokenizer: Any, previous: list[int], settings: DecodeSettings) -> list[int]:
        half = self.n_text_ctx // 2
        return ([tokenizer.sot_prev] + list(previous)[-(half - 1):] if previous else []) + list(
            tokenizer.sot_sequence_including_notimestamps if settings.without_timestamps
            else tokenizer.sot_sequence)

    def _generate(self, encoded: Any, tokenizers: list[Any], prompts: list[list[int]], temperature: float,
                  settings: DecodeSettings) -> list[Decoded]:
        if temperature > 0:
            sampling = {"beam_size": 1, "num_hypotheses": settings.best_of, "sampling_topk": 0,
                        "sampling_temperature": temperature}
        else:
            sampling = {"beam_size": settings.beam_size or 1}
        # The suppressed ids are the same for every task (special tokens, not the task's own).
        suppress = suppressed_tokens(tokenizers[0], settings)
        new_tokens = settings.sample_len or self.n_text_ctx // 2
        # CTranslate2's max_length bounds the prompt after its first token plus the output, and
        # also caps the output at max_length / 2 (measured; see test_ctranslate2_conversion_...).
        max_length = min(self.n_text_ctx, max(2 * new_tokens, len(prompts[0]) - 1 + new_tokens))
        results = self.model.generate(
            encoded, prompts, max_length=max_length,
            return_scores=True, return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress,
            max_initial_timestamp_index=int(round(settings.max_initial_timestamp / 0.02)), **sampling,
        )
        decoded = []
        for result in results:
            tokens = list(result.sequences_ids[0])
            # CTranslate2 reports the length-normalised score (length_penalty 1): undo it.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            decoded.append(Decoded(tokens=tokens, avg_logprob=float(avg_logprob),
                                   no_speech_prob=float(result.no_speech_prob), temperature=temperature))
        return decoded

    def decode(self, encoded: Any, tokenizer: Any, previous: list[int], temperature: float,
               settings: DecodeSettings) -> Decoded:
        return self._generate(encoded, [tokenizer], [self._prompt(tokenizer, previous, settings)], temperature,
                              settings)[0]

    def decode_batch(self, encoded: Any, requests: list[tuple[Any, list[int]]], temperature: float,
                     settings: DecodeSettings) -> list[Decoded] | None:
        """One ``generate`` for several prompts on the same window (see ``windows.BatchBackend``).

        CTranslate2 needs <|startoftranscript|> at the same position in every prompt, so
        prompts that carry previous text of different lengths are decoded one by one.
        """
        prompts = [self._prompt(tokenizer, previous, settings) for tokenizer, previous in requests]
        if len({len(prompt) for prompt in prompts}) != 1:
            return None
        return self._generate(self._repeat(encoded, len(prompts)), [t for t, _ in requests], prompts, temperature,
                              settings)

    def _repeat(self, encoded: Any, count: int) -> Any:
        """The encoder output ``[1, frames, width]`` repeated ``count`` times along the batch."""
        if self.device == "cuda":
            import torch

            tiled = torch.as_tensor(encoded, device="cuda").repeat(count, 1, 1).contiguous()
            return self._ct2.StorageView.from_array(tiled)
        import numpy as np

        return self._ct2.StorageView.from_array(np.ascontiguousarray(np.repeat(np.asarray(encoded), count, axis=0)))
