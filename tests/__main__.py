"""``python -m tests``: every check CI runs, in order, from the project root.

Generated layer up to date, ruff (lint and format), mypy --strict, pytest, then the benchmark's
quick mode (so it cannot rot; it reports but does not judge), then the package on the oldest and
the newest CPython the project supports, where the machine has them (a note where absent): each in
its own fresh venv, with the tests that need neither the generator's extra (Python >= 3.11) nor
long runs. Extra arguments go to pytest.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.project_copy import copy_project

ROOT = Path(__file__).resolve().parent.parent
OTHER_PYTHONS = ("3.10", "3.13")  # requires-python's floor, and the newest here
ON_EVERY_PYTHON = (
    "tests/test_parse.py",
    "tests/test_headers_follow.py",
    "tests/test_quoting.py",
    "tests/test_record_units.py",
    "tests/test_sink.py",
    "tests/test_connector_live.py",
    "tests/test_priority_live.py",
    "tests/test_containers.py",
)


def _interpreter(version: str) -> str | None:
    """That Python: pyenv's build, else one on PATH that runs (a pyenv shim may not)."""
    builds = sorted(
        glob.glob(str(Path.home() / f".pyenv/versions/{version}.*/bin/python{version}"))
    )
    for candidate in [*builds, shutil.which(f"python{version}")]:
        runs = candidate and subprocess.run([candidate, "-c", ""], check=False).returncode == 0
        if runs:
            return candidate
    return None


def _on(version: str) -> bool:
    """The package installed (not editable) in a fresh venv of that Python, and its tests."""
    python = _interpreter(version)
    if python is None:
        print(f"note: no Python {version} on this machine: not tested there", flush=True)
        return True
    with tempfile.TemporaryDirectory(prefix=f"pyprocconn-py{version}-") as scratch:
        venv = Path(scratch) / "venv"
        # Built and tested from a copy beside the venv: building in ROOT leaves a build/ whose
        # stale files a later build installs, and from ROOT "python -m" would import ROOT's
        # package before the installed one.
        source = copy_project(Path(scratch))
        shutil.copytree(source / "tests", Path(scratch) / "tests")
        steps = [
            [python, "-m", "venv", str(venv)],
            [
                str(venv / "bin/pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                str(source),
                "pytest>=8",
                "pytest-timeout>=2.3",
                "hypothesis>=6.100",
                "jsonschema>=4.18",
            ],
            [
                str(venv / "bin/python"),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--import-mode=append",
                *ON_EVERY_PYTHON,
            ],
        ]
        return all(subprocess.run(step, cwd=scratch, check=False).returncode == 0 for step in steps)


def main() -> int:
    python = sys.executable
    steps = [
        [python, "-m", "codegen", "--check"],
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "mypy"],
        [python, "-m", "pytest", *sys.argv[1:]],
        [python, "-m", "benchmarks", "--quick"],
    ]
    failed = []
    for step in steps:
        print(f"==> {' '.join(step[1:])}", flush=True)
        if subprocess.run(step, cwd=ROOT, check=False).returncode != 0:
            failed.append(" ".join(step[2:]))
    for version in OTHER_PYTHONS:
        print(f"==> the tests on Python {version}", flush=True)
        if not _on(version):
            failed.append(f"Python {version}")
    if failed:
        print(f"FAILED: {'; '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
