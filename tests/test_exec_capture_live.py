"""When the table reads /proc for an exec, on the real kernel: an exec another exec of the same
process followed before the read shows nothing of the later program, an exec that comes while a
batch is read is read before the batch is handed on, and the exec reader (a second process)
has what the table itself came too late for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable

import pytest

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.check import in_the_group
from pyprocconn.processes import Process, ProcessTable, Seen
from tests.test_processes_live import _gather

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")

Items = list[pc.ProcEvent | pc.EventsLost]


def _execs_of(pid: int, items: Iterable[object]) -> list[pc.ExecEvent]:
    return [i for i in items if isinstance(i, pc.ExecEvent) and i.process_tgid == pid]


def _exec_records_of(pid: int, records: Iterable[object]) -> list[Process]:
    seen = [r for r in records if isinstance(r, Seen) and _execs_of(pid, [r.event])]
    return [r.process for r in seen if r.process is not None]


def _gather_until(table: ProcessTable, pid: int, execs: int) -> Items:
    """Everything received until ``pid`` has exec'd ``execs`` times, without feeding the table."""
    return _gather(table, lambda items: len(_execs_of(pid, items)) >= execs)


@pytest.mark.parametrize("read", ["in one batch", "the first exec read before the last came"])
def test_an_exec_followed_by_another_before_the_read_shows_nothing_of_the_later(read: str) -> None:
    # sh execs env, which execs sleep: /proc, read after all three, shows only the sleep. The
    # table must not give the sh's or env's exec the sleep's command line (``env X=1 prog``
    # and ``exec "$@"`` wrappers do this within a millisecond).
    with ProcessTable(capture_limit=1 << 20) as table:  # others' events never skip the read
        child = subprocess.Popen(
            ["/bin/sh", "-c", "read go; exec env X=1 /bin/sleep 30"], stdin=subprocess.PIPE
        )
        try:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            items = _gather_until(table, child.pid, 3)
            if read != "in one batch":  # the env's exec read, with the sleep's not yet in hand
                env_exec = _execs_of(child.pid, items)[1]
                table.capture_execs(items[: items.index(env_exec) + 1])
            records = table.feed(items)
        finally:
            child.kill()
            child.wait()
    execs = _exec_records_of(child.pid, records)
    sh, env, sleep = execs[-3:]
    assert sleep.argv == ["/bin/sleep", "30"] and sleep.comm == "sleep" and sleep.complete
    for superseded in (sh, env):
        assert superseded.argv is None and superseded.comm is None and not superseded.complete
        assert superseded.exe is None and superseded.cwd is None
        assert superseded.cgroup == sleep.cgroup is not None  # what exec leaves is kept
    assert sleep.exe == os.path.realpath("/bin/sleep")


def test_an_exec_read_before_the_next_of_its_process_came_is_checked_against_the_first() -> None:
    # sh execs env, env execs a second sh, which waits: the first sh's exec is read then (its
    # /proc shows the second sh). The rest come in the next batch, the last (sleep) after that
    # read: the first sh's record must still say nothing, judged by env's exec, not sleep's.
    script = 'read go; exec env X=1 /bin/sh -c "read more; exec /bin/sleep 30"'
    with ProcessTable(capture_limit=1 << 20) as table:
        child = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.PIPE)
        try:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
            items = _gather_until(table, child.pid, 3)
            first = _execs_of(child.pid, items)[0]
            table.capture_execs(items[: items.index(first) + 1])
            child.stdin.write(b"more\n")
            child.stdin.close()
            records = table.feed(items + _gather_until(table, child.pid, 1))
        finally:
            child.kill()
            child.wait()
    sh, env, second_sh, sleep = _exec_records_of(child.pid, records)[-4:]
    assert [p.argv for p in (sh, env, second_sh)] == [None, None, None]
    assert sleep.argv == ["/bin/sleep", "30"]


def _execd(pid: int, program: str) -> None:
    """Wait until process ``pid`` runs ``program`` (its exec is then queued to listeners)."""
    deadline = time.monotonic() + 15
    while procfs.link(f"/proc/{pid}/exe") != os.path.realpath(program):
        assert time.monotonic() < deadline, f"{pid} never exec'd {program}"
        time.sleep(0.01)


