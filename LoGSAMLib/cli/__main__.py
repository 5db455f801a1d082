"""``python -m LoGSAMLib.cli`` is the ``logsam`` command (how Slicer starts a local engine with its own Python)."""

import sys

from . import main

sys.exit(main())
