"""``python -m LoGSAMLib.cli``: the ``logsam`` command without the installed entry point."""

import sys

from . import main

sys.exit(main())
