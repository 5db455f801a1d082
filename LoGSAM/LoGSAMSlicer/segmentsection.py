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
        """Start the engine's slice search for the checked classes while the reader checks the
        findings. Nothing is shown from it and the scene is untouched; the engine reuses its boxes
        for Segment if text, classes, volume and settings are still the same (its detection cache
        decides). A convenience: a failure is logged, and Segment reports any real problem."""
        p = self._parameterNode
        classes = self._checkedClasses()
        if (p is None or p.inputVolume is None or not classes or self._job is not None
                or review.crossCheckDisagrees(self._crossCheck)
                or self.logic.connection.poll() != engine.READY):
            return
        key = self._segmentKey(classes)
        if self._early is not None and self._early[0] == key and not self._early[1].finished:
            return
        self._cancelEarly()
        try:
            submit = self._volumeSubmit(engine.submitEarlySearch, classes)
        except Exception:
            logging.warning("LoGSAM: the early search did not start", exc_info=True)
            return

        def failed(error, details):
            logging.info(f"LoGSAM: the early search ended without boxes: {error}")

        job = engine.EngineJob(self.logic.connection, submit, None, lambda *args: None, lambda status: None,
                               failed, pump=slicer.app.processEvents)
        self._early = (key, job)
        job.start()
        self._jobTimer.start()
        if not job.finished:
            self.ui.stageLabel.text = _("The detector is searching while you review; press Segment when ready.")

    def _cancelEarly(self) -> None:
        early, self._early = self._early, None
        if early is not None and not early[1].finished:
            early[1].cancel()

    # ------------------------------------------------------------------ segmentation

    def _volumeSubmit(self, submitFor, classes):
        p = self._parameterNode
        volume = self.logic.volumeFromNode(p.inputVolume)  # main thread: reads MRML
        options = self.logic.connection.jobOptions(self.logic.pipelineOptions(p))
        return submitFor(volume, self.logic.connection.volumeSuffix(), classes, self._findings, options)

    def onSegment(self) -> None:
        if not self._reviewIsCurrent() or self._segmentBlockers(True, self._checkedClasses()):
            return
        self._withEngine(self._segment)

    def _segment(self) -> None:
        classes, volumeNode = self._checkedClasses(), self._parameterNode.inputVolume
        early, self._early = self._early, None
        if early is not None and early[0] != self._segmentKey(classes) and not early[1].finished:
            early[1].cancel()  # it searched for something else: free the engine for this job
        # A matching search goes on in the engine; the job queued after it uses its boxes.
        try:
            submit = self._volumeSubmit(engine.submitForClasses, classes)
        except Exception as error:
            slicer.util.errorDisplay(_("Segmentation could not start: {error}").format(error=error))
            return
        self._startEngineJob("segment", submit, engine.segmentationResult,
                             lambda result: self._showResult(result, volumeNode))

    def onSegmentBox(self) -> None:
        self._withEngine(self._segmentBox)

    def _segmentBox(self) -> None:
        p = self._parameterNode
        volumeNode, label = p.inputVolume, p.boxClass
        try:
            box = self.logic.boxFromRoi(p.roiNode, volumeNode)
            volume = self.logic.volumeFromNode(volumeNode)
            options = self.logic.connection.jobOptions(self.logic.pipelineOptions(p))
            submit = engine.submitSegment(volume, self.logic.connection.volumeSuffix(),
                                          box=[list(box[0]), list(box[1])], label=label, options=options)
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
