"""MRML nodes <-> the engine's values: volumes with their geometry, ROI boxes, segments with
names, colors and terminology, and export. Runs on Slicer's main thread; no model code."""

import logging
import os
from typing import TYPE_CHECKING

import slicer
import vtk

from .common import CLASS_TAG, _

if TYPE_CHECKING:
    from LoGSAMLib.types import Volume

_terminologyLoaded = False


def segmentTag(segment, name: str) -> str | None:
    """A segment tag's value, or None (vtkSegment.GetTag fills an output string argument)."""
    value = vtk.reference("") if hasattr(vtk, "reference") else vtk.mutable("")
    if not segment.GetTag(name, value):
        return None
    return str(value.get()) if hasattr(value, "get") else str(value)


def volumeFromNode(volumeNode) -> "Volume":
    """A scalar volume node -> engine Volume (pixels copied, geometry in LPS).

    The geometry is the node's own IJK-to-RAS; a parent transform is not applied (the
    output segmentation is placed under the same transform, so they stay aligned).
    """
    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.errors import InputError

    if volumeNode is None:
        raise InputError(_("Choose an input volume first."))
    imageData = volumeNode.GetImageData()
    if imageData is None or imageData.GetNumberOfPoints() == 0:
        raise InputError(_("The volume '{name}' has no image data.").format(name=volumeNode.GetName()))
    if imageData.GetNumberOfScalarComponents() != 1:
        raise InputError(_("The volume '{name}' is a color or vector image; LoGSAM needs a scalar MRI.")
                         .format(name=volumeNode.GetName()))
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return slicer_bridge.volume_from_ijk_to_ras(slicer.util.arrayFromVolume(volumeNode),
                                                slicer_bridge.matrix_from_vtk(matrix))


def volumeNodeFromVolume(volume: "Volume", name: str = "LoGSAM volume",
                         nodeClassName: str = "vtkMRMLScalarVolumeNode"):
    """An engine Volume -> a new volume node with the same pixels and geometry."""
    from LoGSAMLib import slicer_bridge

    ijkToRAS = slicer_bridge.matrix_to_vtk(slicer_bridge.ijk_to_ras_from_volume(volume), vtk.vtkMatrix4x4())
    return slicer.util.addVolumeFromArray(volume.array, ijkToRAS=ijkToRAS, name=name,
                                          nodeClassName=nodeClassName)


def boxFromRoi(roiNode, volumeNode) -> tuple:
    """An ROI node -> the two LPS corners (in the volume's own frame) ``segment_box`` takes.

    A rotated ROI gives its axis-aligned enclosing box; a transformed volume gets the box
    mapped into its untransformed frame, where the engine works.
    """
    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.errors import InputError

    if roiNode is None:
        raise InputError(_("Place an ROI around the tumor first (Markups > ROI)."))
    bounds = [0.0] * 6
    roiNode.GetRASBounds(bounds)  # world coordinates
    corners = slicer_bridge.bounds_corners(bounds)
    if volumeNode is not None and volumeNode.GetParentTransformNode() is not None:
        worldToVolume = vtk.vtkGeneralTransform()
        volumeNode.GetParentTransformNode().GetTransformFromWorld(worldToVolume)
        corners = [worldToVolume.TransformPoint(list(corner)) for corner in corners]
    return slicer_bridge.ras_bounds_to_lps_box(slicer_bridge.bounds_of_points(corners))


def classDisplay(className: str) -> tuple:
    """(segment name, RGB color 0..1, terminology entry string or None) for an engine class."""
    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.outputs import CLASS_INFO

    info = CLASS_INFO.get(className)
    if info is None:
        return className, (0.55, 0.80, 0.35), None
    term = info.terminology()
    entry = slicer_bridge.terminology_entry_string(
        category=term["category"], type_=term["type"], type_modifier=term.get("typeModifier"),
        context=term["contextName"], region=term.get("anatomicRegion"),
        region_modifier=term.get("anatomicRegionModifier"),
        region_context=term.get("anatomicContextName", slicer_bridge.ANATOMIC_CONTEXT))
    return info.name, tuple(float(c) for c in info.color), entry


