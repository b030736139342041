"""What this run is running on: versions, git revision and compute devices.

Logged by ``inmsrl info`` and written into reports so that every number can be traced to the code and
machine that produced it. Imports nothing else from the package (it sits below ``audio``).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import shutil
import subprocess
from pathlib import Path

from inmsrl.version import __version__

_PACKAGES = ("torch", "torchaudio", "numpy", "scipy", "soundfile", "museval", "scikit-learn",
             "matplotlib", "pretty_midi", "tinysoundfont", "faiss-cpu")


def package_versions() -> dict[str, str]:
    """Installed version of each library the toolkit depends on ("missing" if absent)."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def git_revision(path: Path | None = None) -> str:
    """Short commit hash of the checkout holding ``path`` (the package by default), "+dirty" if modified.

    The recipes' own reports (``egs/*/RESULTS*``, which the report being written replaces) do not count
    as modifications: a clean checkout that re-runs a recipe is still the commit it names."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)", ":(top,exclude,glob)egs/*/RESULTS*"], cwd=where,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def compute_devices() -> list[str]:
    """Human-readable names of the devices torch can use, CPU always last."""
    import torch

    devices = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    return devices + [f"cpu ({platform.processor() or platform.machine()}, "
                      f"{torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})"]


def describe() -> dict[str, object]:
    """Everything above in one JSON-friendly dictionary."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "inmsrl": __version__,
        "git": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "ffmpeg": shutil.which("ffmpeg") or "missing (museval needs it)",
        "devices": compute_devices(),
    }
