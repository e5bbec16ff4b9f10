"""A copy of the project to change (regenerate its kernel layer, break it on purpose) and test,
the real tree untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info")


def copy_project(into: Path) -> Path:
    """The project's files (not its git history, venv or caches) in ``into / "project"``."""
    copy = into / "project"
    shutil.copytree(ROOT, copy, ignore=_LEFT_OUT)
    return copy


def importing(copy: Path) -> dict[str, str]:
    """The environment in which Python imports the copy's packages, and leaves it unwritten."""
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def run_in(copy: Path, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` in ``copy``, importing the copy's packages; output captured."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=copy,
        env=importing(copy),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
