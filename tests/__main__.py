"""``python -m tests``: every check CI runs, in order, from the project root.

Generated layer up to date, ruff (lint and format), mypy --strict, pytest, then the benchmark's
quick mode (so it cannot rot; it reports but does not judge). Extra arguments go to pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    if failed:
        print(f"FAILED: {'; '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
