"""Cohort batches: a manifest of cases -> per-case outputs + reports, ``summary.csv``, Dice.

A case is the unit of work everywhere (the Slicer job, the server job, the batch row): one
volume with its dictation (text or audio) or class prompt, and a few per-case options. The same
case gives the same outputs and report as ``logsam run`` / ``logsam segment``, whether it ran in
this process, in a local worker process or in a Ray actor (``case.py`` is shared by all three).

- ``manifest``: read and check the CSV / JSON Lines manifest.
- ``case``: :class:`CaseRunner` (models loaded once, one case at a time) and the check that a
  case's outputs are complete (checksums in its report), which resuming uses.
- ``summary``: the rows of ``summary.csv`` and the Dice totals (``evaluation`` does the scoring).
- ``runner``: the driver (resume, retries, Ctrl-C, progress) over a pool of workers: in-process,
  local processes, or Ray actors (``ray_pool``, imported only when asked for).
"""