def loadTerminology() -> None:
    """Declare LoGSAM's tumor types to Slicer so the terminology selector shows them."""
    global _terminologyLoaded
    if _terminologyLoaded:
        return
    _terminologyLoaded = True
    try:
        import json
        import tempfile

        from LoGSAMLib.outputs import terminology_context

        terminologies = slicer.modules.terminologies.logic()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(terminology_context(), file)
        terminologies.LoadTerminologyFromFile(file.name)
        os.remove(file.name)
    except Exception:  # only the selector's display depends on it
        logging.warning("LoGSAM: could not register its terminology context", exc_info=True)


def setTerminology(segment, entry: str) -> None:
    if hasattr(segment, "SetTerminology"):
        segment.SetTerminology(entry)
    else:  # Slicer before 5.7
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), entry)


def setSegmentationFromResult(result, volumeNode, segmentationNode=None):
    """Put an engine result (PipelineResult, or a types.Segmentation) into a segmentation node.

    One segment per class, with its id the class name (so a new run replaces the segments of
    the classes it produced and keeps any other segment), the class's name, color and
    terminology, reference geometry from ``volumeNode``, the same parent transform, and a
    place next to the input volume (its study) in the subject hierarchy.
    """
    import numpy as np

    from LoGSAMLib import slicer_bridge

    segmentation = getattr(result, "segmentation", result)
    labelmap = segmentation.labelmap
    loadTerminology()
    if segmentationNode is None:
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName(f"{volumeNode.GetName()} LoGSAM"))
    segmentationNode.CreateDefaultDisplayNodes()
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
    segmentationNode.SetAndObserveTransformNodeID(volumeNode.GetTransformNodeID())

    # The engine returns masks in the input's exact geometry; if not, a temporary node carries theirs.
    nodeMatrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(nodeMatrix)
    sameGeometry = (tuple(slicer.util.arrayFromVolume(volumeNode).shape[:3]) == labelmap.array.shape
                    and np.allclose(slicer_bridge.matrix_from_vtk(nodeMatrix),
                                    slicer_bridge.ijk_to_ras_from_volume(labelmap), atol=1e-4))
    referenceNode = volumeNode
    if not sameGeometry:
        referenceNode = volumeNodeFromVolume(labelmap, name="LoGSAM geometry",
                                             nodeClassName="vtkMRMLLabelMapVolumeNode")
        # Under the same parent transform as the segmentation: the import maps the label map
        # from its world position into the segmentation's frame, so the transform cancels out.
        referenceNode.SetAndObserveTransformNodeID(volumeNode.GetTransformNodeID())
    try:
        vtkSegmentation = segmentationNode.GetSegmentation()
        for value, className in sorted(segmentation.classes.items()):
            mask = labelmap.array == value
            if vtkSegmentation.GetSegment(className):
                vtkSegmentation.RemoveSegment(className)
            if not mask.any():
                continue
            name, color, entry = classDisplay(className)
            vtkSegmentation.AddEmptySegment(className, name, list(color))
            segment = vtkSegmentation.GetSegment(className)
            segment.SetNameAutoGenerated(False)
            segment.SetColorAutoGenerated(False)
            if entry:
                setTerminology(segment, entry)
            segment.SetTag(CLASS_TAG, className)
            slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), segmentationNode,
                                                             className, referenceNode)
    finally:
        if referenceNode is not volumeNode:
            slicer.mrmlScene.RemoveNode(referenceNode)

    shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    volumeItem = shNode.GetItemByDataNode(volumeNode)
    segmentationItem = shNode.GetItemByDataNode(segmentationNode)
    if volumeItem and segmentationItem:
        shNode.SetItemParent(segmentationItem, shNode.GetItemParent(volumeItem))
    return segmentationNode


def resultSummary(result) -> str:
    """One line per class: lesion volume in mL, then the engine's warnings."""
    import numpy as np

    segmentation = getattr(result, "segmentation", result)
    voxelMl = float(np.prod(segmentation.labelmap.spacing)) / 1000.0
    parts = []
    for value, className in sorted(segmentation.classes.items()):
        count = int(np.count_nonzero(segmentation.labelmap.array == value))
        parts.append(_("{name}: {volume:.1f} mL").format(name=className, volume=count * voxelMl)
                     if count else _("{name}: not found").format(name=className))
    warnings = (getattr(result, "report", None) or {}).get("warnings") or []
    return "; ".join(parts) + ("" if not warnings else "\n" + "\n".join(str(w) for w in warnings))


