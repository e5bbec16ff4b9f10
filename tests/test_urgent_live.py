"""The connector's ``urgent`` doorbell and the process table's linger, against the real kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import pyprocconn as pc
from pyprocconn import layout
from pyprocconn.processes import GATHER, ProcessTable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")

_FORK_THEN_EXEC = """
import os, time
time.sleep(0.3)
if os.fork() == 0:
    os._exit(0)
time.sleep(0.3)
os.execv("/bin/true", ["/bin/true"])
"""
LONG_LINGER = 30.0  # far above anything the test waits for: only a ring ends it early


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_an_exec_ends_a_linger_at_once_and_is_in_the_batch() -> None:
    with pc.ProcConnector("fork,exec,exit", urgent="exec") as conn:
        if not layout.HAS_EVENT_FILTER:  # headers before 6.6: no per-socket filter to ring
            assert conn.urgent is None
            return
        assert conn.urgent == pc.EventType.EXEC
        # A fork (of a child that exits at once) starts a linger; the exec 0.3 s later must
        # end it.
        child = subprocess.Popen([sys.executable, "-c", _FORK_THEN_EXEC])
        started = time.monotonic()
        seen: list[pc.ProcEvent] = []
        while sum(isinstance(e, pc.ExecEvent) and e.process_tgid == child.pid for e in seen) < 2:
            seen += conn.recv_batch(LONG_LINGER, linger=LONG_LINGER)  # python's exec, true's
        waited = time.monotonic() - started
        child.wait()
    assert waited < LONG_LINGER / 3, f"the exec did not end the linger ({waited:.1f} s)"
    forked = [e for e in seen if isinstance(e, pc.ForkEvent) and e.parent_tgid == child.pid]
    assert forked, "the child's fork was received"


def test_urgent_must_be_among_the_events_received() -> None:
    with pytest.raises(ValueError, match="urgent"):
        pc.ProcConnector("fork", urgent="exec")


def test_closing_closes_the_doorbell_too() -> None:
    before = _open_fds()
    conn = pc.ProcConnector(urgent="exec")
    opened = _open_fds() - before
    assert len(opened) == (2 if conn.urgent is not None else 1)
    conn.close()
    assert not (_open_fds() - before)


_EXEC_BURST = """
import os
children = [os.posix_spawn("/bin/true", ["/bin/true"], os.environ) for _ in range(60)]
for child in children:
    os.waitpid(child, 0)
"""


def _feed_until(table: ProcessTable, parent: int, wanted: int) -> None:
    """Feed the table until ``wanted`` execs of ``parent``'s children (or itself) came."""
    deadline = time.monotonic() + 20
    seen: set[int] = {parent}
    execs = 0
    while execs < wanted and time.monotonic() < deadline:
        batch = list(table.conn.recv_batch(5.0, linger=table.linger()))
        for event in batch:
            if isinstance(event, pc.ForkEvent) and event.parent_tgid in seen:
                seen.add(event.child_tgid)
            elif isinstance(event, pc.ExecEvent) and event.process_tgid in seen:
                execs += 1
        table.feed(batch)
    assert execs >= wanted, f"{execs} of {wanted} execs came"


def test_the_table_lingers_unless_execs_come_close_together() -> None:
    with ProcessTable() as table:
        if table.conn.urgent is None:
            assert table.linger() == 0.0
            return
        assert table.linger() == GATHER  # nothing fed: it wakes at an exec, not a fork
        # A burst of execs far closer than EXECS_CLOSE: every event is taken as it comes. (Other
        # programs' execs can only bring the gaps closer: the assertion holds beside them.)
        burst = subprocess.Popen([sys.executable, "-c", _EXEC_BURST])
        _feed_until(table, burst.pid, 40)
        assert table.linger() == 0.0
        burst.wait()
