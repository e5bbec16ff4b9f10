"""What the library's records say, against what this test's own processes did: statuses, the
process table's ids, parents, names, lifetimes (a thread's own), its rescans and its cap, and
``wait_for_exits``. Real kernel; only our own pids are looked at, so other listeners and lost
events elsewhere change nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.processes import Exited, ProcessTable, Record, Resynced, Seen
from tests import triggers
from tests.test_processes_live import Running, _exec_seen

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")

# The workload: a Python process (the root) that, once told to on its stdin,
# - runs a thread that renames itself "worker" and lives 0.15 s;
# - from another thread, starts C1, ``sh -c 'read go; sleep 0.2; exit 200'`` (its parent_pid is
#   that thread's id, its parent_tgid the root);
# - starts C2 in the directory given, a Python that waits for its go, calls setsid, sets its
#   gids to 5/6 and its uids to 1/2 (real/effective), lives 0.05 s more and exits 0;
# - exits 3.
# It prints "thread TID", "c1 PID SPAWNER_TID", "c2 PID" as it goes. C1 and C2 each wait for a
# go line on the root's stdin, which they inherit, until the listener under test has their exec:
# it reads their command line, exe and cwd from /proc then, and a process that has ended (the
# listener late under load) has taken them with it. Each line is written once the one before
# was taken, so none reads another's (dash's read takes a byte at a time).
WORKLOAD = r"""
import ctypes, subprocess, sys, threading, time
libc = ctypes.CDLL(None)
sys.stdin.readline()


def worker():
    print("thread", threading.get_native_id(), flush=True)
    libc.prctl(15, b"worker", 0, 0, 0)
    time.sleep(0.15)


thread = threading.Thread(target=worker)
thread.start()
thread.join()


def spawn():
    child = subprocess.Popen(["/bin/sh", "-c", "read go; sleep 0.2; exit 200"])
    print("c1", child.pid, threading.get_native_id(), flush=True)
    child.wait()


