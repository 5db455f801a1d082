"""The Segment section of the panel (a mixin of ``LoGSAMWidget``): the segmentation job, the
search started while the findings are read, and the result with its report."""

import logging

import qt
import slicer
import vtk

from . import engine, review
from .common import _


class SegmentSectionMixin:
    """Needs the widget's ``ui``, ``logic``, parameter node and job helpers."""

    def _segmentKey(self, classes) -> tuple:
        p = self._parameterNode
        volume = p.inputVolume
        matrix = vtk.vtkMatrix4x4()
        volume.GetIJKToRASMatrix(matrix)
        return (self._reviewedText, tuple(classes), volume.GetID(), volume.GetTransformNodeID(),
                volume.GetImageData().GetMTime() if volume.GetImageData() else 0,
                tuple(matrix.GetElement(r, c) for r in range(3) for c in range(4)),
                repr(sorted(self.logic.pipelineOptions(p).items())), self.logic.connection.mode)

    def _startEarlySearch(self) -> None:
        """Queue the segmentation of the checked classes while the reader checks the findings; Segment
        takes its result if text, classes, volume and settings are still the same. Nothing is shown
        from it, and the scene is untouched until Segment."""
        p = self._parameterNode
        classes = self._checkedClasses()
        if (p is None or p.inputVolume is None or not classes or self._job is not None
                or review.crossCheckDisagrees(self._crossCheck)
                or self.logic.connection.poll() != engine.READY):
            return
        key = self._segmentKey(classes)
        if self._early is not None and self._early[0] == key:
            return
        self._cancelEarly()
        outcome = {}
        try:
            submit = self._segmentSubmit(classes)
            job = engine.EngineJob(self.logic.connection, submit, engine.segmentationResult, lambda *a: None,
                                   lambda result: outcome.update(result=result),
                                   lambda error, details: outcome.update(error=error),
                                   pump=slicer.app.processEvents)
            self._early = (key, job, outcome)
            job.start()
        except Exception:  # a convenience: Segment reports any problem itself
            logging.warning("LoGSAM: the early search did not start", exc_info=True)
            self._early = None
            return
        self._jobTimer.start()
        self.ui.stageLabel.text = _("The engine is searching while you review; press Segment when ready.")

    def _cancelEarly(self) -> None:
        early, self._early = self._early, None
        if early is not None and not early[1].finished:
            early[1].cancel()

    # ------------------------------------------------------------------ segmentation

    def _segmentSubmit(self, classes=None, box=None, label=None):
        p = self._parameterNode
        volume = self.logic.volumeFromNode(p.inputVolume)  # main thread: reads MRML
        options = self.logic.connection.jobOptions(self.logic.pipelineOptions(p))
        suffix = self.logic.connection.volumeSuffix()
        if box is not None:
            return engine.submitSegment(volume, suffix, box=box, label=label, options=options)
        return engine.submitForClasses(volume, suffix, classes, self._findings, options)

    def onSegment(self) -> None:
        if not self._reviewIsCurrent() or self._segmentBlockers(True, self._checkedClasses()):
            return
        self._withEngine(self._segment)

    def _segment(self) -> None:
        classes, volumeNode = self._checkedClasses(), self._parameterNode.inputVolume
        key = self._segmentKey(classes)
        early, self._early = self._early, None
        onDone = lambda result: self._showResult(result, volumeNode)  # noqa: E731
        if early is not None and early[0] == key and "error" not in early[2]:
            job, outcome = early[1], early[2]
            if "result" in outcome:  # already done while the findings were read
                self._beginJob("segment", None)
                self._onJobDone(onDone, outcome["result"])
                return
            self._beginJob("segment", None)  # adopt the running job: its progress and result are shown now
            job._onProgress, job._onDone, job._onError = (self._onJobProgress,
                                                          lambda result: self._onJobDone(onDone, result),
                                                          self._onJobError)
            self._job = job
            self._jobTimer.start()
            self._updateButtons()
            return
        if early is not None and not early[1].finished:
            early[1].cancel()
        try:
            submit = self._segmentSubmit(classes=classes)
        except Exception as error:
            slicer.util.errorDisplay(_("Segmentation could not start: {error}").format(error=error))
            return
        self._startEngineJob("segment", submit, engine.segmentationResult, onDone)

    def onSegmentBox(self) -> None:
        self._withEngine(self._segmentBox)

    def _segmentBox(self) -> None:
        p = self._parameterNode
        volumeNode, label = p.inputVolume, p.boxClass
        try:
            box = self.logic.boxFromRoi(p.roiNode, volumeNode)
            submit = self._segmentSubmit(box=[list(box[0]), list(box[1])], label=label)
        except Exception as error:
            slicer.util.errorDisplay(_("Box segmentation could not start: {error}").format(error=error))
            return
        self._startEngineJob("segmentBox", submit, engine.segmentationResult,
                             lambda result: self._showResult(result, volumeNode))

    def _showResult(self, result, volumeNode) -> None:
        if volumeNode.GetScene() is None:  # the scene was closed while the job ran
            self.ui.stageLabel.text = _("The input volume was removed; the result was discarded.")
            return
        p = self._parameterNode
        segmentationNode = self.logic.setSegmentationFromResult(result, volumeNode, p.outputSegmentation if p else None)
        if p is not None:
            p.outputSegmentation = segmentationNode
        summary = self.logic.resultSummary(result)
        self.ui.stageLabel.text = summary
        self._showReport(result.report)
        if not any(result.segmentation.mask(name).any() for name in result.segmentation.classes.values()):
            slicer.util.warningDisplay(
                _("Nothing was segmented. {summary}\nCheck the dictation and the slice plane, or place an ROI "
                  "around the tumor and use Segment in box.").format(summary=summary), windowTitle=_("LoGSAM"))

    def _showReport(self, report) -> None:
        self._report = report
        text = review.reportText(report)
        self.ui.reportTextEdit.setPlainText(text)
        self.ui.reportTextEdit.visible = bool(text)
        self.ui.copyReportButton.visible = bool(text)
        self._updateButtons()

    def onCopyReport(self) -> None:
        qt.QApplication.clipboard().setText(self.ui.reportTextEdit.toPlainText())
        slicer.util.showStatusMessage(_("The report is on the clipboard."), 3000)
