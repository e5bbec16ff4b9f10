"""The listener's place in the scheduler (nice value, time slice, SCHED_FIFO), checked in the
kernel's own account of each task (``/proc/PID/sched``), with and without privilege."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pyprocconn.priority import SHORTEST_SLICE, shorten_slice, time_slice
from pyprocconn.processes import ProcessTable
from tests.test_cli import Cli


def _sched(path: str) -> dict[str, str]:
    """``/proc/.../sched`` as name -> value."""
    fields = {}
    for line in Path(path, "sched").read_text().splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    return fields


def _slice_ns(path: str) -> int:
    return int(_sched(path)["se.slice"])


# Where the kernel keeps no slice per task (before 6.12) there is nothing to check.
pytestmark = [
    pytest.mark.skipif(
        "se.slice" not in _sched("/proc/self") or time_slice() is None,
        reason="this kernel (or layer) keeps no time slice per task",
    ),
]


def _in_a_thread(work: Callable[[], object]) -> tuple[int, object]:
    """Run ``work()`` in a thread of its own (the slice is per thread: the test's stays as it
    was): that thread's id and the result."""
    done: list[tuple[int, object]] = []
    thread = threading.Thread(target=lambda: done.append((threading.get_native_id(), work())))
    thread.start()
    thread.join()
    return done[0]


def test_the_slice_is_the_calling_threads_in_the_kernels_account() -> None:
    mine = _slice_ns("/proc/thread-self")
    results: dict[str, object] = {}

    def work() -> object:
        results["granted"] = shorten_slice()
        results["kernel"] = _slice_ns("/proc/thread-self")
        return time_slice()

    tid, now = _in_a_thread(work)
    assert results == {"granted": SHORTEST_SLICE, "kernel": round(SHORTEST_SLICE * 1e9)}
    assert now == SHORTEST_SLICE and tid != threading.get_native_id()
    assert _slice_ns("/proc/thread-self") == mine  # the caller's thread only


def test_a_table_asked_for_a_slice_gets_it() -> None:
    def work() -> object:
        with ProcessTable(snapshot=False, time_slice=SHORTEST_SLICE):
            return _slice_ns("/proc/thread-self")

    assert _in_a_thread(work)[1] == round(SHORTEST_SLICE * 1e9)


SCRIPT = """
import os
from pyprocconn.priority import shorten_slice
{before}
print(shorten_slice(), os.geteuid(), os.getpriority(os.PRIO_PROCESS, 0))
"""


def _run(before: str, prefix: tuple[str, ...] = ()) -> str:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", SCRIPT.format(before=before)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root to test without privilege")
def test_no_privilege_is_needed_and_the_nice_value_is_kept() -> None:
    # Imports done, then root gives up every id and capability: a user like any other.
    drop = "os.nice(5); os.setgroups([]); os.setgid(65534); os.setuid(65534)"
    niced = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)  # the child's, from the test's
    assert _run(drop) == f"{SHORTEST_SLICE} 65534 {niced}"


@pytest.mark.skipif(os.geteuid() != 0, reason="chrt needs CAP_SYS_NICE")
def test_a_real_time_thread_has_no_slice_to_set() -> None:
    assert _run("", prefix=("chrt", "-f", "1")).startswith("None ")


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan, math.inf])
def test_a_nonsense_slice_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        shorten_slice(seconds)


pytestmark.append(pytest.mark.skipif(os.geteuid() != 0, reason="the command runs as root"))


def _command_sched(*args: str, prefix: tuple[str, ...] = ()) -> tuple[dict[str, str], str]:
    """The command's scheduling as the kernel tells it, once it runs, and its -S line."""
    cli = Cli("-S", "-e", "ptrace", *args, prefix=prefix)
    assert cli.wait_for(bool, timeout=15), "no header"
    sched = _sched(f"/proc/{cli.process.pid}")
    sched["nice"] = str(os.getpriority(os.PRIO_PROCESS, cli.process.pid))
    code, err = cli.finish()
    assert code == 0, err
    said = [line for line in err.splitlines() if line.startswith("priority:")]
    return sched, said[0]


def test_the_command_runs_at_nice_minus_20_with_the_shortest_slice() -> None:
    sched, said = _command_sched()
    assert (sched["nice"], sched["se.slice"]) == ("-20", str(round(SHORTEST_SLICE * 1e9)))
    assert said == f"priority: nice -20, time slice {SHORTEST_SLICE * 1e3:g} ms"


def test_without_cap_sys_nice_the_command_still_gets_the_slice() -> None:
    no_nice = ("setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice")
    sched, said = _command_sched(prefix=no_nice)
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # the test's, which the command inherits
    assert (sched["nice"], sched["se.slice"]) == (str(nice), str(round(SHORTEST_SLICE * 1e9)))
    assert said == (
        f"priority: nice {nice} (not raised: needs CAP_SYS_NICE), "
        f"time slice {SHORTEST_SLICE * 1e3:g} ms"
    )


def test_no_priority_leaves_nice_and_slice_as_they_were() -> None:
    sched, said = _command_sched("--no-priority")
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert (sched["nice"], sched["se.slice"]) == (str(nice), str(_slice_ns("/proc/self")))
    assert said == f"priority: nice {nice} (left as it was)"


def test_realtime_is_sched_fifo_and_says_so() -> None:
    sched, said = _command_sched("-r")
    assert sched["policy"] == str(os.SCHED_FIFO) and said == "priority: SCHED_FIFO"
