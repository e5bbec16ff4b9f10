"""Every example in the README runs, as written (fenced blocks marked ``python example``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

EXAMPLES = re.findall(
    r"^```python example\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S
)


def test_the_readme_has_examples_and_every_python_block_is_one() -> None:
    blocks = re.findall(r"^```python.*$", (ROOT / "README.md").read_text(), re.M)
    assert len(EXAMPLES) >= 4 and len(blocks) == len(EXAMPLES)


@pytest.mark.skipif(os.geteuid() != 0, reason="the examples subscribe: root")
@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "an example shows something"
