"""The whole method on a 3D volume: dictation -> findings -> boxes per slice -> masks -> 3D.

This is the Python API the CLI and the Slicer module call. A :class:`Pipeline` is cheap
to create; each model loads on first use and stays loaded for the next run.

    pipe = Pipeline(PipelineOptions(segmenter="litemedsam"))
    transcript = pipe.transcribe("dictation.wav")
    findings = pipe.extract(transcript.english)      # show these to the user first
    pipe.start_detection(volume, findings.affirmed, findings)  # optional: search while they read
    result = pipe.segment(volume, findings.affirmed, findings)

Slice searches are kept by a key of everything they depend on (see early_detection), so a
second ``segment`` of the same volume and prompt, or one after ``start_detection``, reuses them.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import SUPPORTED_CLASSES, __version__
from .detection.groundingdino import SHORT_SIDE as TRAINED_DETECTOR_SIZE
from .early_detection import DetectionCache, DetectionKey, EarlyDetection, detection_settings, volume_fingerprint
from .errors import InputError
from .progress import CancelToken, ProgressCallback, no_progress
from .search import SearchResult, Track, build_tracks, coarse_to_fine_search, dense_search, step_for_spacing
from .types import Box, Findings, Segmentation, Transcript, Volume
from .views import SliceView, slice_view

PLANES = ("axial", "coronal", "sagittal")


@dataclass
class PipelineOptions:
    """User-facing settings. ``None`` means: choose for the device (see ``resolved``)."""

    whisper_model: str | None = None  # default: asr.default_asr_model(device)
    asr_backend: str = "auto"  # "auto" | "openai" | "faster"
    language: str | None = None  # spoken language; None = detect
    detector_model: str = "groundingdino-swint-ogc"
    adapter: str | None = "logsam-lora-dino"  # registry id, .pth, PEFT folder, or None
    segmenter: str | None = None  # "medsam" | "litemedsam"; None: medsam on GPU, litemedsam on CPU
    plane: str = "axial"
    device: str | None = None
    precision: str | None = None  # "fp32" | "fp16" | "bf16"; None: fp16 on CUDA, fp32 on CPU
    runtime: str = "auto"  # "auto" | "torch" | "onnxruntime" | "openvino" (CPU only; see LoGSAMLib.runtime)
    box_threshold: float | None = None  # None: the detector's documented default
    text_threshold: float | None = None
    search: str = "coarse"  # "coarse" (coarse-to-fine) | "dense" (every slice)
    coarse_step_mm: float = 6.0
    batch_size: int | None = None  # slices per model call; None: 4 on a GPU, 1 on a CPU (see batch)
    # Accuracy-changing speed options, never defaults (see benchmarks/README.md):
    detector_size: int | None = None  # detector input's shorter side in px; None: 800, as trained
    detect_every: int = 1  # detect on every Nth slice only; boxes on the slices between are interpolated
    location_prior: bool = True  # keep boxes on the dictated side only
    min_track_slices: int = 2
    # "measured": the measured box margin and the core-only guard on every prompt, and in box mode
    # prompts that follow the lesion inside the box (LoGSAMLib.propagation); "plain": boxes as given.
    box_prompts: str = "measured"


@dataclass
class PipelineResult:
    segmentation: Segmentation
    report: dict[str, Any]
    tracks: dict[str, list[Track]] = field(default_factory=dict)


class Pipeline:
    def __init__(self, options: PipelineOptions | None = None) -> None:
        self.options = options or PipelineOptions()
        self._check_options()
        self._device: Any = None
        self._transcriber: Any = None
        self._detector: Any = None
        self._segmenter: Any = None
        self._detector_lock = threading.RLock()  # one detector call at a time (early detection runs in a thread)
        self._detections = DetectionCache()
        self._early: EarlyDetection | None = None
        self._early_lock = threading.Lock()

    def _check_options(self) -> None:
        options = self.options
        if options.plane not in PLANES:
            raise InputError(f"Unknown plane {options.plane!r}; use one of {', '.join(PLANES)}.")
        if options.search not in ("coarse", "dense"):
            raise InputError(f"Unknown search {options.search!r}; use 'coarse' or 'dense'.")
        if options.detector_size is not None and not 128 <= options.detector_size <= 1333:
            raise InputError(f"Detector size {options.detector_size} px is out of range; use 128-1333 "
                             f"(the detector was trained at {TRAINED_DETECTOR_SIZE}).")
        from .runtime import check_runtime

        check_runtime(options.runtime)
        if options.detect_every < 1:
            raise InputError(f"detect_every must be 1 or more, not {options.detect_every}.")
        if options.box_prompts not in ("measured", "plain"):
            raise InputError(f"Unknown box_prompts {options.box_prompts!r}; use 'measured' or 'plain'.")

    def accuracy_warnings(self) -> list[str]:
        """The chosen options that trade accuracy for speed, in words for the report and the user."""
        out = []
        size = self.options.detector_size
        if size is not None and size != TRAINED_DETECTOR_SIZE:
            out.append(f"Speed option: the detector ran at {size} px instead of the {TRAINED_DETECTOR_SIZE} px "
                       "it was trained at; small lesions may be missed.")
        if self.options.detect_every > 1:
            out.append(f"Speed option: the detector ran on every {self.options.detect_every}. slice only; the "
                       "boxes on the slices between were interpolated.")
        return out

    # ------------------------------------------------------------------ models (lazy)

    @property
    def device(self) -> Any:
        if self._device is None:
            from .device import choose_device

            self._device = choose_device(self.options.device)
        return self._device

    @property
    def segmenter_name(self) -> str:
        if self.options.segmenter:
            return self.options.segmenter
        return "medsam" if self.device.type == "cuda" else "litemedsam"

    @property
    def batch(self) -> int:
        """Slices per detector and segmenter call.

        Batches pay off on a GPU; on a CPU they do not (benchmarks/results/cpu.json, 2 cores:
        Grounding DINO 8.1 s per slice at batch 1 vs 8.75 s at batch 4, LiteMedSAM 1.40 vs
        2.09 s; MedSAM's ViT-B also needs ~10 GB at batch 4), so the CPU default is 1.
        """
        if self.options.batch_size is not None:
            return max(1, int(self.options.batch_size))
        return 4 if self.device.type == "cuda" else 1

    @property
    def whisper_model(self) -> str:
        if self.options.whisper_model:
            return self.options.whisper_model
        from .asr import default_asr_model

        return default_asr_model(self.device)

    @property
    def transcriber(self) -> Any:
        if self._transcriber is None:
            from .asr import load_transcriber

            self._transcriber = load_transcriber(
                self.whisper_model, device=self.options.device, backend=self.options.asr_backend,
                precision=self.options.precision,
            )
        return self._transcriber

    @property
    def detector(self) -> Any:
        with self._detector_lock:  # loaded once, even when early detection asks for it at the same time
            if self._detector is None:
                from .detection import load_detector

                self._detector = load_detector(
                    self.options.detector_model, adapter=self.options.adapter,
                    device=self.options.device, precision=self.options.precision, runtime=self.options.runtime,
                )
            return self._detector

    @property
    def segmenter(self) -> Any:
        if self._segmenter is None:
            from .segmentation import load_segmenter

            self._segmenter = load_segmenter(
                self.segmenter_name, device=self.options.device, precision=self.options.precision,
                runtime=self.options.runtime,
            )
        return self._segmenter

    # ------------------------------------------------------------------ speech + NLP

    def transcribe(
        self,
        audio: np.ndarray | str | Path,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        return self.transcriber.transcribe(
            audio, language=self.options.language, progress=progress, cancel=cancel
        )

    def extract(self, text: str) -> Findings:
        from .nlp import extract

        return extract(text)

    def cross_check(self, transcript: Transcript) -> Any:
        """``CrossCheck`` of the spoken-language transcript against its English translation (None when
        Whisper gave no translation): a disagreement must be confirmed before segmenting."""
        if transcript.translation is None:
            return None
        from .nlp.crosscheck import cross_check

        return cross_check(transcript.text, transcript.translation, transcript.language)

    # ------------------------------------------------------------------ segmentation

    def start_detection(
        self,
        volume: Volume,
        classes: list[str] | None = None,
        findings: Findings | None = None,
    ) -> EarlyDetection | None:
        """Start the slice search for ``classes`` (default: the affirmed findings) in a background
        thread and return at once; :meth:`segment` with the same volume, prompt and options then
        waits for it instead of searching again. Call it once the findings are shown, so the
        search overlaps the user's review. Speculative: unsupported classes are skipped, and
        ``None`` is returned when there is nothing to search. A previous early detection for
        other keys is cancelled.
        """
        classes = [c for c in (classes if classes is not None else (findings.affirmed if findings else []))
                   if c in SUPPORTED_CLASSES]
        if not classes:
            return None
        self._check_options()
        options = copy.copy(self.options)  # later option edits (Slicer's light options) must not reach this run
        keys = list(self._detection_keys(volume, classes, findings, options).values())
        frame: list[_SliceFrame] = []  # cut once, in the worker thread

        def search(key: DetectionKey, progress: ProgressCallback, cancel: CancelToken) -> SearchResult:
            if not frame:
                frame.append(_SliceFrame.build(volume, options.plane))
            return self._search(frame[0], key.label, key.caption, options, progress, cancel)

        with self._early_lock:
            running = self._early
            if running is not None and not (running.stopped or running.done) and running.wanted == frozenset(keys):
                return running
            if running is not None:
                running.cancel()  # it stops at its next detector call; the detector lock orders the two
            self._early = EarlyDetection(keys, search, self._detections).start()
            return self._early

    def cancel_detection(self) -> None:
        """Stop a running early detection (its finished searches stay cached)."""
        with self._early_lock:
            if self._early is not None:
                self._early.cancel()
            self._early = None

    def forget_detections(self) -> None:
        """Drop the cached slice searches (the next ``segment`` runs the detector again)."""
        self.cancel_detection()
        self._detections.clear()

    def segment(
        self,
        volume: Volume,
        classes: list[str] | None = None,
        findings: Findings | None = None,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> PipelineResult:
        """Detect and segment each class in ``classes`` (default: the affirmed findings)."""
        classes = list(classes if classes is not None else (findings.affirmed if findings else []))
        unknown = [c for c in classes if c not in SUPPORTED_CLASSES]
        if unknown:
            raise InputError(
                f"Unsupported class {unknown[0]!r}; LoGSAM segments {', '.join(SUPPORTED_CLASSES)}."
            )
        if not classes:
            raise InputError("No tumor class to segment: the dictation affirms none of "
                             f"{', '.join(SUPPORTED_CLASSES)}. Correct the text or pick a class.")
        self._check_options()
        options = copy.copy(self.options)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        keys = self._detection_keys(volume, classes, findings, options)
        self._join_early(list(keys.values()), progress, cancel)
        frame = _SliceFrame.build(volume, options.plane)
        tracks: dict[str, list[Track]] = {}
        search_stats: dict[str, Any] = {}
        warnings: list[str] = self.accuracy_warnings()

        for number, label in enumerate(classes):
            def stage_progress(stage: str, fraction: float, message: str = "", n: int = number,
                               name: str = label) -> None:
                progress("detect", (n + fraction) / len(classes), f"{name}: {message}")

            key = keys[label]
            result = self._detections.get(key)
            reused = result is not None
            if result is None:
                result = self._search(frame, label, key.caption, options, stage_progress, cancel)
                self._detections.put(key, result)
            every = options.detect_every
            # One missed detection inside a lesion is bridged, whatever the detection stride.
            found = build_tracks(result.detections, max_gap=2 * every - 1, min_slices=options.min_track_slices)
            side = findings.side_for(label) if (findings and options.location_prior) else None
            if side in ("left", "right"):
                kept = [t for t in found if frame.side_of(t) in (side, "midline")]
                if len(kept) < len(found):
                    warnings.append(f"{len(found) - len(kept)} {label} detection(s) on the other side "
                                    f"were dropped because the dictation says {side}.")
                found = kept
            tracks[label] = found
            search_stats[label] = {"caption": key.caption, "detector_slices": result.calls,
                                   "slices_with_boxes": sum(1 for b in result.detections.values() if b),
                                   "candidates": len(frame.candidates), "lesions": len(found),
                                   "searched_earlier": reused}
            if not found:
                warnings.append(f"No {label} was found by the detector.")
        timings["detect"] = time.perf_counter() - started

        started = time.perf_counter()
        prompts: dict[str, Any] = {}
        segmentation = self._segment_tracks(frame, tracks, progress, cancel, prompts)
        timings["segment"] = time.perf_counter() - started
        report = self._report(volume, frame, segmentation, tracks, findings, timings, warnings,
                              search_stats, mode="dictation", box_prompts=prompts)
        progress("segment", 1.0, "done")
        return PipelineResult(segmentation, report, tracks)

    def segment_box(
        self,
        volume: Volume,
        box_lps: tuple[tuple[float, float, float], tuple[float, float, float]],
        label: str = "glioma",
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> PipelineResult:
        """Segment the lesion inside a 3D box (two LPS corners, mm); no detector.

        With ``box_prompts="measured"`` (the default) the prompts follow the lesion outwards from the
        box's middle slice and stop where it ends (``LoGSAMLib.propagation``); with "plain" every
        slice the box covers gets the box itself."""
        if label not in SUPPORTED_CLASSES:
            raise InputError(f"Unsupported class {label!r}; use one of {', '.join(SUPPORTED_CLASSES)}.")
        from .volume import ras_box_to_slice_boxes

        self._check_options()
        frame = _SliceFrame.build(volume, self.options.plane)
        ras = [(-p[0], -p[1], p[2]) for p in box_lps]
        # On an oblique volume the RAS box cuts each slice in a different place: per-slice boxes.
        boxes = ras_box_to_slice_boxes(volume, ras[0], ras[1], frame.axis)
        track = Track({s: Box(*b, score=1.0, label=label) for s, b in boxes.items()})
        started = time.perf_counter()
        prompts: dict[str, Any] = {}
        segmentation = None
        if self.options.box_prompts == "measured":
            segmentation, track = self._follow_in_box(frame, track, label, progress, cancel, prompts)
        if segmentation is None:  # "plain", or no lesion on the box's middle slice
            segmentation = self._segment_tracks(frame, {label: [track]}, progress, cancel, prompts)
        timings = {"segment": time.perf_counter() - started}
        report = self._report(volume, frame, segmentation, {label: [track]}, None, timings, [], {},
                              mode="box", box_lps=[list(map(float, p)) for p in box_lps], box_prompts=prompts)
        return PipelineResult(segmentation, report, {label: [track]})

    def segment_image2d(self, image: np.ndarray, label: str) -> np.ndarray:
        """One 2D image (as in BRISC) and a class -> bool mask (union of the detected boxes)."""
        from .prompts import caption_for

        image = np.asarray(image)
        with self._detector_lock:
            boxes = self.detector.detect([image], caption_for(label), self.options.box_threshold,
                                         self.options.text_threshold)[0]
        mask = np.zeros(image.shape[:2], dtype=bool)
        if boxes:
            arr = np.array([b.as_array() for b in boxes])
            mask = np.any(self.segmenter.segment(image, arr), axis=0)
        return mask

    # ------------------------------------------------------------------ internals

    def _detection_keys(self, volume: Volume, classes: list[str], findings: Findings | None,
                        options: PipelineOptions) -> dict[str, DetectionKey]:
        fingerprint, settings = volume_fingerprint(volume), detection_settings(options)
        return {label: DetectionKey(fingerprint, options.plane, label, caption, settings)
                for label, caption in _captions(classes, findings).items()}

    def _join_early(self, keys: list[DetectionKey], progress: ProgressCallback, cancel: CancelToken | None) -> None:
        """Let a running early detection finish the keys wanted now (or stop it), then take over."""
        with self._early_lock:
            early, self._early = self._early, None
        if early is None:
            return
        if early.covers(keys):
            early.keep_only(keys)
            early.wait(progress, cancel)
        else:
            early.cancel()  # another prompt or volume: wait only for its detector call in flight
            early.wait(no_progress, cancel)

    def _search(self, frame: _SliceFrame, label: str, caption: str, options: PipelineOptions,
                progress: ProgressCallback, cancel: CancelToken | None) -> SearchResult:
        """The slice search for one class: which slices hold its boxes."""
        detect_fn = self._detect_fn(frame, caption, label, options)
        every = options.detect_every
        candidates = frame.candidates[::every]
        if options.search == "dense":
            return dense_search(candidates, detect_fn, self.batch, progress, cancel)
        step = step_for_spacing(frame.slice_spacing * every, options.coarse_step_mm)
        return coarse_to_fine_search(candidates, detect_fn, step, self.batch, progress=progress, cancel=cancel)

    def _detect_fn(self, frame: _SliceFrame, caption: str, label: str, options: PipelineOptions):
        def detect(indices: list[int]) -> dict[int, list[Box]]:
            images = [frame.display_image(i) for i in indices]
            with self._detector_lock:
                detector = self.detector
                if hasattr(detector, "short_side"):
                    detector.short_side = options.detector_size or TRAINED_DETECTOR_SIZE
                found = detector.detect(images, caption, options.box_threshold, options.text_threshold)
            out: dict[int, list[Box]] = {}
            for index, boxes in zip(indices, found, strict=True):
                out[index] = [_relabel(frame.view.box_from_display(b), label) for b in boxes]
            return out

        return detect

    def _follow_in_box(self, frame: _SliceFrame, track: Track, label: str, progress: ProgressCallback,
                       cancel: CancelToken | None, notes: dict[str, Any]) -> tuple[Segmentation | None, Track]:
        """Box mode's prompts that follow the lesion; (None, track) when the box's middle is empty."""
        from .box_margin import MEASURED
        from .propagation import candidate_fn, follow_lesion

        display = {s: frame.view.box_to_display(b) for s, b in track.boxes.items()}
        done = [0]

        def check() -> None:
            if cancel is not None:
                cancel.check()
            done[0] += 1
            progress("segment", min(1.0, done[0] / max(1, len(display))), f"{done[0]} slices")

        followed = follow_lesion(display, frame.display_image, candidate_fn(self.segmenter), MEASURED, check)
        notes.update(method="follow the lesion inside the box", margin=MEASURED.describe(),
                     core_only_replaced=len(followed.guarded), start_slice=followed.start, stops=followed.stops)
        if not followed.masks:
            notes["method"] = "a box on every slice (no lesion on the box's middle slice)"
            return None, track
        mask = np.zeros(frame.volume.array.shape, dtype=bool)
        for s, slice_mask in followed.masks.items():
            put = [slice(None)] * 3
            put[frame.axis] = s
            mask[tuple(put)] = frame.view.from_display(slice_mask)
        followed_track = Track({s: _relabel(frame.view.box_from_display(b), label)
                                for s, b in followed.prompts.items()})
        return self._labelmap(frame, {label: [followed_track]}, {label: mask}), followed_track

    def _segment_tracks(
        self,
        frame: _SliceFrame,
        tracks: dict[str, list[Track]],
        progress: ProgressCallback,
        cancel: CancelToken | None,
        notes: dict[str, Any] | None = None,
    ) -> Segmentation:
        from .box_margin import MEASURED, NONE
        from .propagation import guarded_masks

        measured = self.options.box_prompts == "measured"
        rule = MEASURED if measured else NONE
        replaced, seen_fills = 0, {}
        per_slice: dict[int, list[tuple[str, Box]]] = {}
        for label, label_tracks in tracks.items():
            for track in label_tracks:
                for s, box in track.boxes.items():
                    per_slice.setdefault(s, []).append((label, box))
        masks = {label: np.zeros(frame.volume.array.shape, dtype=bool) for label in tracks}
        slices = sorted(per_slice)
        batch = self.batch
        if self.segmenter_name == "medsam" and self.device.type == "cpu":
            batch = 1  # ViT-B global attention at batch 4 needs ~10 GB and is no faster on a CPU
        for start in range(0, len(slices), batch):
            if cancel is not None:
                cancel.check()
            chunk = slices[start : start + batch]
            images = [frame.display_image(s) for s in chunk]
            prompts = [[rule.pad(frame.view.box_to_display(b), image.shape[1], image.shape[0]) for _, b in per_slice[s]]
                       for s, image in zip(chunk, images, strict=True)]
            if measured:
                groups = [[label for label, _ in per_slice[s]] for s in chunk]
                results, guarded = guarded_masks(self.segmenter, images, prompts, groups, batch, seen_fills)
                replaced += guarded
            else:
                results = self.segmenter.segment_many(
                    images, [np.array([b.as_array() for b in p]) for p in prompts], batch_size=batch)
            for s, slice_masks in zip(chunk, results, strict=True):
                for (label, _), mask in zip(per_slice[s], slice_masks, strict=True):
                    raw = frame.view.from_display(mask)
                    index = [slice(None)] * 3
                    index[frame.axis] = s
                    masks[label][tuple(index)] |= raw
            progress("segment", min(1.0, (start + len(chunk)) / max(1, len(slices))),
                     f"{start + len(chunk)}/{len(slices)} slices")
        if notes is not None:
            notes.setdefault("method", "a box on every slice")
            notes.setdefault("margin", rule.describe())
            notes.setdefault("core_only_replaced", replaced)
        return self._labelmap(frame, tracks, masks)

    def _labelmap(self, frame: _SliceFrame, tracks: dict[str, list[Track]], masks: dict[str, np.ndarray]
                  ) -> Segmentation:
        from .outputs import CLASS_LABELS

        labelmap = np.zeros(frame.volume.array.shape, dtype=np.uint8)
        classes: dict[int, str] = {}
        for label, label_tracks in tracks.items():
            clean = _clean_mask(masks[label], label_tracks, frame)
            value = CLASS_LABELS[label]
            labelmap[clean & (labelmap == 0)] = value  # the first class named wins overlaps
            classes[value] = label
        return Segmentation(frame.volume.with_array(labelmap), classes)

    def _report(
        self,
        volume: Volume,
        frame: _SliceFrame,
        segmentation: Segmentation,
        tracks: dict[str, list[Track]],
        findings: Findings | None,
        timings: dict[str, float],
        warnings: list[str],
        search_stats: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]:
        from .measurements import measure_lesions
        from .outputs import lesion_stats
        from .report_line import report_lines

        lesions = measure_lesions(segmentation, image=volume, classes=list(tracks))
        track_report = {
            label: [
                {
                    "slices": [t.first, t.last],
                    "score": round(t.score, 4),
                    "boxes": {str(s): {**_box_dict(b), "interpolated": s in t.interpolated}
                              for s, b in sorted(t.boxes.items())},
                }
                for t in label_tracks
            ]
            for label, label_tracks in tracks.items()
        }
        return {
            "software": {"name": "LoGSAM", "version": __version__},
            **extra,
            "findings": findings.to_dict() if findings else None,
            "classes": list(tracks),
            "volume": {"shape_ijk": list(volume.shape_ijk), "spacing": list(volume.spacing),
                       "origin": list(volume.origin), "direction": volume.direction.tolist()},
            "plane": self.options.plane,
            "slicing_axis": frame.axis,
            "search": {"strategy": self.options.search, **search_stats},
            "tracks": track_report,
            "lesions": lesions,  # measurements per connected lesion (measurements.py)
            "report_lines": report_lines(lesions, findings, language=self.options.language or "en"),
            "statistics": lesion_stats(segmentation, axis=frame.axis),
            "models": self._model_report(detector=bool(search_stats)),
            "options": asdict(self.options),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "warnings": warnings,
        }

    def _model_report(self, detector: bool) -> dict[str, Any]:
        from . import models

        ids = {"segmenter": {"medsam": "medsam-vit-b", "litemedsam": "litemedsam"}[self.segmenter_name]}
        if detector:
            ids["detector"] = self.options.detector_model
            if self.options.adapter:
                ids["adapter"] = str(self.options.adapter)
        out: dict[str, Any] = {}
        for role, model_id in ids.items():
            try:
                spec = models.get_spec(model_id)
                out[role] = {"id": model_id, "files": {f.name: f.sha256 for f in spec.files}}
            except Exception:  # a file path instead of a registry id
                out[role] = {"id": model_id, "files": {}}
        return out


# ---------------------------------------------------------------------------- helpers


@dataclass
class _SliceFrame:
    """A volume cut into display-oriented uint8 slices along its acquired axis."""

    volume: Volume
    axis: int
    view: SliceView
    window: tuple[float, float]
    candidates: list[int]
    slice_spacing: float

    @classmethod
    def build(cls, volume: Volume, plane: str) -> _SliceFrame:
        from .volume import foreground_threshold, intensity_window, slicing_axis

        axis = 0 if volume.array.shape[0] == 1 else slicing_axis(volume, plane)
        view = slice_view(volume, axis, plane)
        window = intensity_window(volume)
        # Slices with no tissue in them hold no tumor; skipping them changes no result.
        other = tuple(a for a in range(3) if a != axis)
        foreground = (volume.array > foreground_threshold(volume.array)).mean(axis=other)
        candidates = [int(s) for s in np.flatnonzero(foreground > 0.005)]
        spacing_by_array_axis = (volume.spacing[2], volume.spacing[1], volume.spacing[0])
        return cls(volume, axis, view, window, candidates, float(spacing_by_array_axis[axis]))

    @property
    def in_plane(self) -> tuple[int, int]:
        rows, cols = (a for a in range(3) if a != self.axis)
        return rows, cols

    def display_image(self, index: int) -> np.ndarray:
        from .volume import to_uint8

        raw = np.take(self.volume.array, index, axis=self.axis)
        return self.view.to_display(to_uint8(raw, self.window))

    def side_of(self, track: Track) -> str:
        from .volume import patient_side

        index, box = track.peak
        return patient_side(self.volume, self.axis, index, box)


def _captions(classes: list[str], findings: Findings | None) -> dict[str, str]:
    from .prompts import caption_for

    prompts = findings.prompts if findings else {}
    return {c: prompts.get(c) or caption_for(c) for c in classes}


def _relabel(box: Box, label: str) -> Box:
    return Box(box.x0, box.y0, box.x1, box.y1, box.score, label)


def _box_dict(box: Box) -> dict[str, float]:
    return {"x0": round(box.x0, 2), "y0": round(box.y0, 2), "x1": round(box.x1, 2),
            "y1": round(box.y1, 2), "score": round(box.score, 4)}


def _clean_mask(mask: np.ndarray, tracks: list[Track], frame: _SliceFrame) -> np.ndarray:
    """Fill holes slice by slice and drop 3D components that no box supports."""
    from scipy import ndimage

    if not mask.any():
        return mask
    filled = np.zeros_like(mask)
    for s in np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != frame.axis))):
        index = [slice(None)] * 3
        index[frame.axis] = int(s)
        filled[tuple(index)] = ndimage.binary_fill_holes(mask[tuple(index)])
    support = np.zeros_like(mask)
    rows_axis, cols_axis = frame.in_plane
    for track in tracks:
        for s, box in track.boxes.items():
            index: list[Any] = [slice(None)] * 3
            index[frame.axis] = s
            index[rows_axis] = slice(max(0, int(np.floor(box.y0))), int(np.ceil(box.y1)))
            index[cols_axis] = slice(max(0, int(np.floor(box.x0))), int(np.ceil(box.x1)))
            support[tuple(index)] = True
    labels, _ = ndimage.label(filled)
    supported = np.unique(labels[support & filled])
    return np.isin(labels, supported[supported > 0])