spawner = threading.Thread(target=spawn)
spawner.start()
spawner.join()
child = subprocess.Popen([sys.executable, "-c", sys.argv[2]], cwd=sys.argv[1])
print("c2", child.pid, flush=True)
child.wait()
sys.exit(3)
"""
C2 = (
    "import os, sys, time; sys.stdin.readline(); "
    "os.setsid(); os.setresgid(5, 6, 6); os.setresuid(1, 2, 2); time.sleep(0.05)"
)
C1_ARGV = ["/bin/sh", "-c", "read go; sleep 0.2; exit 200"]
ATTEMPTS = 3  # runs of the workload, when events were lost


@dataclass
class Workload:
    """The workload's root, started and waiting for its go."""

    root: subprocess.Popen[str]
    where: str  # C2's working directory
    comm: str  # the root's name, before its thread renames itself
    thread: int = 0
    c1: int = 0
    spawner: int = 0
    c2: int = 0

    @classmethod
    def start(cls, where: Path) -> Workload:
        root = subprocess.Popen(
            [sys.executable, "-c", WORKLOAD, str(where), C2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        comm = (procfs.read(f"/proc/{root.pid}/comm") or b"").decode().strip()
        return cls(root, os.path.realpath(where), comm)

    def run(self, shown: Callable[[int], None]) -> None:
        """Let it go, and C1 and C2 each go on once ``shown(pid)`` has returned (once the
        listener under test has their exec); wait for it to end; then its own account of its
        pids."""
        assert self.root.stdout is not None
        watchdog = threading.Timer(60, self.stop)  # bounded: a hang ends the workload
        watchdog.start()
        said: dict[str, list[int]] = {}
        try:
            self._go()
            for line in self.root.stdout:
                name, *numbers = line.split()
                said[name] = [int(n) for n in numbers]
                if name in ("c1", "c2"):
                    shown(said[name][0])
                    self._go()  # C1's or C2's
        finally:
            watchdog.cancel()
        assert self.root.wait(timeout=10) == 3
        (self.thread,), (self.c1, self.spawner), (self.c2,) = said["thread"], said["c1"], said["c2"]

    def _go(self) -> None:
        assert self.root.stdin is not None
        self.root.stdin.write("go\n")
        self.root.stdin.flush()

    def stop(self) -> None:
        """Kill the root if it still runs, and end its stdin: a child still waiting there
        goes on, and ends."""
        if self.root.poll() is None:
            self.root.kill()
            self.root.wait(timeout=10)
        if self.root.stdin is not None:
            self.root.stdin.close()


def ancestors(pid: int) -> list[int]:
    """``pid``'s parent, its parent's parent, ... up to init, from /proc."""
    chain = []
    while pid > 1:
        found = procfs.stat(pid)
        assert found is not None, f"no process {pid}"
        pid = found.ppid
        chain.append(pid)
    return chain


def _lost(records: list[Record]) -> bool:
    return any(isinstance(r, pc.EventsLost) for r in records)


def _seen(records: list[Record], name: str) -> list[Any]:
    """The Seen records of one event type (Any: each test reads that type's fields)."""
    return [r for r in records if isinstance(r, Seen) and name == r.event.NAME]


@dataclass
class Told:
    """The table's records about the workload."""

    work: Workload
    records: list[Record]

    def seen(self, name: str, pid: int, key: str = "process_pid") -> Any:
        (found,) = [r for r in _seen(self.records, name) if getattr(r.event, key) == pid]
        return found

    def exited(self, pid: int) -> Exited:
        (found,) = [r for r in self.records if isinstance(r, Exited) and r.process.pid == pid]
        return found

    def lifetime(self, pid: int) -> int:
        """From the kernel's own timestamps: the fork of ``pid`` (a thread id too) to its exit."""
        born = self.seen("fork", pid, "child_pid").event.timestamp_ns
        return int(self.seen("exit", pid).event.timestamp_ns - born)


def _told_once(where: Path) -> Told:
    work = Workload.start(where)
    try:
        with ProcessTable() as table:
            feeder = Running(table)

            def exec_shown(pid: int) -> None:  # its exec recorded (or events lost: run again)
                feeder.wait_for(lambda records: _exec_seen(records, pid) or _lost(records))

            try:
                work.run(exec_shown)
                feeder.wait_for(
                    lambda records: (
                        any(
                            isinstance(r, Exited) and r.process.pid == work.root.pid
                            for r in records
                        )
                        or any(isinstance(r, pc.EventsLost) for r in records)
                    )
                )
            finally:
                feeder.stop()
    finally:
        work.stop()
    return Told(work, feeder.records)


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Told:
    """The workload under a table; run again when events were lost (other programs' storms
    may overrun the table's buffer, and a lost event of ours would fail the test for nothing)."""
    for _ in range(ATTEMPTS):
        found = _told_once(tmp_path_factory.mktemp("c2-cwd"))
        if not any(isinstance(r, pc.EventsLost) for r in found.records):
            return found
    pytest.fail(f"events were lost in each of {ATTEMPTS} runs of the workload")


def test_a_thread_exit_carries_the_threads_own_lifetime(told: Told) -> None:
    thread = told.work.thread
    exit_ = told.seen("exit", thread)
    assert exit_.event.process_tgid == told.work.root.pid  # the premise: a thread of the root
    assert exit_.lifetime_ns == told.lifetime(thread)
    assert 150_000_000 <= told.lifetime(thread) < 10_000_000_000  # it slept 0.15 s


def test_a_child_forked_by_a_thread_has_the_process_as_parent(told: Told) -> None:
    """Its fork reports the thread as parent_pid; the process is its parent (getppid)."""
    work = told.work
    fork = told.seen("fork", work.c1, "child_pid")
    assert (fork.event.parent_pid, fork.event.parent_tgid) == (work.spawner, work.root.pid)
    assert work.spawner != work.root.pid  # the premise: forked by a thread that is not the main
    assert fork.process is not None and fork.process.ppid == work.root.pid
    exited = told.exited(work.c1)
    assert exited.process.ppid == work.root.pid and exited.process.argv == C1_ARGV
    assert (exited.exit_status, exited.describe_status()) == (200, "exit 200")
    assert exited.lifetime_ns == told.lifetime(work.c1)


def test_an_exit_carries_the_whole_parent_chain(told: Told) -> None:
    work = told.work
    assert told.exited(work.c1).parents == (work.root.pid, os.getpid(), *ancestors(os.getpid()))
    assert told.exited(work.root.pid).parents == (os.getpid(), *ancestors(os.getpid()))


def test_each_id_change_is_on_its_own_record_and_kept_to_the_end(told: Told) -> None:
    c2 = told.work.c2
    sid, gid, uid = (told.seen(name, c2).process for name in ("sid", "gid", "uid"))
    assert sid is not None and gid is not None and uid is not None
    assert sid.sid == c2 and (gid.gid, gid.egid, gid.sid) == (5, 6, c2)
    assert (uid.uid, uid.euid, uid.gid, uid.egid) == (1, 2, 5, 6)
    end = told.exited(c2).process
    assert (end.uid, end.euid, end.gid, end.egid, end.sid) == (1, 2, 5, 6, c2)


def test_an_exec_records_where_it_runs(told: Told) -> None:
    exec_ = told.seen("exec", told.work.c2).process
    assert exec_ is not None and exec_.argv == [sys.executable, "-c", C2]
    assert exec_.cwd == told.work.where and exec_.exe == os.path.realpath(sys.executable)
    assert told.exited(told.work.c2).process.cwd == told.work.where


def test_a_thread_renaming_itself_leaves_the_process_name(told: Told) -> None:
    work = told.work
    comm = told.seen("comm", work.thread)
    assert comm.event.comm == "worker" and comm.process is not None
    assert comm.process.comm == work.comm != "worker"
    assert told.exited(work.root.pid).process.comm == work.comm
    assert told.exited(work.root.pid).exit_status == 3


# -- statuses ------------------------------------------------------------------------------------
def _exit_of(run: Callable[[], tuple[int, int]]) -> tuple[int, pc.ExitEvent]:
    """Run a trigger under a connector; its wait(2) status and its exit event."""
    with pc.ProcConnector(events=pc.EventType.EXIT) as conn:
        pid, status = run()
        events = triggers.collect(conn, lambda got: bool(triggers.of(got, pc.ExitEvent, pid)))
    (exit_,) = triggers.of(events, pc.ExitEvent, pid)
    assert exit_.exit_code == status  # the premise: the kernel sends the wait(2) status
    return status, exit_


@pytest.mark.parametrize("status", [0, 1, 127, 128, 200, 255])
def test_an_exit_status_is_what_the_process_gave(status: int) -> None:
    _, exit_ = _exit_of(lambda: triggers.exit_with_reaped(status))
    assert (exit_.exit_status, exit_.term_signal, exit_.core_dumped) == (status, None, False)
    assert exit_.describe_status() == f"exit {status}"


@pytest.mark.parametrize(
    ("sig", "run"),
    [
        (signal.SIGKILL, triggers.killed_by_sigkill_reaped),
        (signal.SIGABRT, triggers.abort_without_core_reaped),  # no core: RLIMIT_CORE is 0
    ],
)
def test_a_signal_without_a_core_is_no_core_dump(
    sig: int, run: Callable[[], tuple[int, int]]
) -> None:
    _, exit_ = _exit_of(run)
    assert (exit_.exit_status, exit_.term_signal, exit_.core_dumped) == (None, sig, False)
    assert exit_.describe_status() == f"killed by {signal.Signals(sig).name}"


# -- rescans and the cap ---------------------------------------------------------------------
def test_a_pid_reused_during_a_loss_is_told_apart() -> None:
    """After a loss the rescan compares start times: a pid held for a process that started
    elsewhen is another process now (the old one ended unseen); one that started when the
    table says is the same."""
    same, reused = subprocess.Popen(["sleep", "30"]), subprocess.Popen(["sleep", "30"])
    try:
        with ProcessTable() as table:
            now = table.processes[reused.pid]
            assert now.start_ns is not None
            before = dataclasses.replace(now, start_ns=now.start_ns - 10_000_000_000)
            table.processes[reused.pid] = before  # held from before the loss
            kept = table.processes[same.pid]
            records = table.update(pc.EventsLost(1, 0))
    finally:
        for process in (same, reused):
            process.kill()
            process.wait()
    (resync,) = [r for r in records if isinstance(r, Resynced)]
    assert [e.process for e in resync.vanished if e.process.pid == reused.pid] == [before]
    assert all(e.unknown for e in resync.vanished)
    (again,) = [p for p in resync.appeared if p.pid == reused.pid]
    assert again.start_ns is not None and abs(again.start_ns - now.start_ns) <= 20_000_000
    assert same.pid not in {p.pid for p in resync.appeared}
    assert same.pid not in {e.process.pid for e in resync.vanished}
    assert table.processes[reused.pid] is again and table.processes[same.pid] is kept


def test_the_table_holds_no_more_processes_than_its_cap() -> None:
    with ProcessTable(max_processes=8) as table:
        assert len(table.processes) == 8 and table.untracked >= 1  # this machine runs more
        untracked = table.untracked
        feeder = Running(table)
        try:
            pid = triggers.exit_with(0)
            feeder.wait_for(
                lambda records: any(r.event.process_pid == pid for r in _seen(records, "exit"))
            )
        finally:
            feeder.stop()
        assert len(table.processes) <= 8 and table.untracked > untracked
        assert pid not in table.processes


# -- wait_for_exits --------------------------------------------------------------------------
def test_wait_for_exits_gives_a_zombies_status_from_proc() -> None:
    """A process that ended before the wait began (not reaped: a zombie) has its status."""
    child = subprocess.Popen(["/bin/sh", "-c", "exit 5"])
    try:
        deadline = time.monotonic() + 10
        while getattr(procfs.stat(child.pid), "state", None) != b"Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        ended = pc.wait_for_exits([child.pid], timeout=5)[child.pid]
    finally:
        child.wait(timeout=10)
    assert ended is not None and ended.timestamp_ns is None  # not seen: read from /proc
    assert (ended.exit_status, ended.exit_code, ended.describe_status()) == (5, 0x500, "exit 5")


# A process whose main thread ends first (pthread_exit) while another thread runs on: its leader
# is a zombie in /proc meanwhile, yet the process lives until the other thread calls exit(5).
LEADER_FIRST = (
    "import ctypes, os, sys, threading, time; sys.stdin.readline(); "
    "threading.Thread(target=lambda: (time.sleep(0.3), os._exit(5))).start(); "
    "ctypes.CDLL(None).pthread_exit(None)"
)


def _gated_python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)


def _go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def _waited(code: str) -> tuple[int, int, str]:
    """``pyprocconn wait`` on a gated Python running ``code``: (its pid, wait's exit status,
    what wait printed)."""
    from tests.test_cli import _subscribed

    target = _gated_python(code)
    waiter = subprocess.Popen(
        [sys.executable, "-m", "pyprocconn", "wait", str(target.pid)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _subscribed(waiter.pid)
        _go(target)
        out, _ = waiter.communicate(timeout=30)
    finally:
        target.kill()
        target.wait(timeout=10)
        waiter.kill()
        waiter.wait(timeout=10)
    return target.pid, waiter.returncode, out


def test_wait_for_exits_waits_for_the_last_thread() -> None:
    """A process whose thread exits first (status 0) ends later with its own status."""
    code = (
        "import os, sys, threading, time; sys.stdin.readline(); "
        "t = threading.Thread(target=time.sleep, args=(0.1,)); t.start(); t.join(); "
        "time.sleep(0.2); os._exit(9)"
    )
    pid, status, out = _waited(code)
    assert (status, out) == (9, f"{pid} exit 9\n")


def test_wait_for_exits_waits_for_a_process_whose_main_thread_ended_first() -> None:
    pid, status, out = _waited(LEADER_FIRST)
    assert (status, out) == (5, f"{pid} exit 5\n")


def test_the_table_ends_a_process_whose_main_thread_ended_first_with_its_last_thread() -> None:
    target = _gated_python(LEADER_FIRST)
    try:
        with ProcessTable() as table:
            feeder = Running(table)
            try:
                _go(target)
                feeder.wait_for(
                    lambda records: any(
                        isinstance(r, Exited) and r.process.pid == target.pid for r in records
                    )
                )
            finally:
                feeder.stop()
    finally:
        target.kill()
        target.wait(timeout=10)
    assert target.returncode == 5  # the premise: the process's status
    leader = [r for r in _seen(feeder.records, "exit") if r.event.process_pid == target.pid]
    (last,) = [r for r in _seen(feeder.records, "exit") if r.event.process_tgid == target.pid
               and r.event.process_pid != target.pid]  # fmt: skip
    assert [r.event.exit_code for r in leader] == [0]  # its leader's own exit, before
    (exited,) = [r for r in feeder.records if isinstance(r, Exited) and r.process.pid == target.pid]
    assert (exited.exit_status, exited.timestamp_ns) == (5, last.event.timestamp_ns)
    assert feeder.records.index(exited) > feeder.records.index(last)
