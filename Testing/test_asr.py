"""Whisper transcription and translation through the real openai-whisper and CTranslate2 code.

The tiny checkpoints have random weights, so the words are nonsense; these tests check the
plumbing on real (espeak-ng) speech: language handling, the translate task, one encoder pass
per window, long audio, no-speech handling, timings and model loading.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from LoGSAMLib.asr import DecodeSettings, default_asr_model, load_transcriber
from LoGSAMLib.asr.windows import split_segments
from LoGSAMLib.errors import LoGSAMError, ModelMissingError, NoSpeechError
from LoGSAMLib.types import Transcript

SR = 16000
# One temperature and a short token budget keep random-weight decoding fast.
FAST = DecodeSettings(temperatures=(0.0,), sample_len=24)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def german(german_speech) -> np.ndarray:
    return german_speech


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    from LoGSAMLib.testing.speech import DICTATIONS, speak

    return speak(DICTATIONS["en"], voice="en")


class Spy:
    """Counts encoder forward passes (a hook on the real module), decode tasks and batched decodes."""

    def __init__(self, transcriber) -> None:
        self.encoder_calls = 0
        self.tasks: list[str] = []
        self.batches: list[list[str]] = []  # the tasks of each batched decode
        self.detections = 0
        backend = transcriber.backend
        if hasattr(backend, "model") and hasattr(backend.model, "encoder"):
            backend.model.encoder.register_forward_hook(self._on_encode)
        else:  # CTranslate2: no hooks; count calls of the backend's encode
            original_encode = backend.encode

            def encode(window):
                self.encoder_calls += 1
                return original_encode(window)

            backend.encode = encode
        original_decode, original_detect = backend.decode, backend.detect_language

        def decode(encoded, tokenizer, *args, **kwargs):
            self.tasks.append(tokenizer.task)
            return original_decode(encoded, tokenizer, *args, **kwargs)

        def detect(*args, **kwargs):
            self.detections += 1
            return original_detect(*args, **kwargs)

        backend.decode, backend.detect_language = decode, detect
        original_batch = backend.decode_batch

        def decode_batch(encoded, requests, *args, **kwargs):
            results = original_batch(encoded, requests, *args, **kwargs)
            if results is not None:
                self.batches.append([tokenizer.task for tokenizer, _ in requests])
                self.tasks.extend(tokenizer.task for tokenizer, _ in requests)
            return results

        backend.decode_batch = decode_batch

    def _on_encode(self, module, inputs, output) -> None:
        self.encoder_calls += 1


def load(model_id: str = "whisper-large-v3", backend: str = "openai", settings: DecodeSettings = FAST):
    transcriber = load_transcriber(model_id, device="cpu", backend=backend, settings=settings)
    return transcriber, Spy(transcriber)


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("model_id,n_mels,n_vocab,languages",
                         [("whisper-large-v3", 128, 51866, 100), ("whisper-base", 80, 51865, 99)])
def test_tiny_checkpoints_are_official_format(tiny_home, model_id, n_mels, n_vocab, languages):
    import torch
    import whisper

    from LoGSAMLib.models import model_path

    path = model_path(model_id)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"dims", "model_state_dict"}
    assert checkpoint["dims"]["n_mels"] == n_mels and checkpoint["dims"]["n_vocab"] == n_vocab
    assert all(t.dtype == torch.float16 for t in checkpoint["model_state_dict"].values())
    assert path.stat().st_size < 8_000_000
    # openai-whisper's own loader accepts the file (a path: no download).
    model = whisper.load_model(str(path), device="cpu")
    assert model.is_multilingual and model.num_languages == languages
    ours = load_transcriber(model_id, device="cpu", backend="openai").backend.model
    for name, value in model.state_dict().items():
        assert torch.equal(value, ours.state_dict()[name]), name


def test_missing_model_raises_model_missing(empty_home):
    with pytest.raises(ModelMissingError):
        load_transcriber("whisper-large-v3", device="cpu", backend="openai")
    with pytest.raises(ModelMissingError):
        load_transcriber("whisper-small", device="cpu", backend="faster")


def test_bad_backend_and_wrong_file_are_user_errors(tiny_home, tmp_path, monkeypatch):
    with pytest.raises(LoGSAMError, match="Unknown ASR backend"):
        load_transcriber("whisper-base", backend="tensorflow")
    import torch

    from LoGSAMLib.asr.openai_backend import load_whisper_checkpoint
    from LoGSAMLib.errors import CheckpointError

    bogus = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, bogus)
    with pytest.raises(CheckpointError, match="not an openai-whisper checkpoint"):
        load_whisper_checkpoint(bogus)


# ---------------------------------------------------------------------------- languages and tasks


def test_german_given_transcribes_and_translates_from_one_encoder_pass(tiny_home, german):
    transcriber, spy = load()
    result = transcriber.transcribe(german, language="de")
    assert isinstance(result, Transcript)
    assert result.language == "de" and result.model_id == "whisper-large-v3"
    assert result.text and result.translation is not None
    assert spy.detections == 0  # the given language is used, not detected
    assert spy.tasks == ["transcribe", "translate"]
    assert spy.encoder_calls == 1 == transcriber.last_encoder_passes
    for key in ("voice_activity", "features", "encode", "transcribe", "translate", "total"):
        assert result.timings[key] >= 0.0
    assert result.timings["total"] >= result.timings["transcribe"] + result.timings["translate"]
    assert 0.0 <= result.no_speech_probability <= 1.0
    for segment in result.segments + result.translated_segments:
        assert 0.0 <= segment.start < segment.end <= german.size / SR + 1e-6


def test_published_two_pass_method_encodes_twice(tiny_home, german):
    """The baseline our single pass replaces: whisper.transcribe once per task."""
    transcriber, spy = load()
    model = transcriber.backend.model
    for task in ("transcribe", "translate"):
        model.transcribe(german, language="de", task=task, temperature=0.0, sample_len=24, fp16=False)
    assert spy.encoder_calls == 2


def test_english_given_is_not_translated(tiny_home, english):
    transcriber, spy = load()
    result = transcriber.transcribe(english, language="English")
    assert result.language == "en" and result.translation is None and result.translated_segments == []
    assert result.english == result.text
    assert spy.tasks == ["transcribe"] and spy.encoder_calls == 1 and spy.detections == 0


def test_detected_language_comes_from_the_same_encoder_output(tiny_home, german):
    import torch
    import whisper

    transcriber, spy = load()
    result = transcriber.transcribe(german)  # language=None: detect
    assert spy.detections == 1 and spy.encoder_calls == 1
    # Independently: the model's own language id on this audio's first window.
    model = transcriber.backend.model
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(german, 128, padding=whisper.audio.N_SAMPLES), 3000)
    with torch.no_grad():
        _, probs = model.detect_language(mel)
    assert result.language == max(probs, key=probs.get)
    expected_tasks = ["transcribe"] if result.language == "en" else ["transcribe", "translate"]
    assert spy.tasks == expected_tasks
    assert (result.translation is None) == (result.language == "en")


def test_no_translate_option_and_unknown_language(tiny_home, german):
    transcriber, spy = load()
    result = transcriber.transcribe(german, language="de", task_translate=False)
    assert result.translation is None and spy.tasks == ["transcribe"]
    with pytest.raises(LoGSAMError, match="Unknown or unsupported language"):
        transcriber.transcribe(german, language="klingon")


def test_cancel_stops_before_the_model_runs(tiny_home, german):
    from LoGSAMLib.errors import Cancelled
    from LoGSAMLib.progress import CancelToken

    transcriber, spy = load()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        transcriber.transcribe(german, language="de", cancel=token)
    with pytest.raises(Cancelled):
        transcriber.transcribe(german, language="de", cancel=lambda: True)
    assert spy.encoder_calls == 0


def test_audio_file_input(tiny_home, german, tmp_path):
    from LoGSAMLib.audio import write_wav

    path = write_wav(tmp_path / "d.wav", german)
    result = load()[0].transcribe(path, language="de")
    assert result.timings["load_audio"] > 0 and result.text


# ---------------------------------------------------------------------------- long audio


def test_audio_longer_than_30_s_is_windowed_with_monotonic_timestamps(tiny_home):
    from LoGSAMLib.testing.speech import speak_for

    audio = speak_for(48.0, voice="de")
    transcriber, spy = load()
    fractions: list[float] = []
    result = transcriber.transcribe(audio, language="de",
                                    progress=lambda stage, f, msg: fractions.append(f) if msg != "done" else None)
    duration = audio.size / SR
    offsets = [f * duration for f in fractions]
    assert len(offsets) >= 2 and offsets == sorted(set(offsets)) and offsets[0] == 0.0
    assert offsets[-1] + 30.0 >= duration - 0.05  # the last window reaches the end
    assert spy.encoder_calls == len(offsets) == transcriber.last_windows
    assert spy.tasks == ["transcribe", "translate"] * len(offsets)
    for track in (result.segments, result.translated_segments):
        starts = [s.start for s in track]
        assert starts == sorted(starts)
        assert all(0.0 <= s.start < s.end <= duration + 1e-6 for s in track)
    # Segments come from more than one window.
    assert any(s.start >= offsets[1] for s in result.segments)


def test_split_segments_follows_whisper_timestamp_rules():
    tb = 1000  # timestamp_begin; token tb + k is time k * 0.02 s
    # Two complete segments, then text without a closing timestamp: resume at the last timestamp.
    tokens = [tb + 0, 1, 2, tb + 50, tb + 50, 3, tb + 100, tb + 100, 4]
    segments, consumed = split_segments(tokens, tb, offset=10.0, window_frames=3000)
    assert [(s, e) for s, e, _ in segments] == [(10.0, 11.0), (11.0, 12.0)]
    assert consumed == 200  # 2.00 s in mel frames
    # Ending with a single timestamp: the whole window is consumed.
    segments, consumed = split_segments([tb, 1, tb + 25, tb + 25, 2, tb + 75], tb, 0.0, 1500)
    assert [(s, e) for s, e, _ in segments] == [(0.0, 0.5), (0.5, 1.5)] and consumed == 1500
    # No timestamp pairs: one segment over the window (or up to the last timestamp).
    assert split_segments([1, 2, 3], tb, 5.0, 1000) == ([(5.0, 15.0, [1, 2, 3])], 1000)
    assert split_segments([tb, 1, 2, tb + 30], tb, 0.0, 3000)[0][0][:2] == (0.0, 0.6)


# ---------------------------------------------------------------------------- no speech


@pytest.mark.parametrize("kind", ["silence", "white noise", "tone"])
def test_silence_and_noise_raise_no_speech_without_running_the_model(tiny_home, kind):
    rng = np.random.default_rng(3)
    audio = {"silence": np.zeros(SR * 5, np.float32),
             "white noise": (rng.standard_normal(SR * 5) * 0.1).astype(np.float32),
             "tone": (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR * 5) / SR)).astype(np.float32)}[kind]
    transcriber, spy = load()
    with pytest.raises(NoSpeechError, match="No speech detected"):
        transcriber.transcribe(audio, language="de")
    assert spy.encoder_calls == 0 and spy.tasks == []


def test_whisper_no_speech_probability_skips_windows(tiny_home, german):
    # A threshold of 0 makes every window "silent" for Whisper (its log-prob is low): the
    # result must be an error, not an empty or invented transcript.
    transcriber, spy = load(settings=DecodeSettings(temperatures=(0.0,), sample_len=8, no_speech_threshold=0.0))
    with pytest.raises(NoSpeechError, match="no-speech probability"):
        transcriber.transcribe(german, language="de")
    # Both tasks were decoded together once; the window was then dropped for both (no fallback,
    # no further decode).
    assert spy.batches == [["transcribe", "translate"]] and spy.tasks == ["transcribe", "translate"]


def test_temperature_fallback_runs_on_improbable_output(tiny_home, english):
    # Random weights give a very low average log-probability: every temperature is tried.
    settings = DecodeSettings(temperatures=(0.0, 0.5, 1.0), best_of=2, sample_len=8)
    transcriber, spy = load(settings=settings)
    transcriber.transcribe(english, language="en")
    assert spy.tasks == ["transcribe"] * 3 and spy.encoder_calls == 1


# ---------------------------------------------------------------------------- models and backends


def test_turbo_cannot_translate(tmp_path, monkeypatch, german):
    import torch

    from LoGSAMLib import models
    from LoGSAMLib.testing import tiny_whisper

    model = tiny_whisper.random_model(tiny_whisper.tiny_dims(128, 51866), seed=5)
    torch.save(tiny_whisper.checkpoint(model), tmp_path / "large-v3-turbo.pt")
    home = tmp_path / "home"
    home.mkdir()
    entry = {"stage": "asr", "title": "tiny turbo", "files": [{"name": "large-v3-turbo.pt"}],
             "config": {"backend": "openai-whisper", "whisper_name": "large-v3-turbo"}}
    (home / "registry.json").write_text(json.dumps({"whisper-large-v3-turbo": entry}))
    monkeypatch.setenv("LOGSAM_HOME", str(home))
    models.import_file("whisper-large-v3-turbo", tmp_path / "large-v3-turbo.pt")  # a file is trusted once imported
    transcriber = load_transcriber("whisper-large-v3-turbo", device="cpu", backend="openai", settings=FAST)
    assert not transcriber.can_translate
    with pytest.raises(LoGSAMError, match="cannot translate"):
        transcriber.transcribe(german, language="de")
    assert transcriber.transcribe(german, language="de", task_translate=False).translation is None


def test_auto_backend_and_default_model(tiny_home):
    assert load_transcriber("whisper-large-v3", device="cpu").backend_name == "faster"
    openai = load_transcriber("whisper-large-v3", device="cpu", backend="openai")
    assert openai.backend_name == "openai" and openai.model_id == "whisper-large-v3"
    fast = load_transcriber("whisper-base", device="cpu", backend="faster")
    assert fast.model_id == "faster-whisper-base"
    # A shared pipeline precision meant for GPUs falls back to what a CPU can run.
    assert load_transcriber("whisper-base", device="cpu", backend="faster", precision="fp16").backend.compute_type \
        == "int8"
    assert load_transcriber("whisper-base", device="cpu", backend="faster",
                            precision="float32").backend.compute_type == "float32"
    assert not load_transcriber("whisper-base", device="cpu", backend="openai", precision="fp16").backend.fp16
    # Decoding defaults are Whisper's; the tiny models' registry entries shorten them.
    assert openai.settings == DecodeSettings(temperatures=(0.0,), sample_len=24)
    assert DecodeSettings().temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) and DecodeSettings().sample_len is None
    assert default_asr_model("cuda") == "whisper-large-v3"
    assert default_asr_model("cpu") == "whisper-base"  # whisper-small/medium are not cached here


def test_faster_backend_one_encoder_pass_and_translation(tiny_home, german):
    transcriber, spy = load("faster-whisper-large-v3", backend="faster")
    result = transcriber.transcribe(german, language="de")
    assert transcriber.backend.compute_type == "int8"
    assert result.model_id == "faster-whisper-large-v3" and result.translation is not None
    assert spy.encoder_calls == 1 and spy.tasks == ["transcribe", "translate"]
    english = load("faster-whisper-base", backend="faster")[0].transcribe(german, language="en")
    assert english.translation is None


def test_ctranslate2_conversion_matches_the_pytorch_model(tiny_home, german):
    """Same weights, two engines: encoder output, language probabilities and greedy tokens agree."""
    import torch
    import whisper

    pt = load_transcriber("whisper-large-v3", device="cpu", backend="openai").backend
    ct = load_transcriber("faster-whisper-large-v3", device="cpu", backend="faster", precision="float32").backend
    mel = whisper.pad_or_trim(pt.mel(german), 3000)
    reference = pt.encode(mel)
    encoded = ct.encode(mel)
    ours = torch.as_tensor(np.array(encoded))
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, atol=1e-3, rtol=1e-3)
    tokenizer = whisper.tokenizer.get_tokenizer(True, num_languages=100, language="de", task="transcribe")
    p_pt, p_ct = pt.detect_language(reference, tokenizer), ct.detect_language(encoded, tokenizer)
    assert max(p_pt, key=p_pt.get) == max(p_ct, key=p_ct.get)
    for code in ("de", "en", "fr"):
        assert p_ct[code] == pytest.approx(p_pt[code], rel=1e-2, abs=1e-6)
    previous = tokenizer.encode(" Befund: Raumforderung links frontal.")
    for settings, prompt in ((DecodeSettings(sample_len=12), []),
                             (DecodeSettings(sample_len=10, without_timestamps=True, suppress_eot=True), previous)):
        a = pt.decode(reference, tokenizer, prompt, 0.0, settings)
        b = ct.decode(encoded, tokenizer, prompt, 0.0, settings)
        assert a.tokens == b.tokens and len(a.tokens) > 0
        assert a.avg_logprob == pytest.approx(b.avg_logprob, abs=1e-2)
        assert a.no_speech_prob == pytest.approx(b.no_speech_prob, rel=1e-2)
    assert len(b.tokens) == 10 and all(t < tokenizer.timestamp_begin for t in b.tokens)


def test_converted_folder_loads_in_faster_whisper_offline(tiny_home, german):
    from faster_whisper import WhisperModel

    from LoGSAMLib.models import model_path

    folder = Path(model_path("faster-whisper-large-v3"))
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1)
    assert model.feature_extractor.mel_filters.shape[0] == 128  # read from preprocessor_config.json
    segments, info = model.transcribe(german, language="de", beam_size=1, temperature=0.0, max_new_tokens=8,
                                      condition_on_previous_text=False)
    list(segments)
    assert info.language == "de"
    assert model.hf_tokenizer.token_to_id("<|de|>") == 50261


# ---------------------------------------------------------------------------- joint decoding


@pytest.mark.parametrize("model_id,backend", [("whisper-large-v3", "openai"), ("faster-whisper-large-v3", "faster")])
def test_transcript_and_translation_in_one_batch_equal_separate_decodes(tiny_home, german, model_id, backend):
    """The joint decode gives each task exactly the tokens its own decode gives."""
    import whisper

    transcriber = load_transcriber(model_id, device="cpu", backend=backend)
    engine = transcriber.backend
    encoded = engine.encode(whisper.pad_or_trim(engine.mel(german), 3000))
    tokenizers = [whisper.tokenizer.get_tokenizer(True, num_languages=100, language="de", task=task)
                  for task in ("transcribe", "translate")]
    previous = tokenizers[0].encode(" Befund links frontal.")
    for settings, prompts in ((DecodeSettings(sample_len=16), ([], [])),
                              (DecodeSettings(sample_len=12, without_timestamps=True), (previous, previous[::-1]))):
        together = engine.decode_batch(encoded, list(zip(tokenizers, prompts, strict=True)), 0.0, settings)
        assert together is not None and len(together) == 2
        for tokenizer, prompt, joint in zip(tokenizers, prompts, together, strict=True):
            alone = engine.decode(encoded, tokenizer, prompt, 0.0, settings)
            assert joint.tokens == alone.tokens and len(joint.tokens) > 0
            assert joint.avg_logprob == pytest.approx(alone.avg_logprob, abs=2e-5)
            assert joint.no_speech_prob == pytest.approx(alone.no_speech_prob, abs=1e-6)
        # Each row was conditioned on its own task token and prompt (random weights may pick
        # the same tokens, but not with the same probabilities).
        assert abs(together[0].avg_logprob - together[1].avg_logprob) > 1e-4
    # Previous texts of different lengths cannot share a batch: the caller decodes one by one.
    assert engine.decode_batch(encoded, [(tokenizers[0], previous), (tokenizers[1], [])], 0.0, FAST) is None


@pytest.mark.parametrize("backend", ["openai", "faster"])
def test_transcriber_batches_both_tasks_and_matches_sequential_decoding(tiny_home, german, backend):
    model_id = "whisper-large-v3" if backend == "openai" else "faster-whisper-large-v3"
    transcriber, spy = load(model_id, backend=backend)
    joint = transcriber.transcribe(german, language="de")
    assert spy.batches == [["transcribe", "translate"]] and spy.tasks == ["transcribe", "translate"]
    assert spy.encoder_calls == 1
    transcriber.backend.decode_batch = lambda *args, **kwargs: None  # as a backend without batching
    sequential = transcriber.transcribe(german, language="de")
    assert (joint.text, joint.translation) == (sequential.text, sequential.translation)
    assert joint.translated_segments == sequential.translated_segments


def test_temperature_fallback_after_a_joint_decode_runs_per_task(tiny_home, german):
    # Random weights: the joint temperature-0 results are improbable, so each task falls back alone.
    transcriber, spy = load(settings=DecodeSettings(temperatures=(0.0, 0.7), best_of=2, sample_len=8))
    transcriber.transcribe(german, language="de")
    assert spy.batches == [["transcribe", "translate"]]
    assert spy.tasks == ["transcribe", "translate", "transcribe", "translate"]


# ---------------------------------------------------------------------------- CLI


def test_transcribe_cli_json_and_text(tiny_home, german, tmp_path, capsys):
    from LoGSAMLib.audio import write_wav
    from LoGSAMLib.cli import main


    path = write_wav(tmp_path / "dictation.wav", german)
    flac = tmp_path / "dictation.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), str(flac)], check=True)
    assert main(["transcribe", str(flac), "--model", "whisper-base", "--backend", "faster", "--language", "en",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["language"] == "en" and out["translation"] is None and out["model_id"] == "faster-whisper-base"
    assert out["backend"] == "faster" and out["encoder_passes"] == 1 and out["english"] == out["text"]
    assert {"load_audio", "encode", "transcribe", "total"} <= set(out["timings"])
    assert main(["transcribe", str(flac), "--model", "faster-whisper-base", "--language", "de"]) == 0
    text = capsys.readouterr().out
    assert "language:    de (given)" in text and "translation:" in text and "timings:" in text


def test_transcribe_cli_user_errors(tiny_home, tmp_path, capsys):
    from LoGSAMLib.audio import write_wav
    from LoGSAMLib.cli import main

    assert main(["transcribe", str(tmp_path / "none.wav"), "--model", "whisper-base"]) == 2
    assert "not found" in capsys.readouterr().err
    silent = write_wav(tmp_path / "silent.wav", np.zeros(SR * 3, np.float32))
    assert main(["transcribe", str(silent), "--model", "whisper-base"]) == 2
    err = capsys.readouterr().err
    assert "No speech detected" in err and "Traceback" not in err
