"""``LoGSAMLogic``: the module's scriptable API. MRML conversions come from ``mrml``; the method
itself runs in the engine (a local process or a server) reached through ``engine``."""

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from . import dependencies, engine, mrml
from .common import DETECTION_MODELS, SEGMENTER_MODELS, _, engineFolder
from .parameters import LoGSAMParameterNode


class LoGSAMLogic(ScriptedLoadableModuleLogic):
    """MRML glue around the LoGSAM engine, usable without the panel, e.g. from the Python console::

        logic = LoGSAM.LoGSAMLogic()      # starts the local engine process on first use
        findings = logic.extract("Enhancing mass in the right frontal lobe, consistent with glioma.")
        segmentation = logic.segment(getNode("MRBrainTumor1"), findings["affirmed"])
        logic.export(segmentation, getNode("MRBrainTumor1"), "/tmp/tumor.nii.gz")

    ``logic.connection.useRemote(url, token)`` sends the work to a ``logsam serve`` server instead.
    """

    # MRML <-> engine values (module functions, kept here as the logic's API)
    volumeFromNode = staticmethod(mrml.volumeFromNode)
    volumeNodeFromVolume = staticmethod(mrml.volumeNodeFromVolume)
    boxFromRoi = staticmethod(mrml.boxFromRoi)
    classDisplay = staticmethod(mrml.classDisplay)
    resultSummary = staticmethod(mrml.resultSummary)
    segmentationFromNode = staticmethod(mrml.segmentationFromNode)
    setSegmentationFromResult = staticmethod(mrml.setSegmentationFromResult)
    export = staticmethod(mrml.export)

    def __init__(self, connection: "engine.EngineConnection | None" = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.connection = connection or engine.EngineConnection(engineFolder())

    def getParameterNode(self) -> LoGSAMParameterNode:
        return LoGSAMParameterNode(super().getParameterNode())

    # ------------------------------------------------------------------ options

    @staticmethod
    def pipelineOptions(parameterNode=None) -> dict:
        """Engine options (``PipelineOptions`` fields) from the panel's settings; "auto" and 0
        thresholds are left out: the engine's defaults apply."""
        if parameterNode is None:
            return {}
        p = parameterNode
        options = {"whisper_model": p.whisperModel, "language": p.language, "segmenter": p.segmenter,
                   "plane": p.plane, "box_threshold": p.boxThreshold or None, "text_threshold": p.textThreshold or None}
        return {key: value for key, value in options.items() if value not in (None, "", "auto")}

    @staticmethod
    def serveArguments(device: str = "auto") -> list:
        """``logsam serve`` options of the local engine: the device is the engine process's choice."""
        return [] if device in ("", "auto") else ["--device", device]

    # ------------------------------------------------------------------ engine calls (blocking; for scripts)

    def _client(self):
        self.connection.waitReady(pump=slicer.app.processEvents)
        return self.connection.client()

    def extract(self, text: str) -> dict:
        """The findings of an English dictation (the engine's JSON: ``affirmed``, ``negated``, ``findings``...)."""
        return self._client().extract(text)

    def runJob(self, submit, fetch, progress=None):
        """Submit an engine job and wait for it, keeping Slicer's events flowing; returns its result."""
        outcome = {}

        def done(result):
            outcome["result"] = result

        def failed(error, details):
            outcome["error"] = error

        self._client()
        job = engine.EngineJob(self.connection, submit, fetch, progress or (lambda *args: None), done, failed,
                               pump=slicer.app.processEvents).start()
        job.wait()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def segment(self, volumeNode, classes, findings=None, segmentationNode=None, options=None, progress=None):
        """Detect and segment ``classes`` in ``volumeNode`` in the engine; blocks until done (scripts).

        Returns the segmentation node (``segmentationNode`` or a new one). With ``findings`` (from
        ``extract``) whose affirmed classes are ``classes``, the dictated side and region apply too.
        """
        volume = self.volumeFromNode(volumeNode)
        submit = engine.submitForClasses(volume, self.connection.volumeSuffix(), list(classes), findings,
                                         self.connection.jobOptions(options or {}))
        result = self.runJob(submit, engine.segmentationResult, progress)
        return self.setSegmentationFromResult(result, volumeNode, segmentationNode)

    def segmentBox(self, volumeNode, roiNode, label="glioma", segmentationNode=None, options=None, progress=None):
        """Segment every slice an ROI covers as ``label`` (no detector); blocks until done."""
        box = self.boxFromRoi(roiNode, volumeNode)
        volume = self.volumeFromNode(volumeNode)
        submit = engine.submitSegment(volume, self.connection.volumeSuffix(), box=[list(box[0]), list(box[1])],
                                      label=label, options=self.connection.jobOptions(options or {}))
        result = self.runJob(submit, engine.segmentationResult, progress)
        return self.setSegmentationFromResult(result, volumeNode, segmentationNode)

    # ------------------------------------------------------------------ dependencies and models

    def dependencyMode(self) -> str:
        return dependencies.REMOTE if self.connection.mode == engine.REMOTE else dependencies.LOCAL

    def requirements(self) -> list:
        return dependencies.requirements(self.dependencyMode())

    def missingDependencies(self) -> list:
        return dependencies.missingDependencies(self.dependencyMode())

    def installDependencies(self, askConfirmation: bool = True) -> bool:
        return dependencies.installDependencies(self.dependencyMode(), askConfirmation)

    def missingModels(self, segmenter: str = "litemedsam") -> list:
        """Ids of the models the typed-dictation path needs that the engine's cache lacks."""
        needed = [*DETECTION_MODELS, SEGMENTER_MODELS.get(segmenter, segmenter)]
        try:
            cached = {m["id"] for m in self._client().models() if m.get("cached")}
        except Exception as error:  # the engine is not available: say so instead of guessing
            return [_("(engine unavailable: {error})").format(error=error)]
        return [modelId for modelId in needed if modelId not in cached]
