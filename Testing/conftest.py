"""Shared fixtures. Tiny official-format checkpoints are built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Stage tests run PyTorch; the CPU runtimes (converted per model and slice size) are tested
# against it in test_runtime.py, where "auto" is exercised explicitly.
os.environ.setdefault("LOGSAM_RUNTIME", "torch")


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


@pytest.fixture
def one_torch_thread():
    """One torch thread (tiny models decode fastest single-threaded; the CPUs are shared)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def german_speech():
    """The sample German dictation, spoken by espeak-ng (16 kHz mono float32)."""
    from LoGSAMLib.testing.speech import DICTATIONS, speak

    return speak(DICTATIONS["de"], voice="de")
