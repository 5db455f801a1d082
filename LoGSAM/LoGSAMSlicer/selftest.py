"""``LoGSAMTest``: the self-test Slicer runs (Reload and Test, or ctest in a build).

Always: the MRML <-> engine geometry, segments, export and ROI boxes. With the dependencies
installed: the local engine process (start, health, findings, restart after it is killed) and a
"remote" server (a ``logsam serve`` started here on loopback with its own token: connect, a wrong
token refused, findings). With the models too: the whole method on MRBrainTumor1 in the engine.
"""

import logging
import os
import time

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from . import engine
from .common import CLASS_TAG, engineFolder
from .logic import LoGSAMLogic
from .mrml import segmentTag
from .sampledata import registerSampleData


class LoGSAMTest(ScriptedLoadableModuleTest):
    """In-Slicer self-test (see the module docstring for what runs when)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        for test in (self.test_SampleVolumeGeometry, self.test_ObliqueVolumeGeometry, self.test_SegmentsFromResult,
                     self.test_ExportRoundTrip, self.test_BoxFromRoi, self.test_TransformedFallbackGeometry,
                     self.test_LocalEngine, self.test_RemoteServer, self.test_Inference):
            self.setUp()
            test()

    # helpers -----------------------------------------------------------------
    @staticmethod
    def _matrix(node):
        from LoGSAMLib import slicer_bridge

        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        return slicer_bridge.matrix_from_vtk(matrix)

    def _checkNodeMatchesVolume(self, node, volume):
        import numpy as np

        ijkToRAS = self._matrix(node)
        np.testing.assert_allclose(volume.ijk_to_ras_matrix(), ijkToRAS, atol=1e-6)
        shape = volume.array.shape
        imageData = node.GetImageData()
        corners = [(0, 0, 0), (shape[2] - 1, shape[1] - 1, shape[0] - 1), (shape[2] // 2, shape[1] // 3, shape[0] // 4)]
        for ijk in corners:
            i, j, k = ijk
            self.assertEqual(imageData.GetScalarComponentAsDouble(i, j, k, 0), float(volume.array[k, j, i]))
            lps = (volume.ijk_to_lps_matrix() @ np.array([i, j, k, 1.0]))[:3]
            ras = (ijkToRAS @ np.array([i, j, k, 1.0]))[:3]
            np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-6)

    def _obliqueNode(self):
        """A small oblique, anisotropic, flipped-axis volume with a bright sphere."""
        import numpy as np

        from LoGSAMLib import slicer_bridge

        angle = np.radians(25.0)
        cos, sin = np.cos(angle), np.sin(angle)
        rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        directions = rotation @ np.diag([1.0, -1.0, 1.0])
        ijkToRAS = slicer_bridge.ijk_to_ras_from_geometry((0.9, 1.1, 2.5), (-30.0, 40.0, -12.0), directions)
        k, j, i = np.mgrid[0:20, 0:40, 0:36]
        array = (100 * (((i - 20) ** 2 + (j - 15) ** 2 + 4 * (k - 10) ** 2) < 60)).astype(np.int16)
        node = slicer.util.addVolumeFromArray(array, ijkToRAS=slicer_bridge.matrix_to_vtk(ijkToRAS, vtk.vtkMatrix4x4()),
                                              name="LoGSAMTestOblique")
        return node, array

    # tests -------------------------------------------------------------------
    def test_SampleVolumeGeometry(self):
        self.delayDisplay("MRML <-> engine geometry on MRBrainTumor1")
        import SampleData

        registerSampleData()
        node = SampleData.downloadSample("MRBrainTumor1")
        volume = LoGSAMLogic.volumeFromNode(node)
        self.assertEqual(volume.array.shape, slicer.util.arrayFromVolume(node).shape)
        self._checkNodeMatchesVolume(node, volume)
        back = LoGSAMLogic.volumeNodeFromVolume(volume, name="roundTrip")
        self._checkNodeMatchesVolume(back, volume)
        self.delayDisplay("Sample volume geometry passed")

    def test_ObliqueVolumeGeometry(self):
        self.delayDisplay("MRML <-> engine geometry on an oblique volume")
        import numpy as np

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        np.testing.assert_array_equal(volume.array, array)
        np.testing.assert_allclose(volume.spacing, (0.9, 1.1, 2.5), atol=1e-6)
        # RAS->LPS keeps the handedness; the flipped j axis makes it left-handed.
        np.testing.assert_allclose(np.linalg.det(volume.direction), -1.0, atol=1e-6)
        self._checkNodeMatchesVolume(node, volume)
        self.delayDisplay("Oblique volume geometry passed")

    def test_SegmentsFromResult(self):
        self.delayDisplay("Segment names, colors, terminology, geometry and hierarchy")
        from types import SimpleNamespace

        import numpy as np

        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.outputs import CLASS_INFO
        from LoGSAMLib.types import Segmentation

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[array > 0] = 1
        labels[2:4, 30:35, 2:6] = 2
        result = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels), {1: "glioma", 2: "meningioma"}),
                                 report={"warnings": []})
        logic = LoGSAMLogic()
        segmentationNode = logic.setSegmentationFromResult(result, node)
        vtkSegmentation = segmentationNode.GetSegmentation()
        self.assertEqual(vtkSegmentation.GetNumberOfSegments(), 2)
        for value, className in ((1, "glioma"), (2, "meningioma")):
            segment = vtkSegmentation.GetSegment(className)
            self.assertEqual(segment.GetName(), CLASS_INFO[className].name)
            np.testing.assert_allclose(segment.GetColor(), CLASS_INFO[className].color, atol=1e-6)
            entry = segment.GetTerminology() if hasattr(segment, "GetTerminology") else \
                segmentTag(segment, slicer.vtkSegment.GetTerminologyEntryTagName())
            parsed = slicer_bridge.parse_terminology_entry(entry)
            self.assertEqual(segmentTag(segment, CLASS_TAG), className)
            self.assertEqual(list(parsed["type"]), list(CLASS_INFO[className].type_code))
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, className, node)
            np.testing.assert_array_equal(mask > 0, labels == value)
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        self.assertEqual(shNode.GetItemParent(shNode.GetItemByDataNode(segmentationNode)),
                         shNode.GetItemParent(shNode.GetItemByDataNode(node)))
        # A second run for glioma only replaces glioma and keeps meningioma.
        labels2 = np.zeros_like(labels)
        labels2[5:8, 10:20, 10:20] = 1
        again = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels2), {1: "glioma"}), report={})
        logic.setSegmentationFromResult(again, node, segmentationNode)
        self.assertEqual(vtkSegmentation.GetNumberOfSegments(), 2)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "glioma", node)
        np.testing.assert_array_equal(mask > 0, labels2 == 1)
        self.assertIn("glioma", LoGSAMLogic.resultSummary(again))
        self.delayDisplay("Segments passed")

    def test_ExportRoundTrip(self):
        self.delayDisplay("Export as label map and segmentation, read back")
        import tempfile
        from types import SimpleNamespace

        import numpy as np

        from LoGSAMLib.outputs import CLASS_LABELS
        from LoGSAMLib.types import Segmentation

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[array > 0] = CLASS_LABELS["pituitary"]
        classes = {CLASS_LABELS["pituitary"]: "pituitary"}
        result = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels), classes))
        logic = LoGSAMLogic()
        segmentationNode = logic.setSegmentationFromResult(result, node)
        folder = tempfile.mkdtemp(prefix="LoGSAMTest")
        for suffix in (".nii.gz", ".nrrd"):
            path = logic.export(segmentationNode, node, os.path.join(folder, "tumor" + suffix))
            loaded = slicer.util.loadLabelVolume(path)
            np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded), labels)
            np.testing.assert_allclose(self._matrix(loaded), self._matrix(node), atol=1e-4)
        path = logic.export(segmentationNode, node, os.path.join(folder, "tumor.seg.nrrd"))
        loadedSegmentation = slicer.util.loadSegmentation(path)
        names = [loadedSegmentation.GetSegmentation().GetNthSegment(n).GetName()
                 for n in range(loadedSegmentation.GetSegmentation().GetNumberOfSegments())]
        self.assertEqual(names, [LoGSAMLogic.classDisplay("pituitary")[0]])
        self.delayDisplay("Export passed")

    def test_BoxFromRoi(self):
        self.delayDisplay("ROI -> LPS box, with and without a volume transform")
        import numpy as np

        node, _array = self._obliqueNode()
        roi = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
        roi.SetCenter(10.0, -20.0, 5.0)
        roi.SetSize(20.0, 10.0, 6.0)
        box = LoGSAMLogic.boxFromRoi(roi, node)
        np.testing.assert_allclose(box, ((-20.0, 15.0, 2.0), (0.0, 25.0, 8.0)), atol=1e-6)
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        shift = vtk.vtkMatrix4x4()
        shift.SetElement(0, 3, 5.0)  # the volume moved 5 mm to the right
        transform.SetMatrixTransformToParent(shift)
        node.SetAndObserveTransformNodeID(transform.GetID())
        box = LoGSAMLogic.boxFromRoi(roi, node)
        np.testing.assert_allclose(box, ((-15.0, 15.0, 2.0), (5.0, 25.0, 8.0)), atol=1e-6)
        self.delayDisplay("ROI box passed")

    def test_TransformedFallbackGeometry(self):
        """A result on another grid than the node's, for a volume under a transform: the temporary
        label map sits under the same transform, so the segment is not moved twice."""
        self.delayDisplay("Result on a cropped grid, volume under a transform")
        from types import SimpleNamespace

        import numpy as np

        from LoGSAMLib.types import Segmentation, Volume

        node, array = self._obliqueNode()
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        shift = vtk.vtkMatrix4x4()
        shift.SetElement(0, 3, 7.0)
        shift.SetElement(2, 3, -3.0)
        transform.SetMatrixTransformToParent(shift)
        node.SetAndObserveTransformNodeID(transform.GetID())
        volume = LoGSAMLogic.volumeFromNode(node)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[array > 0] = 1
        k0, j0, i0 = 2, 5, 4
        origin = (volume.ijk_to_lps_matrix() @ np.array([i0, j0, k0, 1.0]))[:3]
        cropped = Volume(np.ascontiguousarray(labels[k0:18, j0:32, i0:30]), volume.spacing, tuple(origin),
                         volume.direction)
        result = SimpleNamespace(segmentation=Segmentation(cropped, {1: "glioma"}), report={})
        segmentationNode = LoGSAMLogic().setSegmentationFromResult(result, node)
        self.assertEqual(segmentationNode.GetTransformNodeID(), transform.GetID())
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "glioma", node)
        np.testing.assert_array_equal(mask > 0, labels > 0)
        self.assertIsNone(slicer.mrmlScene.GetFirstNodeByName("LoGSAM geometry"))
        self.delayDisplay("Transformed fallback geometry passed")

    # engine ------------------------------------------------------------------
    def _skipWithoutDependencies(self, logic, what: str) -> bool:
        missing = logic.missingDependencies()
        if missing:
            message = (f"SKIPPED LoGSAM {what} test: missing Python packages {', '.join(missing)}. "
                       "Install them in the LoGSAM module (Advanced) to run it.")
            logging.warning(message)
            self.delayDisplay(message)
        return bool(missing)

    def test_LocalEngine(self):
        """The engine as a separate PythonSlicer process: start, health, findings, restart, stop."""
        logic = LoGSAMLogic()
        if self._skipWithoutDependencies(logic, "local engine"):
            return
        self.delayDisplay("Starting the local engine with PythonSlicer")
        connection = logic.connection
        try:
            started = time.time()
            connection.waitReady(timeout=300, pump=slicer.app.processEvents)
            logging.info(f"LoGSAM engine ready after {time.time() - started:.1f} s")
            self.assertIn("PythonSlicer", os.path.basename(connection._local.python))
            findings = logic.extract("Enhancing mass consistent with meningioma. No evidence of glioma.")
            self.assertEqual(findings["affirmed"], ["meningioma"])
            self.assertIn("glioma", findings["negated"])
            import sys

            self.assertNotIn("torch", sys.modules, "no torch in Slicer's own interpreter")
            pid = connection._local.pid
            os.kill(pid, 9)  # the engine dies: the next polls restart it with a new port and token
            connection.waitReady(timeout=300, pump=slicer.app.processEvents)
            self.assertNotEqual(connection._local.pid, pid)
            self.assertEqual(logic.extract("Pituitary macroadenoma.")["affirmed"], ["pituitary"])
        finally:
            connection.stop()
        self.assertEqual(connection.state, engine.STOPPED)
        self.delayDisplay("Local engine passed")

    def test_RemoteServer(self):
        """Remote mode against a `logsam serve` started here on loopback with its own token."""
        import json
        import subprocess
        import tempfile

        logic = LoGSAMLogic()
        if self._skipWithoutDependencies(logic, "remote server"):
            return
        self.delayDisplay("Remote mode: a server on 127.0.0.1 with a token")
        folder = tempfile.mkdtemp(prefix="LoGSAMTestServer")
        tokenFile, readyFile = os.path.join(folder, "token"), os.path.join(folder, "ready.json")
        engine.saveToken(tokenFile, "LoGSAMTest-" + os.urandom(8).hex())
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [engineFolder(), os.environ.get("PYTHONPATH")])))
        server = subprocess.Popen([engine.pythonSlicer(), "-m", "LoGSAMLib.cli", "serve", "--host", "127.0.0.1",
                                   "--port", "0", "--token-file", tokenFile, "--ready-file", readyFile], env=env)
        try:
            deadline = time.time() + 300
            while not os.path.exists(readyFile):
                self.assertIsNone(server.poll(), "the server exited during start-up")
                self.assertLess(time.time(), deadline, "the server did not start")
                slicer.app.processEvents()
                time.sleep(0.1)
            with open(readyFile, encoding="utf-8") as file:  # written atomically once it listens
                url = json.load(file)["url"]
            logic.connection.useRemote(url, "wrong-token")
            self.assertEqual(logic.connection.connectRemote(), engine.FAILED)
            self.assertIn("401", logic.connection.message)
            logic.connection.useRemote(url, engine.loadToken(tokenFile))
            self.assertEqual(logic.connection.connectRemote(), engine.READY)
            self.assertEqual(logic.dependencyMode(), "remote")
            findings = logic.extract("Large left frontal glioblastoma.")
            self.assertEqual(findings["affirmed"], ["glioma"])
        finally:
            server.terminate()
            server.wait(30)
        self.delayDisplay("Remote server passed")

    def test_Inference(self):
        """The whole method on MRBrainTumor1 in the local engine (needs dependencies + models)."""
        logic = LoGSAMLogic()
        if self._skipWithoutDependencies(logic, "inference"):
            return
        try:
            missingModels = logic.missingModels("litemedsam")
            if missingModels:
                message = (f"SKIPPED LoGSAM inference test: models not downloaded: {', '.join(missingModels)}. "
                           "Download them in the LoGSAM module (Advanced > Models) to run it.")
                logging.warning(message)
                self.delayDisplay(message)
                return
            self.delayDisplay("Running the whole method on MRBrainTumor1 in the engine (minutes on a CPU)")
            import numpy as np
            import SampleData

            node = SampleData.downloadSample("MRBrainTumor1")
            findings = logic.extract("Large extra-axial enhancing mass with dural tail, consistent with a "
                                     "meningioma. No evidence of glioma.")
            self.assertEqual(findings["affirmed"], ["meningioma"])
            started = time.time()
            segmentationNode = logic.segment(node, findings["affirmed"], findings, options={"segmenter": "litemedsam"})
            logging.info(f"LoGSAM inference on MRBrainTumor1 took {time.time() - started:.0f} s")
            vtkSegmentation = segmentationNode.GetSegmentation()
            if vtkSegmentation.GetSegment("meningioma") is None:
                self.delayDisplay("The detector found no meningioma in MRBrainTumor1 (the run itself worked).")
                return
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "meningioma", node)
            fraction = np.count_nonzero(mask) / mask.size
            self.assertTrue(0 < fraction < 0.2, f"implausible tumor fraction {fraction:.3f}")
        finally:
            logic.connection.stop()
        self.delayDisplay("Inference passed")
