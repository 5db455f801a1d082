"""Shared fixtures. Tiny official-format checkpoints are built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A LOGSAM_HOME folder holding every tiny model and its registry override."""
    from LoGSAMLib.testing import tiny_models

    directory = tmp_path_factory.mktemp("tiny-models")
    tiny_models.build(directory)
    return directory


@pytest.fixture
def tiny_home(tiny_models_dir, monkeypatch) -> Path:
    """Point LOGSAM_HOME at the tiny models for one test."""
    monkeypatch.setenv("LOGSAM_HOME", str(tiny_models_dir))
    return tiny_models_dir


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Path:
    """An empty model cache, so that nothing is found locally."""
    home = tmp_path / "logsam-home"
    home.mkdir()
    monkeypatch.setenv("LOGSAM_HOME", str(home))
    return home
