"""Regenerate the kernel layer from other headers into a copy of the project, and run the
decoding, view, filter and event tests against it: the 6.1 headers (no ``proc_input``, no
``PROC_EVENT_NONZERO_EXIT``, no ``PROC_EVENT_ALL``) and a synthetic newer header (a new event
type with its own struct, ``exit_flags`` appended to ``exit_proc_event``, a new macro)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import OTHER_HEADERS
from tests.project_copy import copy_project, run_in

HEADER_SETS = {
    "6.1": OTHER_HEADERS / "linux-libc-dev-6.1.187",
    "newer": OTHER_HEADERS / "synthetic-newer",
}
# Header-independent by design: each reads what it needs from the generated layer.
TESTS = ("tests/test_headers_follow.py", "tests/test_parse.py", "tests/test_fuzz.py")


def _regenerated_copy(headers: Path, scratch: Path) -> Path:
    copy = copy_project(scratch)
    done = run_in(copy, "-m", "codegen", "--headers", str(headers), timeout=300)
    assert done.returncode == 0, done.stderr
    return copy


@pytest.mark.parametrize("name", sorted(HEADER_SETS))
def test_the_friendly_layer_follows_regenerated_headers(name: str, tmp_path: Path) -> None:
    copy = _regenerated_copy(HEADER_SETS[name], tmp_path)
    done = run_in(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_newer_header_gives_a_typed_new_event_and_the_grown_field(tmp_path: Path) -> None:
    copy = _regenerated_copy(HEADER_SETS["newer"], tmp_path)
    script = """
import pyprocconn as pc
from pyprocconn.command.options import EVENT_NAMES
from pyprocconn.kernel import cn_proc
cls = pc.NewthingEvent
assert cls._fields == ("what", "cpu", "timestamp_ns", "process_pid", "process_tgid",
                       "newthing_value"), cls._fields
assert cls.TYPE == pc.EventType.NEWTHING == 0x400 and "newthing" in EVENT_NAMES
assert pc.EventType.NEWTHING in pc.EventType.ALL
assert pc.ExitEvent._fields[-1] == "exit_flags"
assert cn_proc.PROC_EVENT_NEWTHING_DATA_SIZE == 16
print("ok")
"""
    done = run_in(copy, "-c", script, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    # Past every other union member: a kernel older than this header sends no exit_flags
    # (the decoder gives None), and the generated types say so; the older fields stay int.
    stub = (copy / "pyprocconn" / "_event_types.pyi").read_text()
    exit_class = stub[stub.index("class ExitEvent") :]
    exit_class = exit_class[: exit_class.index("def __new__")]
    assert "    exit_flags: int | None\n" in exit_class
    assert "    parent_pid: int\n" in exit_class and "    exit_code: int\n" in exit_class


def test_headers_without_the_scheduler_ones_give_a_layer_without_a_slice(tmp_path: Path) -> None:
    # The 6.1 set has the three connector headers only: the optional modules go, and the
    # package runs without a time slice (and says so), not with a stale module.
    copy = _regenerated_copy(HEADER_SETS["6.1"], tmp_path)
    kernel = copy / "pyprocconn" / "kernel"
    assert sorted(path.name for path in kernel.glob("*.py")) == [
        "__init__.py",
        "_records.py",
        "cn_proc.py",
        "connector.py",
        "netlink.py",
    ]
    script = "from pyprocconn import priority; print(priority.shorten_slice())"
    done = run_in(copy, "-c", script, timeout=60)
    assert done.stdout.strip() == "None", done.stderr