def segmentationFromNode(segmentationNode, volumeNode):
    """A segmentation node -> engine Segmentation on the input volume's grid.

    Each segment becomes one label value: the class's documented value for LoGSAM segments
    (outputs.CLASS_LABELS), the next free value for segments added by hand. Where segments
    overlap, the later one wins.
    """
    import numpy as np

    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.errors import InputError
    from LoGSAMLib.outputs import CLASS_LABELS
    from LoGSAMLib.types import Segmentation

    if segmentationNode is None or volumeNode is None:
        raise InputError(_("Choose the input volume and the segmentation to export."))
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    shape = slicer.util.arrayFromVolume(volumeNode).shape
    labels = np.zeros(shape, dtype=np.uint8)
    classes = {}
    vtkSegmentation = segmentationNode.GetSegmentation()
    segmentIds = [vtkSegmentation.GetNthSegmentID(n) for n in range(vtkSegmentation.GetNumberOfSegments())]
    if not segmentIds:
        raise InputError(_("The segmentation '{name}' has no segments.").format(name=segmentationNode.GetName()))
    nextValue = max(CLASS_LABELS.values()) + 1
    for segmentId in segmentIds:
        segment = vtkSegmentation.GetSegment(segmentId)
        className = segmentTag(segment, CLASS_TAG)
        if className in CLASS_LABELS:
            value = CLASS_LABELS[className]
        else:
            className, value, nextValue = segment.GetName(), nextValue, nextValue + 1
            if value > 255:
                raise InputError(_("Too many segments for an 8-bit label map."))
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, volumeNode)
        labels[mask > 0] = value
        classes[value] = className
    volume = slicer_bridge.volume_from_ijk_to_ras(labels, slicer_bridge.matrix_from_vtk(matrix), copy=False)
    return Segmentation(volume, classes)


def dicomSourceFiles(volumeNode) -> list:
    """The files of the DICOM series a volume was loaded from (Slicer's DICOM module records their
    instance UIDs on the node), or [] when it was not loaded from the DICOM database or a file is gone."""
    uids = (volumeNode.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        return []
    files = [database.fileForInstance(uid) for uid in uids]
    return files if all(files) else []


def exportDicomSeg(segmentationNode, volumeNode, path: str, models: dict | None = None) -> str:
    """A DICOM SEG of the segmentation, referencing the series the volume was loaded from, added to
    Slicer's DICOM database. The engine's writer (highdicom) is used, as by ``logsam run -o x.dcm``:
    the same codes, algorithm identification (``models``: the report's entry) and geometry check."""
    from LoGSAMLib.dicom_seg import write_dicom_seg
    from LoGSAMLib.errors import InputError

    files = dicomSourceFiles(volumeNode)
    if not files:
        raise InputError(_("DICOM SEG needs the source DICOM series: load the volume from the DICOM "
                           "database, or export .nii.gz or .seg.nrrd instead."))
    written = str(write_dicom_seg(segmentationFromNode(segmentationNode, volumeNode), files, path, models=models))
    try:
        slicer.dicomDatabase.insert(written)
    except Exception:  # the file is written; only the database listing failed
        logging.warning("LoGSAM: %s was written but could not be added to the DICOM database.", written)
    return written


def export(segmentationNode, volumeNode, path: str, models: dict | None = None) -> str:
    """Write the segmentation by file extension, in the input volume's geometry:
    ``.nii.gz`` / ``.nii`` / ``.nrrd`` label map, ``.seg.nrrd`` Slicer segmentation, or ``.dcm``
    DICOM SEG (volumes from the DICOM database; see :func:`exportDicomSeg`).

    The engine's writer is used (the same files as the ``logsam`` command, written atomically).
    """
    if path.lower().endswith(".dcm"):
        return exportDicomSeg(segmentationNode, volumeNode, path, models)
    segmentation = segmentationFromNode(segmentationNode, volumeNode)
    try:
        from LoGSAMLib.outputs import write_segmentation

        return str(write_segmentation(segmentation, path))
    except ImportError:
        if not path.lower().endswith(".seg.nrrd"):
            raise
        # slicerio not installed yet: Slicer's own writer produces the same kind of file.
        if not slicer.util.saveNode(segmentationNode, path):
            raise
        return path