def test_an_exec_that_comes_while_a_batch_is_read_is_read_before_it_is_handed_on() -> None:
    # The second child execs while the table reads the first one's /proc (the capture is held
    # up until then), and is ended and reaped before the batch is fed: only a receive that
    # takes what came meanwhile, and reads it at once, has its command line.
    second = subprocess.Popen(
        ["/bin/sh", "-c", "read go; exec /bin/sleep 30"], stdin=subprocess.PIPE
    )
    first = None
    released: list[bool] = []
    try:
        with ProcessTable() as table:
            capture = table.capture_execs

            def held_up(batch: Iterable[pc.ProcEvent | pc.EventsLost]) -> None:
                items = list(batch)
                capture(items)
                if first is not None and _execs_of(first.pid, items) and not released:
                    released.append(True)
                    assert second.stdin is not None
                    second.stdin.write(b"go\n")
                    second.stdin.close()
                    _execd(second.pid, "/bin/sleep")

            table.capture_execs = held_up  # type: ignore[method-assign]
            first = subprocess.Popen(["/bin/sleep", "30"])
            items: Items = []
            deadline = time.monotonic() + 15
            while not _execs_of(first.pid, items):
                assert time.monotonic() < deadline, "the first exec never arrived"
                items = table.receive(0.5)
            assert _execs_of(second.pid, items), "what came during the read was not taken"
            second.kill()
            second.wait(timeout=10)  # ended and reaped: nothing left in /proc
            records = table.feed(items)
    finally:
        for child in (first, second):
            if child is not None:
                child.kill()
                child.wait()
    (exec_,) = _exec_records_of(second.pid, records)
    assert exec_.argv == ["/bin/sleep", "30"]


def _subscribed(pid: int) -> None:
    deadline = time.monotonic() + 15
    while not in_the_group(pid):
        assert time.monotonic() < deadline, f"process {pid} never subscribed"
        time.sleep(0.02)


def test_the_exec_reader_has_what_the_table_itself_came_too_late_for() -> None:
    # The table reads nothing until the child has exec'd, been read by the exec reader (a
    # second process, woken at the exec), ended and been reaped: its own read finds nothing.
    child = subprocess.Popen(
        ["/bin/sh", "-c", "read go; exec /bin/sleep 30"], stdin=subprocess.PIPE
    )
    try:
        with ProcessTable(exec_reader=True) as table:
            reader = table.reader
            assert reader is not None
            _subscribed(reader.pid)  # type: ignore[arg-type]
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            deadline = time.monotonic() + 15
            while not any(pid == child.pid for pid, _ in reader.take()):
                assert time.monotonic() < deadline, "the exec reader never read it"
                time.sleep(0.01)
            child.kill()
            child.wait(timeout=10)
            records = table.feed(_gather_until(table, child.pid, 1))
    finally:
        child.kill()
        child.wait()
    (exec_,) = _exec_records_of(child.pid, records)
    assert exec_.argv == ["/bin/sleep", "30"] and exec_.complete
    assert exec_.exe == os.path.realpath("/bin/sleep") and exec_.cwd == os.getcwd()


def _gone(pid: int, within: float) -> bool:
    """Whether process ``pid`` has ended (a zombie its new parent has not reaped counts) and
    left the process events group within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if not procfs.alive(pid) and not in_the_group(pid):  # a zombie is not alive
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_the_exec_reader_ends_with_its_table_and_with_its_process() -> None:
    with ProcessTable(exec_reader=True) as table:
        assert table.reader is not None and table.reader.pid is not None
        reader = table.reader.pid
        _subscribed(reader)
    assert _gone(reader, 0), "closing the table did not end its reader"
    table.close()  # twice: no signal for a pid that may be another process's by now
    # A table's process killed outright: its reader notices within a second and unsubscribes.
    code = (
        "import os, sys, time; from pyprocconn.processes import ProcessTable; "
        "t = ProcessTable(exec_reader=True); print(t.reader.pid, flush=True); time.sleep(30)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        reader = int(owner.stdout.readline())
        _subscribed(reader)
    finally:
        owner.kill()
        owner.wait()
    assert _gone(reader, 5), "the reader outlived its process"
