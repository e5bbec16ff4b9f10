"""The process table against the real kernel (and, for pid reuse, fed events by hand)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.processes import Exited, Process, ProcessTable, Record, Resynced, Seen
from tests import triggers
from tests.paths import ticking

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")


class Running:
    """A table fed from its connector by a thread, collecting its records, until stopped (before
    the table closes: a connector must not be closed under a thread still receiving)."""

    def __init__(self, table: ProcessTable) -> None:
        self.table = table
        self.records: list[Record] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch: list[pc.ProcEvent | pc.EventsLost] = list(self.table.conn.recv_batch(0.1))
            except pc.OverrunError as error:
                batch = [error.loss]
            self.records += self.table.feed(batch)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_for(self, found: Callable[[list[Record]], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not found(list(self.records)):
            assert time.monotonic() < deadline, f"not seen within {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def table() -> Iterator[ProcessTable]:
    with ProcessTable() as process_table:
        yield process_table


@pytest.fixture
def running(table: ProcessTable) -> Iterator[Running]:
    """The table fed by a thread; stopped before the table closes."""
    feeder = Running(table)
    yield feeder
    feeder.stop()


def _exited(records: list[Record], pid: int) -> list[Exited]:
    return [r for r in records if isinstance(r, Exited) and r.process.pid == pid]


def _exec_seen(records: list[Record], pid: int) -> bool:
    return any(isinstance(r, Seen) and isinstance(r.event, pc.ExecEvent)
               and r.event.process_pid == pid for r in records)  # fmt: skip


def test_the_snapshot_sees_a_process_started_before() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    time.sleep(0.1)  # exec'd by now
    try:
        with ProcessTable() as table:
            process = table.processes[sleeper.pid]
            assert process.origin == "snapshot" and process.argv == ["sleep", "30"]
            assert process.ppid == os.getpid() and process.uid == os.getuid()
            assert process.start_ns is not None and process.start_ns <= time.monotonic_ns()
            assert table.processes[2].kernel_thread  # kthreadd
    finally:
        sleeper.kill()
        sleeper.wait()


# Real and effective ids told apart, then a program that keeps them (not set-user-ID).
_SPLIT_IDS = (
    "import os; os.setresgid(1000, 1001, 1001); os.setresuid(2000, 2001, 2001); "
    "os.execv('/bin/sleep', ['sleep', '30'])"
)


def _until(child: subprocess.Popen[bytes], what: str, holds: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15
    while not holds():
        assert child.poll() is None, f"the process ended ({child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"not {what} within 15 s"
        time.sleep(0.01)


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_the_snapshot_reads_each_id_in_its_place() -> None:
    """uid, euid, gid and egid of a process the snapshot finds, as /proc/PID/status has them."""
    child = subprocess.Popen([sys.executable, "-c", _SPLIT_IDS])
    try:
        _until(child, "exec'd sleep", lambda: _cmdline(child.pid).startswith(b"sleep\0"))
        with ProcessTable() as table:
            found = table.processes[child.pid]
        assert (found.uid, found.euid, found.gid, found.egid) == (2000, 2001, 1000, 1001)
    finally:
        child.kill()
        child.wait()


def test_a_set_user_id_program_shows_its_new_ids_at_its_exec() -> None:
    """A set-user-ID and set-group-ID program's exec shows its effective ids, the real ones
    kept (the kernel sends uid and gid events for the change, just before the exec's)."""
    place = Path(tempfile.mkdtemp(prefix="pyprocconn-suid-"))
    program = place / "suid-sleep"
    try:
        place.chmod(0o755)
        shutil.copy("/bin/sleep", program)
        os.chown(program, 2001, 1001)
        program.chmod(0o6755)
        code = (
            "import os, sys; os.setresgid(1000, 1000, 1000); os.setresuid(2000, 2000, 2000); "
            "os.execv(sys.argv[1], ['suid-sleep', '30'])"
        )
        with ProcessTable() as table:
            feeder = Running(table)
            child = subprocess.Popen([sys.executable, "-c", code, str(program)])
            try:

                def exec_d(records: list[Record]) -> list[Process]:
                    return [r.process for r in records if isinstance(r, Seen)
                            and r.event.NAME == "exec" and r.process is not None
                            and r.process.pid == child.pid
                            and r.process.argv == ["suid-sleep", "30"]]  # fmt: skip

                feeder.wait_for(lambda records: bool(exec_d(records)))
            finally:
                feeder.stop()
                child.kill()
                child.wait()
        # The last: Python's own exec may show the same /proc when it is handled late.
        exec_ = exec_d(feeder.records)[-1]
        assert (exec_.uid, exec_.euid, exec_.gid, exec_.egid) == (2000, 2001, 1000, 1001)
        assert exec_.exe == str(program)
    finally:
        shutil.rmtree(place)


def test_a_name_cannot_forge_or_break_a_status_line() -> None:
    """/proc/PID/status escapes only a newline in the name, its first line: a name holding
    "\\r", a forged Tgid line and a line with no colon reads as a name, nothing more."""
    name = "\rTgid:\t1\rno"
    code = (
        f"import ctypes, os, time; ctypes.CDLL(None).prctl({triggers.PR_SET_NAME}, "
        f"ctypes.c_char_p({name.encode()!r}), 0, 0, 0); "
        "os.setresgid(1000, 1001, 1001); os.setresuid(2000, 2001, 2001); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        status = Path(f"/proc/{child.pid}/status")
        _until(child, "named", lambda: b"\nUid:\t2000" in status.read_bytes())
        assert procfs.tgid(child.pid) == child.pid
        with ProcessTable() as table:
            found = table.processes[child.pid]
        assert found.comm == name
        assert (found.uid, found.euid, found.gid, found.egid) == (2000, 2001, 1000, 1001)
    finally:
        child.kill()
        child.wait()


def test_a_short_lived_childs_exit_carries_its_argv_lifetime_and_status(running: Running) -> None:
    # The child waits, alive, until the table has its exec: its command line is read from /proc
    # then, and one that has already ended (the table late under load) has taken it with it.
    argv = ["/bin/sh", "-c", "read go; sleep 0.05; exit 3"]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE)
    try:
        running.wait_for(lambda records: _exec_seen(records, child.pid))
    finally:
        child.communicate(b"go\n", timeout=10)  # then it lives 0.05 s more and exits 3
    running.wait_for(lambda records: bool(_exited(records, child.pid)))
    (exited,) = _exited(running.records, child.pid)
    assert exited.process.argv == argv
    assert exited.process.origin == "fork" and exited.process.complete
    assert exited.exit_status == 3 and exited.describe_status() == "exit 3"
    assert exited.lifetime_ns is not None and 50_000_000 <= exited.lifetime_ns < 10_000_000_000
    assert exited.parents[0] == os.getpid()
    seen = [r.event.NAME for r in running.records if isinstance(r, Seen)
            and r.process is not None and r.process.pid == child.pid]  # fmt: skip
    assert seen[0] == "fork" and "exec" in seen and seen[-1] == "exit"


def test_a_long_overrun_costs_one_rescan_per_interval() -> None:
    """Two overruns within the interval: every loss is an EventsLost where it happened, and the
    rescans, never closer than the interval, answer each loss once, in order."""
    interval = 3.0
    timed: list[tuple[float, Record]] = []
    with ProcessTable(pc.ProcConnector(rcvbuf=4096), resync_interval=interval) as table:

        def feed(until: Callable[[], bool], seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while not until() and time.monotonic() < deadline:
                try:
                    batch: list[pc.ProcEvent | pc.EventsLost] = list(table.conn.recv_batch(0.1))
                except pc.OverrunError as error:
                    batch = [error.loss]
                timed.extend((time.monotonic(), record) for record in table.feed(batch))

        def seen_exits() -> set[int]:
            return {r.event.process_pid for _, r in timed
                    if isinstance(r, Seen) and isinstance(r.event, pc.ExitEvent)}  # fmt: skip

        def overrun() -> None:
            overruns = table.conn.stats.overruns
            table.conn.rcvbuf = 4096
            for burst in [subprocess.Popen(["/bin/true"]) for _ in range(150)]:
                burst.wait(timeout=30)  # the small buffer overflows
            # Room again: other programs' events cannot overrun it in between (it still drops
            # everything until drained, by the receive that reads the overrun).
            table.conn.rcvbuf = pc.DEFAULT_RCVBUF
            feed(lambda: table.conn.stats.overruns > overruns, 10)
            # Each CPU's loss shows at its next event: at the latest, one of ours.
            revealers = {triggers.true_on(cpu) for cpu in os.sched_getaffinity(0)}
            feed(lambda: revealers <= seen_exits(), 10)
            assert revealers <= seen_exits()

        with ticking():
            overrun()
            overrun()
            feed(lambda: table.resync_in() is None, 2 * interval)
        table.conn.close()
    losses = [r for _, r in timed if isinstance(r, pc.EventsLost)]
    rescans = [(when, r) for when, r in timed if isinstance(r, Resynced)]
    assert len(losses) >= 2 and table.resync_in() is None, timed
    assert [loss for _, r in rescans for loss in r.losses] == losses
    assert all(b - a >= interval - 0.1 for (a, _), (b, _) in itertools.pairwise(rescans)), rescans
    assert len(rescans) < len(losses), (rescans, losses)


def test_a_loss_is_followed_by_a_resync_that_finds_what_happened_meanwhile() -> None:
    doomed = subprocess.Popen(["sleep", "30"])
    time.sleep(0.1)
    with ProcessTable(pc.ProcConnector(rcvbuf=4096)) as table:
        assert doomed.pid in table.processes
        for burst in [subprocess.Popen(["/bin/true"]) for _ in range(200)]:
            burst.wait(timeout=30)  # the small buffer is full: the kernel now drops everything
        newcomer = subprocess.Popen(["sleep", "30"])  # starts unseen
        doomed.send_signal(signal.SIGKILL)  # ends unseen
        doomed.wait(timeout=10)
        time.sleep(0.1)
        try:
            feeder = Running(table)
            feeder.wait_for(lambda records: any(isinstance(r, Resynced) for r in records))
            feeder.stop()
            resync = next(r for r in feeder.records if isinstance(r, Resynced))
            assert doomed.pid in [e.process.pid for e in resync.vanished]
            assert all(e.unknown for e in resync.vanished)
            assert newcomer.pid in [p.pid for p in resync.appeared]
            assert table.processes[newcomer.pid].origin == "late"
        finally:
            newcomer.kill()
            newcomer.wait()
        table.conn.close()


def test_a_connector_without_the_events_the_table_follows_is_refused() -> None:
    with pc.ProcConnector("exec") as conn, pytest.raises(ValueError, match="does not receive"):
        ProcessTable(conn)


def test_an_exit_still_queued_at_a_rescan_carries_its_process() -> None:
    """A rescan after a loss finds a process gone whose exit is still queued behind the loss:
    when that exit is read it is shown with the process (not ``None``), and it does not end
    the process a second time."""
    doomed = subprocess.Popen(["sleep", "30"])
    time.sleep(0.1)
    with ProcessTable(pc.ProcConnector(rcvbuf=4096), resync_interval=0.0) as table:
        assert doomed.pid in table.processes
        for burst in [subprocess.Popen(["/bin/true"]) for _ in range(200)]:
            burst.wait(timeout=30)  # the small buffer is full: the kernel drops the rest
        items = _gather(table, lambda got: any(isinstance(i, pc.EventsLost) for i in got))
        doomed.kill()  # its exit is queued now (the buffer has room), behind the loss
        doomed.wait(timeout=10)
        time.sleep(0.1)
        records = table.feed(items)  # the loss: a rescan at once, the process gone from /proc
        vanished = [e.process.pid for r in records if isinstance(r, Resynced) for e in r.vanished]
        assert doomed.pid in vanished
        exits = [
            r
            for r in table.feed(_gather(table, lambda got: _exit_of(got, doomed.pid)))
            if isinstance(r, Seen) and isinstance(r.event, pc.ExitEvent)
        ]
        ours = [r for r in exits if getattr(r.event, "process_pid", None) == doomed.pid]
        assert ours and ours[0].process is not None and ours[0].process.pid == doomed.pid
        assert ours[0].lifetime_ns is not None and ours[0].lifetime_ns > 0


def _exit_of(items: list[pc.ProcEvent | pc.EventsLost], pid: int) -> bool:
    return any(getattr(i, "NAME", "") == "exit" and i.process_pid == pid for i in items)  # type: ignore[union-attr]


def _fork(pid: int, parent: int, when: int) -> pc.ProcEvent:
    cls = pc.ForkEvent
    return cls(pc.PROC_EVENT_FORK, 0, when, parent, parent, pid, pid)


def _exit(pid: int, parent: int, when: int, code: int = 0) -> pc.ProcEvent:
    cls = pc.ExitEvent
    return cls(pc.PROC_EVENT_EXIT, 0, when, pid, pid, code, 17, parent, parent)


def test_pid_reuse_does_not_merge_two_processes() -> None:
    """Fed by hand (pid reuse cannot be forced quickly): the same pid twice is two processes,
    and a fork of a pid the table still holds ends the old one as unseen."""
    with ProcessTable(snapshot=False) as table:
        pid, parent = 4_000_001, 4_000_000
        table.update(_fork(pid, parent, 1_000))
        first = table.processes[pid]
        (_, exited) = table.update(_exit(pid, parent, 2_000, 0x300))
        assert isinstance(exited, Exited) and exited.process is first
        assert exited.lifetime_ns == 1_000 and exited.exit_status == 3
        table.update(_fork(pid, parent, 5_000))
        second = table.processes[pid]
        assert second is not first and second.key == (pid, 5_000)
        records = table.update(_fork(pid, parent, 9_000))  # its exit was never seen
        ended = [r for r in records if isinstance(r, Exited)]
        assert [e.process.key for e in ended] == [(pid, 5_000)] and ended[0].unknown
        assert table.processes[pid].key == (pid, 9_000)


def test_memory_stays_bounded_under_churn(table: ProcessTable, running: Running) -> None:
    """Our 1500 children are gone from the table once they have ended (how many other
    processes come and go meanwhile is the machine's business, not the table's)."""
    children = [subprocess.Popen(["/bin/true"]) for _ in range(1500)]
    for child in children:
        child.wait(timeout=30)
    pids = {child.pid for child in children}

    def ours(processes: list[Process]) -> list[Process]:
        return [p for p in processes if p.pid in pids and p.ppid == os.getpid()]

    def all_ended(records: list[Record]) -> bool:
        ended = {r.process.pid for r in records if isinstance(r, Exited)}
        ended |= {e.process.pid for r in records if isinstance(r, Resynced) for e in r.vanished}
        return pids <= ended

    running.wait_for(all_ended, timeout=30)
    assert not ours(list(table.processes.values()))
    assert len(table._captured) <= 4096


def test_an_exec_read_too_late_is_incomplete_not_the_parents_command() -> None:
    """The child was reaped before the table looked: no command line, and never the parent's
    (which the child had until its exec)."""
    with ProcessTable() as table:
        child = subprocess.Popen(["/bin/true", "CHILD-ARG"])
        child.wait(timeout=10)  # reaped: nothing left in /proc
        time.sleep(0.1)
        records: list[Record] = []

        def execs() -> list[Seen]:
            return [r for r in records if isinstance(r, Seen) and isinstance(r.event, pc.ExecEvent)
                    and r.event.process_pid == child.pid]  # fmt: skip

        deadline = time.monotonic() + 10
        while not execs() and time.monotonic() < deadline:
            try:
                batch: list[pc.ProcEvent | pc.EventsLost] = list(table.conn.recv_batch(0.5))
            except pc.OverrunError as error:  # another listener's churn: not the question here
                batch = [error.loss]
            for item in batch:  # no capture_execs: the table looks only now, too late
                records += table.update(item)
        (exec_,) = execs()
        assert exec_.process is not None and exec_.process.argv is None
        assert not exec_.process.complete and table.incomplete >= 1


_CHANGES = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.stdin.readline()
child = os.fork()
if child == 0:
    os.setresgid(1234, 1234, 1234)
    os.setresuid(4321, 4321, 4321)
    for name in (b"first", b"second", b"third"):
        libc.prctl(15, name, 0, 0, 0)  # PR_SET_NAME: a comm event each
    # The shell lives, reading our stdin, until it ends: alive while /proc is read for its exec
    # (one that has ended has taken its command line and exe with it).
    os.execv("/bin/sh", ["/bin/sh", "-c", "read done; :", "", ""])
print(child, flush=True)
os.waitpid(child, 0)
"""


def _gather(table: ProcessTable, until: Callable[[list[pc.ProcEvent | pc.EventsLost]], bool]
            ) -> list[pc.ProcEvent | pc.EventsLost]:  # fmt: skip
    """Everything received until ``until`` holds (bounded), without feeding the table."""
    items: list[pc.ProcEvent | pc.EventsLost] = []
    deadline = time.monotonic() + 15
    while not until(items):
        assert time.monotonic() < deadline, "the workload's events did not all arrive"
        try:
            items += table.conn.recv_batch(0.2)
        except pc.OverrunError as error:  # others' churn: not the question here
            items.append(error.loss)
    return items


def test_an_id_change_after_an_exec_in_its_batch_is_not_the_execs() -> None:
    """/proc is read once the batch is in hand, after the uid change that follows the exec in
    it: the exec's record keeps the ids the exec left, the uid event's has the new ones."""
    code = "import os, time; os.setresuid(4321, 4321, 4321); time.sleep(30)"
    with ProcessTable() as table:
        child = subprocess.Popen([sys.executable, "-c", code])
        try:

            def uid_arrived(items: list[pc.ProcEvent | pc.EventsLost]) -> bool:
                return any(getattr(i, "NAME", "") == "uid"
                           and i.process_tgid == child.pid for i in items)  # type: ignore[union-attr]  # fmt: skip

            records = table.feed(_gather(table, uid_arrived))
        finally:
            child.kill()
            child.wait()
    mine = [r for r in records if isinstance(r, Seen) and r.process is not None
            and r.process.pid == child.pid and r.event.NAME in ("exec", "uid")]  # fmt: skip
    assert [r.event.NAME for r in mine][-2:] == ["exec", "uid"]
    exec_, uid = (r.process for r in mine[-2:])
    assert exec_ is not None and uid is not None
    assert exec_.argv == [sys.executable, "-c", code]
    assert (exec_.uid, exec_.euid) == (os.getuid(), os.geteuid())
    assert (uid.uid, uid.euid) == (4321, 4321)


def test_each_record_carries_the_process_as_it_was_at_that_event() -> None:
    """A fork, a gid change, a uid change, three names and an exec, all fed in one batch: each
    record shows the process at its own event, not as the batch left it."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHANGES], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdin is not None and parent.stdout is not None
    try:
        with ProcessTable() as table:
            parent.stdin.write("go\n")
            parent.stdin.flush()
            child = int(parent.stdout.readline())

            def exec_arrived(items: list[pc.ProcEvent | pc.EventsLost]) -> bool:
                return any(getattr(i, "NAME", "") == "exec"
                           and i.process_tgid == child for i in items)  # type: ignore[union-attr]  # fmt: skip

            records = table.feed(_gather(table, exec_arrived))
    finally:
        parent.stdin.close()  # the shell's read ends: it exits, and then its parent
        parent.wait(timeout=10)
    ours = [r for r in records if isinstance(r, Seen) and r.process is not None
            and r.process.pid == child]  # fmt: skip
    # From our fork on: under other programs' fork storms the pid may have been another's.
    ours_from = next(i for i, r in enumerate(ours) if isinstance(r.event, pc.ForkEvent)
                     and r.event.parent_tgid == parent.pid)  # fmt: skip
    mine = ours[ours_from:]
    by_kind = [(r.event.NAME, r.process) for r in mine]
    assert [kind for kind, _ in by_kind] == ["fork", "gid", "uid", "comm", "comm", "comm", "exec"]
    fork, gid, uid, first, second, third, exec_ = (p for _, p in by_kind)
    assert all(p is not None for p in (fork, gid, uid, first, second, third, exec_))
    assert fork.gid == os.getgid() and fork.uid == os.getuid() and fork.ppid == parent.pid  # type: ignore[union-attr]
    assert fork.argv == [sys.executable, "-c", _CHANGES]  # type: ignore[union-attr]
    assert fork.comm == os.path.basename(sys.executable)[:15]  # type: ignore[union-attr]
    assert (gid.gid, gid.egid, gid.uid) == (1234, 1234, os.getuid())  # type: ignore[union-attr]
    assert (uid.uid, uid.euid, uid.gid) == (4321, 4321, 1234)  # type: ignore[union-attr]
    assert [p.comm for p in (first, second, third)] == ["first", "second", "third"]  # type: ignore[union-attr]
    assert first.argv == fork.argv and third.uid == 4321  # type: ignore[union-attr]
    assert exec_.argv == ["/bin/sh", "-c", "read done; :", "", ""] and exec_.comm == "sh"  # type: ignore[union-attr]
    assert (exec_.uid, exec_.gid) == (4321, 1234)  # type: ignore[union-attr]
    assert exec_.exe == os.path.realpath("/bin/sh")  # type: ignore[union-attr]
    assert exec_.start_ns == fork.start_ns == mine[0].event.timestamp_ns  # type: ignore[union-attr]


def test_a_command_line_is_kept_exactly_and_cut_at_the_bound() -> None:
    """Empty arguments (trailing ones too) are kept; a huge command line is cut at max_argv
    bytes and said to be."""
    huge = ["x" * 1000] * 20
    with ProcessTable(max_argv=4096) as table:
        # Each lives, reading its stdin, until /proc has been read for its exec (a process that
        # has ended takes its command line with it).
        empty = subprocess.Popen(["/bin/sh", "-c", "read done; :", "", ""], stdin=subprocess.PIPE)
        big = subprocess.Popen(["/bin/sh", "-c", "read done; :", *huge], stdin=subprocess.PIPE)
        try:

            def both(items: list[pc.ProcEvent | pc.EventsLost]) -> bool:
                execs = {i.process_tgid for i in items if getattr(i, "NAME", "") == "exec"}  # type: ignore[union-attr]
                return {empty.pid, big.pid} <= execs

            table.feed(_gather(table, both))
            assert table.processes[empty.pid].argv == ["/bin/sh", "-c", "read done; :", "", ""]
            assert not table.processes[empty.pid].argv_truncated
            cut = table.processes[big.pid]
            assert cut.argv_truncated and cut.argv is not None
            assert len(b"\0".join(os.fsencode(a) for a in cut.argv)) <= 4096
            assert cut.argv[:4] == ["/bin/sh", "-c", "read done; :", huge[0]]
        finally:
            for process in (empty, big):
                process.communicate(timeout=10)  # its stdin closed: its read ends, it exits


def test_no_vanishing_without_a_loss_when_the_table_starts_under_a_fork_loop() -> None:
    """A fork queued between subscribing and the /proc scan is the scanned process's own fork,
    not a reused pid: 30 starts, and a process said to have vanished only after a loss. (Each
    start has forks of short sleeps in flight, which the scan finds alive.)"""
    loop = subprocess.Popen(["/bin/sh", "-c", "while :; do sleep 0.05 & sleep 0.005; done"])
    try:
        for _ in range(30):
            with ProcessTable() as table:
                records = table.feed(_gather(table, lambda items: len(items) > 50))
            for index, record in enumerate(records):
                if isinstance(record, Exited) and record.unknown:
                    assert any(isinstance(r, pc.EventsLost) for r in records[:index]), record
    finally:
        loop.kill()
        loop.wait()
