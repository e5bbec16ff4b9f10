from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Tests stop the command with SIGINT, as Ctrl-C does. A shell that starts a job in the background
# (or nohup) starts it with SIGINT ignored, which survives exec into every child, and Python then
# leaves it ignored (17 tests hung that way): run, and so start children, with the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Copies of ../shared/kernel-headers/ (6.1 and the source-tree form), kept in the repo.
OTHER_HEADERS = ROOT / "tests" / "codegen" / "kernel-headers"
VENDORED_HEADERS = ROOT / "headers"


def header_sets(tmp: Path) -> dict[str, Path]:
    """The three header generations (vendored 7.3.4, 6.1, source tree), a folder of three each.

    The kernel-source-tree form has only cn_proc.h; it is paired with the vendored
    connector.h and netlink.h (the same text in both forms).
    """
    sets = {"vendored": VENDORED_HEADERS}
    old = OTHER_HEADERS / "linux-libc-dev-6.1.187"
    if old.is_dir():
        sets["6.1"] = old
    tree = OTHER_HEADERS / "kernel-source-tree" / "cn_proc.h"
    if tree.is_file():
        folder = tmp / "kernel-source-tree"
        folder.mkdir()
        (folder / "cn_proc.h").write_bytes(tree.read_bytes())
        for name in ("connector.h", "netlink.h"):
            (folder / name).write_bytes((VENDORED_HEADERS / name).read_bytes())
        sets["kernel-source-tree"] = folder
    return sets


@pytest.fixture(scope="session")
def all_header_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sets = header_sets(tmp_path_factory.mktemp("headers"))
    assert len(sets) == 3, f"expected three header generations, found {sorted(sets)}"
    return sets


@pytest.fixture(scope="session", autouse=True)
def listeners_at_start() -> bool:
    """Whether some listener was subscribed before any test ran (taken first, as a baseline)."""
    if os.geteuid() != 0:
        return False
    from tests.paths import passive_member_sees_events

    return passive_member_sees_events()


_Process = TypeVar("_Process", subprocess.Popen[str], subprocess.Popen[bytes])
_STARTED: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = []


def owned(process: _Process) -> _Process:
    """Note a command the test started, so that it ends with the test whatever happens."""
    _STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_command_outlives_its_test() -> Iterator[None]:
    """A test that fails before stopping its commands would leave them listening (a registration
    and a reader) into the next tests: SIGTERM (they unsubscribe on it), then SIGKILL."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
