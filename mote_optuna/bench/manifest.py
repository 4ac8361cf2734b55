"""What every bench output records about the run that produced it, so a published figure can be
traced and regenerated: the commit, library versions, CPU, cores, threads, date and command."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mote_optuna.latency.runtimes import cpu_model
from mote_optuna.storage.url import mask_url_passwords

LIBRARIES = ("torch", "torchvision", "optuna", "numpy", "scipy", "pandas")
MANIFEST_KEY = "manifest"


def manifest(argv: list[str]) -> dict[str, Any]:
    """The run's manifest; ``argv``: the command line after ``python -m mote_optuna``."""
    return {
        "commit": _commit(),
        "versions": {name: _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        # a storage URL's password never reaches a committed result
        "command": mask_url_passwords(shlex.join(["python", "-m", "mote_optuna", *argv])),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    """The package's git commit, with ``-dirty`` when the tree has changes; None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")
