"""LoGSAM: a spoken (or typed) radiology report -> a brain-tumor segmentation, in 3D Slicer.

This is the module Slicer loads; its parts live in the ``LoGSAMSlicer`` package next to it (the
panel, the logic's MRML conversions, the engine connection, the dependency installer, the
self-test). The method itself (Whisper, the negation-aware NLP, Grounding DINO with the LoGSAM
LoRA adapter, MedSAM / LiteMedSAM) runs in the engine ``LoGSAMLib``, in a separate process that
the module starts with Slicer's Python (``logsam serve`` on 127.0.0.1), or on a remote server.
No torch or model code runs in Slicer's own interpreter.
"""

import slicer
from LoGSAMSlicer.common import _, ensureEngineImportable, translate
from LoGSAMSlicer.logic import LoGSAMLogic
from LoGSAMSlicer.parameters import LoGSAMParameterNode
from LoGSAMSlicer.sampledata import registerSampleData
from LoGSAMSlicer.selftest import LoGSAMTest
from LoGSAMSlicer.widget import LoGSAMWidget
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

ensureEngineImportable()

# Slicer finds the widget, logic and test classes by name in this file.
__all__ = ["LoGSAM", "LoGSAMLogic", "LoGSAMParameterNode", "LoGSAMTest", "LoGSAMWidget"]

HELP_TEXT = """
<p>Speak or type a radiology report over a brain MRI; LoGSAM segments the tumor it describes
(glioma, meningioma or pituitary adenoma).</p>
<p><b>Quick start</b></p>
<ol>
<li><b>Advanced &gt; Install dependencies</b> once (PyTorch comes from the PyTorch extension), then
download the models listed under <b>Advanced &gt; Models</b> (sizes are shown; nothing downloads by itself).</li>
<li>Load a brain MRI, e.g. <i>MRBrainTumor1</i> from the Sample Data module (LoGSAM category), and
pick it as the <b>Input volume</b>.</li>
<li><b>Dictation</b>: press <b>Record</b>, speak the report, press <b>Stop</b> (or <b>Load audio file</b>,
or type the report in English), then <b>Review findings</b>.</li>
<li><b>Review</b>: check the transcript, the translation and the findings table. Negated classes are not
segmented; tick or untick classes if the analysis is wrong. Segmenting is possible only once this
review is shown.</li>
<li><b>Segment</b>: one segment per class is created in the output segmentation (or in a new one). If the
detector misses the tumor, place an ROI around it and press <b>Segment in box</b>.</li>
<li><b>Export</b> the result as a NIfTI or NRRD label map or a .seg.nrrd segmentation.</li>
</ol>
<p>The work runs outside Slicer's own process: in a LoGSAM engine that the module starts on this computer
on first use (its start-up shows in the status line), or on a shared server (<b>Advanced &gt; Engine</b>:
server URL and token).</p>
<p>Research software: not for clinical use. Review every result.</p>
"""

ACKNOWLEDGEMENT_TEXT = """
<p>LoGSAM implements the method of: M. R. I. Bhuiyan, S. Bhat, M. Qahqaie, T.-T. Nguyen,
P. A. Pérez Toro, T. Arias Vergara, A. Maier. <i>LoGSAM: Parameter-Efficient Cross-Modal Grounding
for MRI Segmentation.</i> arXiv:2603.17576, 2026.
(<a href="https://arxiv.org/abs/2603.17576">arXiv</a>,
<a href="https://github.com/robayet002/LoGSAM">reference code</a>)</p>
<p>It uses Whisper (OpenAI), spaCy and negspaCy, Grounding DINO (IDEA Research), MedSAM and LiteMedSAM
(Ma et al.); see the README for the licenses and citations of each model.</p>
"""


class LoGSAM(ScriptedLoadableModule):
    """Module description. Nothing heavy happens here: Slicer creates this at startup."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LoGSAM")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []  # PyTorch is an extension dependency, checked when needed
        self.parent.contributors = ["LoGSAM developers"]
        self.parent.helpText = _(HELP_TEXT)
        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT_TEXT)
        slicer.app.connect("startupCompleted()", registerSampleData)
