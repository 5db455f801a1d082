"""The LoGSAM Slicer module's parts; ``LoGSAM.py`` (the module Slicer loads) imports them.

- ``common``: names, choices and the translation helper shared by the parts;
- ``parameters``: the parameter node (what survives saving the scene) and a text-box connector;
- ``mrml``: MRML nodes <-> the engine's values (volumes, ROI boxes, segments, export);
- ``engine``: the engine connection (a local process or a remote server) and jobs polled from a QTimer;
- ``logic``: ``LoGSAMLogic``, the scriptable API over ``mrml`` and ``engine``;
- ``dependencies``: what Slicer's Python needs and its one-time installation;
- ``review``: the Review and result display (findings, cross-check, report lines, lesions);
- ``widget``: the panel; ``selftest``: ``LoGSAMTest``, run inside Slicer.

The folder is a package, not loose ``.py`` files next to ``LoGSAM.py``: Slicer treats every
``.py`` file in a module folder as a module of its own.
"""
