"""The Python packages Slicer's environment needs, and their one-time installation.

*Local* mode: the engine runs as a separate process with Slicer's own Python (``PythonSlicer``),
so the engine's packages go into Slicer's environment, although Slicer's interpreter never
imports them. torch and torchvision come from the PyTorch extension (the build that matches the
GPU driver), everything else from ``Resources/requirements.txt``.

*Remote* mode: the engine runs on a server; the module's client is standard-library only, so only
``Resources/requirements-remote.txt`` (sounddevice, for recording) is installed.

Slicer's numpy, SimpleITK and torch are never replaced by pip: ``slicer.packaging.pip_ensure``
gets ``skip_packages`` where it has it, and every other path installs with a constraints file that
pins the installed versions (openai-whisper pulls numba, which caps numpy; with numpy pinned pip
picks a numba that accepts Slicer's numpy instead of downgrading it).
"""

import importlib.metadata
import inspect
import logging
import os
import re
import tempfile

import slicer

from .common import MODULE_DIR, _

TORCH_REQUIREMENT = ">=2.1"
LOCAL, REMOTE = "local", "remote"
# Installed packages pip must leave alone: Slicer's own, and the PyTorch extension's.
PROTECTED = ("numpy", "SimpleITK", "torch", "torchvision", "triton")
TORCH_PACKAGES = ("torch", "torchvision")


def requirementsPath(mode: str = LOCAL) -> str:
    name = "requirements-remote.txt" if mode == REMOTE else "requirements.txt"
    return os.path.join(MODULE_DIR, "Resources", name)


def requirements(mode: str = LOCAL) -> list:
    with open(requirementsPath(mode), encoding="utf-8") as file:
        lines = [line.split("#", 1)[0].strip() for line in file]
    return [line for line in lines if line and not line.startswith("-")]


def _installedVersion(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missingDependencies(mode: str = LOCAL) -> list:
    """Names of the packages that are missing or too old (torch first in local mode)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # Slicer always ships packaging; be safe anyway
        Requirement = None

    wanted = requirements(mode)
    if mode != REMOTE:
        wanted = [f"torch{TORCH_REQUIREMENT}", "torchvision", *wanted]
    missing = []
    for text in wanted:
        if Requirement is not None:
            requirement = Requirement(text)
            name, specifier = requirement.name, requirement.specifier
        else:
            name, specifier = re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0], None
        installed = _installedVersion(name)
        if installed is None:
            missing.append(name)
        elif specifier is not None and not specifier.contains(installed, prereleases=True):
            missing.append(f"{name} ({installed}, needs {specifier})")
    return missing


def protectionConstraints(folder: str | None = None) -> str:
    """A pip constraints file pinning the installed numpy, SimpleITK, torch, torchvision and triton;
    returns its path. Packages not installed are left free (torch in remote mode, say)."""
    lines = [f"{name}=={version}" for name in PROTECTED if (version := _installedVersion(name))]
    descriptor, path = tempfile.mkstemp(prefix="logsam-constraints-", suffix=".txt", dir=folder)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("# Written by LoGSAM: keep Slicer's and the PyTorch extension's packages as installed.\n")
        file.write("\n".join(lines) + "\n")
    return path


def _pipEnsureOptions(pipEnsure) -> dict | None:
    """Keyword arguments that make ``pip_ensure`` leave the protected packages alone, or None when
    this Slicer's ``pip_ensure`` cannot (then the constraints path is used instead)."""
    try:
        parameters = inspect.signature(pipEnsure).parameters
    except (TypeError, ValueError):
        return None
    if "skip_packages" not in parameters:
        return None
    options = {"skip_packages": list(PROTECTED), "requester": "LoGSAM"}
    if "prompt_install" in parameters:
        options["prompt_install"] = False
    return options


def _installTorch(missing: list) -> bool:
    """torch and torchvision through the PyTorch extension; True when both are usable."""
    try:
        import PyTorchUtils
    except ImportError:
        slicer.util.errorDisplay(
            _("LoGSAM gets PyTorch from the PyTorch extension, which is not installed. "
              "Install 'PyTorch' in the Extensions Manager, restart Slicer, then try again."),
            windowTitle=_("LoGSAM"))
        return False
    torchVersion = _installedVersion("torch")
    # torch present but torchvision missing: ask for the torchvision built for *this* torch.
    requirement = f"=={torchVersion}" if torchVersion and "torch" not in [m.split(" ")[0] for m in missing] \
        else TORCH_REQUIREMENT
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=requirement)
    if torch is None:
        return False
    stillMissing = [n for n in missingDependencies(LOCAL) if n.split(" ")[0] in TORCH_PACKAGES]
    if stillMissing:
        slicer.util.errorDisplay(
            _("PyTorch does not meet LoGSAM's needs ({problems}). Update it in the PyTorch Utils module "
              "(torch {requirement}), restart Slicer, then try again.").format(
                problems=", ".join(stillMissing), requirement=TORCH_REQUIREMENT), windowTitle=_("LoGSAM"))
        return False
    return True


def installDependencies(mode: str = LOCAL, askConfirmation: bool = True) -> bool:
    """Install what is missing, after one confirmation; True when everything is installed.

    Never raises for a failed installation: it shows the problem and returns False.
    """
    missing = missingDependencies(mode)
    if not missing:
        return True
    if mode == REMOTE:
        question = _("LoGSAM's remote mode needs these Python packages: {names} (a few MB). Continue?")
    else:
        question = _("LoGSAM needs these Python packages: {names}.\n\nPyTorch is installed by the PyTorch extension "
                     "(a GPU build when a GPU is present, about 2-3 GB), the others from PyPI (about 1 GB). "
                     "This takes several minutes. Continue?")
    if askConfirmation and not slicer.util.confirmOkCancelDisplay(
            question.format(names=", ".join(missing)), windowTitle=_("LoGSAM: install dependencies")):
        return False
    if mode != REMOTE and any(name.split(" ")[0] in TORCH_PACKAGES for name in missing):
        if not _installTorch(missing):
            return False
    try:
        _installRequirements(mode)
    except Exception as error:  # pip failed: say so, keep Slicer usable
        logging.error("LoGSAM: installing requirements failed", exc_info=True)
        slicer.util.errorDisplay(_("Installing LoGSAM's Python packages failed: {error}").format(error=error),
                                 windowTitle=_("LoGSAM"))
        return False
    return not missingDependencies(mode)


def _installRequirements(mode: str) -> None:
    path = requirementsPath(mode)
    try:
        import slicer.packaging as packaging

        pipEnsure = packaging.pip_ensure
    except (ImportError, AttributeError):  # Slicer 5.10: no slicer.packaging
        pipEnsure = None
    options = _pipEnsureOptions(pipEnsure) if pipEnsure is not None else None
    if options is not None:
        pipEnsure(packaging.load_requirements(path), **options)
        return
    # Slicer 5.10 (or a pip_ensure without skip_packages): pip with the installed versions pinned.
    constraints = protectionConstraints()
    try:
        with slicer.util.WaitCursor():
            slicer.util.showStatusMessage(_("Installing LoGSAM's Python packages…"), 2000)
            slicer.util.pip_install(["-r", path, "-c", constraints])
    finally:
        os.remove(constraints)
    if slicer.util.confirmYesNoDisplay(
            _("The packages are installed. Restart Slicer now? (Recommended: packages that were "
              "already loaded are only updated after a restart.)"), windowTitle=_("LoGSAM")):
        slicer.util.restart()
