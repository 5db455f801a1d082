"""`python -m LoGSAMLib.cli` with the instant BoxSegmenter double in place of the segmenter model.

For the bad-input matrix, whose subject is everything around the model (checks, the output
transaction, signals): ``python Testing/box_double_cli.py segment IN --box-ras ... -o OUT``.
"""

import runpy

from LoGSAMLib.pipeline import Pipeline
from LoGSAMLib.testing.doubles import BoxSegmenter

Pipeline.segmenter = property(lambda self: BoxSegmenter())  # type: ignore[method-assign]
runpy.run_module("LoGSAMLib.cli", run_name="__main__")
