"""A packager's view: from ``python -m build``'s sdist alone, the layer regenerates identically
and the tests that need no kernel pass."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.project_copy import ROOT, run_in

# Header-independent and kernel-free: the parser, the generator, the types, the quoting.
OFFLINE = (
    "tests/test_parse.py",
    "tests/test_codegen.py",
    "tests/test_codegen_layout.py",
    "tests/test_headers_follow.py",
    "tests/test_quoting.py",
    "tests/test_types.py",
)


def test_the_sdist_alone_regenerates_and_tests(tmp_path: Path) -> None:
    built = run_in(ROOT, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT))
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (archive,) = tmp_path.glob("pyprocconn-*.tar.gz")
    with tarfile.open(archive) as sdist:
        sdist.extractall(tmp_path / "unpacked", filter="data")
    (tree,) = (tmp_path / "unpacked").iterdir()
    for needed in ("SECURITY.md", "headers/cn_proc.h", "tests/conftest.py", "pyprocconn/py.typed"):
        assert (tree / needed).is_file(), needed
    regenerated = run_in(tree, "-m", "codegen", "--check")
    assert regenerated.returncode == 0, regenerated.stdout + regenerated.stderr
    tested = run_in(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OFFLINE)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
