"""A packager's view: from ``python -m build``'s sdist alone, the layer regenerates identically
and the tests that need no kernel pass."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from tests.project_copy import ROOT, importing

# Header-independent and kernel-free: the parser, the generator, the types, the quoting.
OFFLINE = (
    "tests/test_parse.py",
    "tests/test_codegen.py",
    "tests/test_codegen_layout.py",
    "tests/test_headers_follow.py",
    "tests/test_quoting.py",
    "tests/test_types.py",
)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=importing(cwd),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_sdist_alone_regenerates_and_tests(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)]
    built = _run(build, ROOT)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (archive,) = tmp_path.glob("pyprocconn-*.tar.gz")
    with tarfile.open(archive) as sdist:
        sdist.extractall(tmp_path / "unpacked", filter="data")
    (tree,) = (tmp_path / "unpacked").iterdir()
    for needed in ("SECURITY.md", "headers/cn_proc.h", "tests/conftest.py", "pyprocconn/py.typed"):
        assert (tree / needed).is_file(), needed
    regenerated = _run([sys.executable, "-m", "codegen", "--check"], tree)
    assert regenerated.returncode == 0, regenerated.stdout + regenerated.stderr
    tested = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OFFLINE], tree)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
