"""Who ran what, as whom, for how long, and how it ended: a process table kept from the events.

Opt-in, on top of :class:`ProcConnector` (which itself never reads ``/proc``). It starts from a
snapshot of ``/proc``, follows forks, execs, id changes, setsid, comm changes and exits, reads what
``/proc`` still has the moment an exec arrives (a process that lives half a millisecond is gone a
moment later: a zombie has no ``cmdline``, ``exe`` or ``cwd``), and after a loss rescans ``/proc``
to reconcile (at most once per ``resync_interval``: the losses of a long overrun are merged into
one rescan rather than costing one each). Iterate it like a connector, or hand it events from
your own loop::

    with ProcessTable() as table:
        for record in table:            # Seen, Exited, EventsLost or Resynced
            if isinstance(record, Exited):
                print(record.process.argv, record.lifetime_ns, record.describe_status())

Over the project's ~400 lines on purpose: the per-event handlers are a measured path
(``benchmarks.capture``: the table's CPU per event under a fork storm, 0.35x forkstat's).

Each record is true at its moment: a :class:`Process` is a snapshot that the table never changes
once handed out (a change makes a new one), so the process a record carries is the process as it
was at that event, even when later events of the same batch changed it.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from pyprocconn import containers, procfs
from pyprocconn.connector import DEFAULT_RCVBUF, ProcConnector
from pyprocconn.containers import Container
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventsLost, EventType, ProcEvent
from pyprocconn.exec_reader import ExecReader
from pyprocconn.priority import raise_priority, shorten_slice
from pyprocconn.records import Exited, Origin, Process, Record, Resynced, Seen

if TYPE_CHECKING:
    from pyprocconn.events import (
        CommEvent,
        ExecEvent,
        ExitEvent,
        ForkEvent,
        GidEvent,
        SidEvent,
        UidEvent,
    )

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")  # /proc's start times count in these
_SAME_START_NS = 2 * _TICK_NS  # a fork this close to a snapshot's start time is its own fork
DEFAULT_MAX_ARGV = 4096  # bytes of a command line kept per process
_GONE_KEPT = 4096  # processes a rescan found gone, kept for an exit still queued
GATHER = 0.01  # seconds forks and exits may gather after a wake-up (see ProcessTable.linger)
# When the table lingers decides when its listener wakes, and so the paced capture: see
# ProcessTable.linger and the README's capture section for the measurements.
EXECS_CLOSE = 0.001  # execs closer than this (seconds): a storm, take events as they come
EXECS_COUNTED = 8  # ... looking at the gaps between this many recent execs
EXECS_RECENT = 0.1  # ... that came within this many seconds
_EXECS_CLOSE_NS = int(EXECS_CLOSE * 1e9)
_EXECS_RECENT_NS = int(EXECS_RECENT * 1e9)
_MAX_PENDING_CAPTURES = 4096  # captures whose exec never came are forgotten past this
_RECEIVED_MAX = 4096  # events one receive() takes before handing them on


class _Capture(NamedTuple):
    """What /proc had for an exec'd process the moment its batch was in hand."""

    cmdline: bytes | None
    comm: str | None = None
    exe: str | None = None
    cwd: str | None = None
    cgroup: str | None = None
    container: Container | None = None
    ids: tuple[int, int, int, int] | None = None  # uid, euid, gid, egid
    ns_pid: int | None = None
    pid_ns: int | str | None = None  # procfs.REFUSED: may not look


# An exec another exec of the process followed before /proc was read: what /proc had was the
# later program's, so this one's command line, name, exe and cwd are unknown.
_SUPERSEDED = _Capture(None)
_ExecKey = tuple[int, int]  # an exec: the process's tgid, the event's timestamp_ns


class _Threads:
    """A process's threads other than its leader (tid -> start_ns), and whether the leader has
    exited (``pthread_exit`` while others run: the process lives on)."""

    __slots__ = ("leader_gone", "others")

    def __init__(self) -> None:
        self.others: dict[int, int | None] = {}
        self.leader_gone = False


def _derived(process: Process, changes: dict[str, Any]) -> Process:
    """A copy of ``process`` with ``changes`` (``dataclasses.replace`` without its checks: a
    fork makes one, and forks come by the ten thousand a second)."""
    new = object.__new__(Process)
    new.__dict__ = {**process.__dict__, **changes}
    return new


def _boot_offset_ns() -> int:
    """CLOCK_BOOTTIME minus CLOCK_MONOTONIC: /proc's start times count suspended time too."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) - time.monotonic_ns()


# /proc/PID/cgroup as read -> what it names: most processes share a few cgroups, and parsing
# one (its container's name too) costs 3x reading it. Cleared past _CGROUPS_KEPT.
_cgroups: dict[bytes, tuple[str | None, Container | None]] = {}
_CGROUPS_KEPT = 1024


def _cgroup(pid: int) -> tuple[str | None, Container | None]:
    """The cgroup path shown and the container it (or another hierarchy's path) names."""
    raw = procfs.read(f"/proc/{pid}/cgroup") or b""
    known = _cgroups.get(raw)
    if known is None:
        paths = containers.cgroup_paths(raw)
        known = (paths[0], containers.container_of(paths)) if paths else (None, None)
        if len(_cgroups) >= _CGROUPS_KEPT:
            _cgroups.clear()
        _cgroups[raw] = known
    return known


def _status(pid: int) -> tuple[tuple[int, int, int, int] | None, int | None]:
    """From one read of ``/proc/PID/status``: (uid, euid, gid, egid), and the pid as its own
    pid namespace numbers it (``NSpid``'s last); None where gone."""
    raw = procfs.read(f"/proc/{pid}/status")
    uids, gids = procfs.status_line(raw, b"Uid:"), procfs.status_line(raw, b"Gid:")
    if uids is None or gids is None:
        return None, None
    try:
        uid, euid = (int(v) for v in uids.split()[:2])
        gid, egid = (int(v) for v in gids.split()[:2])
    except ValueError:
        return None, None
    ns_pid = procfs.status_line(raw, b"NSpid:")
    return (uid, euid, gid, egid), int(ns_pid.split()[-1]) if ns_pid else None


def _pid_namespace(pid: int) -> int | str | None:
    """The inode of the process's pid namespace; None where gone, ``procfs.REFUSED`` where
    this process may not look (another user's process)."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except PermissionError:
        return procfs.REFUSED
    except OSError:
        return None


class ProcessTable:
    """The processes of the machine, kept from the kernel's events (see the module doc).

    ``conn``: a connector to read from when iterating (one with all events is opened when None).
    ``snapshot``: start from what ``/proc`` has. ``capture_limit``: above this many events
    waiting in one batch, execs are not enriched from ``/proc`` (counted in ``skipped``), so a
    storm never costs events. ``realtime``: run the calling thread under ``SCHED_FIFO`` (like
    ``forkstat -r``); ``nice``: run it at this nice value instead (-20: the exec capture wins
    the race with short-lived processes without a real-time policy); both need CAP_SYS_NICE
    (:func:`~pyprocconn.priority.raise_priority`). ``time_slice``: ask the scheduler for this
    slice in seconds (``priority.SHORTEST_SLICE``, 0.1 ms: the listener preempts the running
    process at wake-up; no privilege needed; :func:`~pyprocconn.priority.shorten_slice`).
    ``exec_reader``: fork a second listener that reads each exec's command line, exe and cwd
    the moment the kernel reports it, used where the table's own read came too late
    (:mod:`pyprocconn.exec_reader`; make the table before starting threads: it forks).
    ``max_processes`` bounds the processes held, ``max_argv`` the
    bytes of each command line. ``resync_interval``: the least time between two rescans of
    ``/proc`` after losses; a loss within it is owed and merged into the next rescan, made by the
    next :meth:`update` once the time has passed, or by :meth:`resync_due` (a loop of your own
    that waits for events calls it when idle, waiting at most :meth:`resync_in`).
    """

    def __init__(  # noqa: PLR0913 - keyword-only options, each with its default
        self,
        conn: ProcConnector | None = None,
        *,
        snapshot: bool = True,
        capture_limit: int = 2048,
        realtime: bool = False,
        nice: int | None = None,
        time_slice: float | None = None,
        max_processes: int = 1 << 20,
        max_argv: int = DEFAULT_MAX_ARGV,
        resync_interval: float = 0.5,
        exec_reader: bool = False,
    ) -> None:
        if max_argv < 1 or max_processes < 1:
            raise ValueError("max_argv and max_processes must be at least 1")
        if conn is not None:
            missing = FOLLOWED_EVENTS & ~conn.events
            if missing:
                names = sorted(n for n in FOLLOWED if EventType.from_names(n) & missing)
                raise ValueError(
                    f"a process table follows {', '.join(sorted(FOLLOWED))}: this connector "
                    f"does not receive {', '.join(names)}"
                )
        raise_priority(nice, realtime)
        if time_slice is not None:
            shorten_slice(time_slice)
        # Forked first, while this process holds little (see pyprocconn.exec_reader).
        self.reader: ExecReader | None = None
        self._own = False  # the connector is this table's, to close with it
        self.exec_reader_refused: str | None = None  # why fork failed (SCHED_DEADLINE: EAGAIN)
        if exec_reader:
            try:
                self.reader = ExecReader(max_argv)
            except OSError as error:
                self.exec_reader_refused = error.strerror or str(error)
        try:
            self._start(conn, snapshot, capture_limit, max_processes, max_argv, resync_interval)
        except BaseException:
            self.close()
            raise

    def _start(
        self,
        conn: ProcConnector | None,
        snapshot: bool,
        capture_limit: int,
        max_processes: int,
        max_argv: int,
        resync_interval: float,
    ) -> None:
        self.conn = (
            ProcConnector(rcvbuf=DEFAULT_RCVBUF * 4, urgent=EventType.EXEC)
            if conn is None
            else conn
        )
        self._own = conn is None
        self.processes: dict[int, Process] = {}
        self.capture_limit = capture_limit
        self.max_processes = max_processes
        self.max_argv = max_argv
        self.skipped = 0  # execs not enriched under overload
        self.incomplete = 0  # execs with no command line: gone before the read, or exec'd again
        self.untracked = 0  # processes not held because the table was full
        self._threads: dict[int, _Threads] = {}  # only processes with more than their leader
        # What /proc had for each exec, read early (None: not read early, under overload).
        self._captured: dict[_ExecKey, _Capture | None] = {}
        self._read_until: dict[int, tuple[_ExecKey, int]] = {}  # tgid -> last read, done when
        self._read_batch: list[ProcEvent | EventsLost] | None = None  # receive()'s, all read
        self.resync_interval = resync_interval
        self._unsynced: list[EventsLost] = []  # losses not rescanned for yet
        self._next_rescan = 0.0  # time.monotonic() from which a rescan may run
        self._exec_times: deque[int] = deque(maxlen=EXECS_COUNTED + 1)  # timestamp_ns, newest last
        # Gone from /proc at a rescan: an exit still queued then is shown with its process.
        self._gone: dict[int, Process] = {}
        if snapshot:
            for process in self._scan().values():
                self._hold(process)

    # -- /proc -----------------------------------------------------------------------------------
    def _scan(self, origin: Origin = "snapshot") -> dict[int, Process]:
        found = {}
        offset = _boot_offset_ns()
        for name in os.listdir("/proc"):
            if name.isdigit():
                process = self._from_proc(int(name), origin, offset)
                if process is not None:
                    found[process.pid] = process
        return found

    def _from_proc(self, pid: int, origin: Origin, offset: int) -> Process | None:
        found = procfs.stat(pid)
        if found is None:
            return None
        others: dict[int, int | None] = {
            tid: start * _TICK_NS - offset
            for tid, start in procfs.thread_starts(pid).items()
            if tid != pid
        }
        leader_gone = found.exited
        if leader_gone and not others:
            return None  # ended, not yet reaped
        if others or leader_gone:
            threads = self._threads.setdefault(pid, _Threads())
            threads.others, threads.leader_gone = others, leader_gone
        start_ns = found.starttime * _TICK_NS - offset
        process = Process(pid, found.ppid, start_ns, origin, comm=found.comm, sid=found.session)
        process.kernel_thread = bool(found.flags & 0x00200000)  # PF_KTHREAD
        self._apply(process, self._capture(pid), ids=True)
        return process

    def _read_cmdline(self, pid: int) -> bytes | None:
        return procfs.read(f"/proc/{pid}/cmdline", self.max_argv + 1)

    def _capture(
        self, pid: int, cmdline: bytes | None = None, places: procfs.Places | None = None
    ) -> _Capture:
        """What /proc has now, in the order it goes: the command line, exe and cwd leave with
        the process's memory and fs at its exit; the rest stays until it is reaped."""
        raw = self._read_cmdline(pid) if cmdline is None else cmdline
        exe, cwd = procfs.places(pid) if places is None else places
        comm = procfs.read(f"/proc/{pid}/comm")
        return _Capture(
            raw,
            os.fsdecode(comm.removesuffix(b"\n")) if comm is not None else None,
            exe,
            cwd,
            *_cgroup(pid),
            *_status(pid),
            _pid_namespace(pid),
        )

    def _apply(self, process: Process, capture: _Capture, ids: bool) -> None:
        """Fill a new (not yet handed out) process from a capture (its ids too with ``ids``:
        after an exec they carry over, and the id events keep them)."""
        raw = capture.cmdline
        if raw is not None and len(raw) > self.max_argv:
            raw, process.argv_truncated = raw[: self.max_argv], True
        process.argv = procfs.parse_argv(raw)
        if process.argv is None and not process.kernel_thread:
            process.complete = False
        process.comm = capture.comm or process.comm
        exe, cwd = capture.exe, capture.cwd
        process.refused = tuple(
            name for name, value in (("exe", exe), ("cwd", cwd)) if value == procfs.REFUSED
        )
        process.exe = None if exe == procfs.REFUSED else exe
        process.cwd = None if cwd == procfs.REFUSED else cwd
        process.cgroup, process.container = capture.cgroup, capture.container
        ns_pid, pid_ns = capture.ns_pid, capture.pid_ns
        if pid_ns == procfs.REFUSED:
            process.refused += ("pid_ns",)
        if ns_pid is not None or pid_ns is not None:  # else (gone): as before its exec
            process.ns_pid = ns_pid
            process.pid_ns = pid_ns if isinstance(pid_ns, int) else None
        if ids and capture.ids is not None:
            process.uid, process.euid, process.gid, process.egid = capture.ids

    def _hold(self, process: Process) -> None:
        """Keep a process, unless the table is full (a new pid then is not followed)."""
        if process.pid in self.processes or len(self.processes) < self.max_processes:
            self.processes[process.pid] = process
        else:
            self.untracked += 1

    # -- events ----------------------------------------------------------------------------------
    def capture_execs(self, batch: Iterable[ProcEvent | EventsLost]) -> None:
        """Read each exec'd process's command line now, before anything else in the batch is
        looked at, then the rest of what /proc has (call it as soon as a batch is in hand;
        :meth:`update` does the rest). Execs already read are not read again."""
        items = batch if isinstance(batch, Sequence) else list(batch)
        captured = self._captured
        named = [
            item
            for item in items
            if getattr(item, "NAME", "") == "exec"
            and (item.process_tgid, item.timestamp_ns) not in captured  # type: ignore[union-attr]
        ]
        execs = cast("list[ExecEvent]", named)
        if not execs:
            return
        reading = self._supersede(execs)
        if len(items) > self.capture_limit:
            self.skipped += len(reading)
            captured.update(((event.process_tgid, event.timestamp_ns), None) for event in reading)
        else:
            self._read_execs(reading)
        self._exec_times.extend(event.timestamp_ns for event in execs)

    def _supersede(self, execs: list[ExecEvent]) -> list[ExecEvent]:
        """Mark the execs whose /proc can no longer be told from a later exec's: all but the
        last of each process here, and one read in an earlier batch after the first of its
        process here came. The execs left to read: the last of each process."""
        captured, read_until = self._captured, self._read_until
        last = {event.process_tgid: event for event in execs}
        first: set[int] = set()
        for event in execs:
            tgid = event.process_tgid
            if tgid not in first:
                first.add(tgid)
                earlier, done_ns = read_until.get(tgid, (None, 0))
                if earlier in captured and event.timestamp_ns < done_ns:
                    captured[earlier] = _SUPERSEDED
            if event is not last[tgid]:
                captured[tgid, event.timestamp_ns] = _SUPERSEDED
        return list(last.values())

    def _read_execs(self, reading: list[ExecEvent]) -> None:
        """/proc for each exec, the race first: every command line, then every exe and cwd;
        the exec reader's where this read came too late."""
        pids = [event.process_tgid for event in reading]
        cmdlines = [self._read_cmdline(pid) for pid in pids]
        places = [procfs.places(pid) for pid in pids]
        early = self.reader.take() if self.reader is not None else {}
        read: list[tuple[int, _ExecKey, int | None]] = []
        for event, own_cmdline, own_places in zip(reading, cmdlines, places, strict=True):
            pid, key = event.process_tgid, (event.process_tgid, event.timestamp_ns)
            cmdline, place, done = own_cmdline, own_places, None
            found = None if cmdline else early.get(key)
            if found is not None and found.cmdline:  # gone already: what the exec reader caught
                cmdline, place, done = found.cmdline, (found.exe, found.cwd), found.done_ns
            self._captured[key] = self._capture(pid, cmdline, place)
            read.append((pid, key, done))
        done_ns = time.monotonic_ns()  # the events' clock: an exec before this may be in it
        for pid, key, done in read:
            self._read_until[pid] = (key, done_ns if done is None else done)

    def _late_capture(self, key: _ExecKey) -> _Capture:
        """/proc now for an exec not read early (overload, or fed by hand), or what the exec
        reader caught where it is gone."""
        pid = key[0]
        found = self.reader.take().get(key) if self.reader is not None else None
        cmdline = self._read_cmdline(pid)
        if not cmdline and found is not None and found.cmdline:
            return self._capture(pid, found.cmdline, (found.exe, found.cwd))
        return self._capture(pid, cmdline)

    def receive(self, timeout: float | None = None) -> list[ProcEvent | EventsLost]:
        """The connector's next batch (waiting up to ``timeout`` seconds, None: forever; ``[]``
        on timeout; lingering as :meth:`linger` says), its execs read from /proc at once, then
        whatever came meanwhile, read the same way, until nothing waits: under a storm no
        exec waits for the records of the ones before it. Losses come inline. Hand it to
        :meth:`feed`."""
        batch = self._received(timeout, self.linger())
        taken = list(batch)
        while taken:
            self.capture_execs(taken)
            if len(batch) >= _RECEIVED_MAX:
                break
            taken = self._received(0.0, 0.0)
            batch += taken
        self._read_batch = batch  # feed(batch) need not look for execs to read again
        return batch

    def _received(self, timeout: float | None, linger: float) -> list[ProcEvent | EventsLost]:
        try:
            return list(self.conn.recv_batch(timeout, linger=linger))
        except OverrunError as error:
            return [error.loss]

    def feed(self, batch: Sequence[ProcEvent | EventsLost]) -> list[Record]:
        """What a batch from the connector (or :meth:`receive`) tells: command lines of execs
        read first (:meth:`capture_execs`), then each item (:meth:`update`); an empty batch (a
        wait that timed out) gives the rescan owed for losses, once due."""
        if batch is not self._read_batch:
            self.capture_execs(batch)
        self._read_batch = None
        if not batch:
            return self.resync_due()
        return [record for item in batch for record in self.update(item)]

    def update(self, item: ProcEvent | EventsLost) -> list[Record]:
        """Apply one item of the stream; what it tells, as records (a rescan owed for earlier
        losses first, once due)."""
        owed = self.resync_due() if self._unsynced else []
        if isinstance(item, EventsLost):
            self._unsynced.append(item)
            return [*owed, item, *self.resync_due()]
        handler = _HANDLERS.get(item.NAME)
        records: list[Record] = [*owed]
        if handler is None:
            records.append(Seen(item, self._about(item)))
        else:
            handler(self, item, records)
        return records

    def resync_in(self) -> float | None:
        """Seconds until the rescan owed for losses may run (0: now); None when none is owed."""
        if not self._unsynced:
            return None
        return max(0.0, self._next_rescan - time.monotonic())

    def resync_due(self) -> list[Record]:
        """The rescan owed for losses, if ``resync_interval`` has passed since the last one."""
        if not self._unsynced or time.monotonic() < self._next_rescan:
            return []
        losses, self._unsynced = tuple(self._unsynced), []
        record = self._resync(losses)
        self._next_rescan = time.monotonic() + self.resync_interval
        return [record]

    def _about(self, event: ProcEvent) -> Process | None:
        tgid = getattr(event, "process_tgid", None)
        return self.processes.get(tgid) if isinstance(tgid, int) else None

    def _change(self, process: Process, **changes: Any) -> Process:
        """A new snapshot of a held process: the one handed out before stays as it was."""
        changed = self.processes[process.pid] = _derived(process, changes)
        return changed

    def _fork(self, event: ForkEvent, records: list[Record]) -> None:
        tgid, ts = event.child_tgid, event.timestamp_ns
        if event.child_pid != tgid:  # a new thread of a known process
            process = self.processes.get(tgid)
            if process is not None:
                self._threads.setdefault(tgid, _Threads()).others[event.child_pid] = ts
            records.append(Seen(event, process, thread=True))
            return
        old = self.processes.get(tgid)
        if (
            old is not None
            and old.origin != "fork"
            and old.start_ns is not None
            and abs(old.start_ns - ts) <= _SAME_START_NS
        ):  # forked before the scan that found it, not a reused pid
            records.append(Seen(event, self._change(old, start_ns=ts, origin="fork")))
            return
        self._gone.pop(tgid, None)  # a new process with a pid a rescan found gone
        if old is not None:  # the pid was reused: the old one ended unseen
            self._forget(tgid)
            records.append(self._ended(old, None))
        parent = self.processes.get(event.parent_tgid)
        ppid = event.parent_tgid
        if parent is None:
            process = Process(tgid, ppid, ts, "fork")
        else:  # a child starts as a copy of its parent
            changes = {"pid": tgid, "ppid": ppid, "start_ns": ts, "origin": "fork", "exec_ns": None}
            changes["ns_pid"] = changes["pid_ns"] = None  # its own, known at its exec
            changes["refused"] = tuple(name for name in parent.refused if name != "pid_ns")
            process = _derived(parent, changes)
        self._hold(process)
        records.append(Seen(event, process))

    def _exec(self, event: ExecEvent, records: list[Record]) -> None:
        tgid = event.process_tgid
        old = self.processes.get(tgid)
        self._threads.pop(tgid, None)  # exec leaves one thread, with the process's pid
        key = (tgid, event.timestamp_ns)
        capture = self._captured.pop(key, None)
        if self._read_until.get(tgid, (None,))[0] == key:
            del self._read_until[tgid]
        if capture is None:  # not captured early (overload, or fed by hand): read now
            capture = self._late_capture(key)
        if len(self._captured) > _MAX_PENDING_CAPTURES:
            self._captured.clear()
            self._read_until.clear()
        if old is None:
            process = Process(tgid, 0, None, "late")
        else:  # ids, parent and session carry over; what exec changes is read
            process = _derived(old, {"comm": None, "argv_truncated": False, "complete": True})
        process.exec_ns = event.timestamp_ns
        if capture is _SUPERSEDED:  # what exec leaves is kept; what it changes is unknown
            pid_ns = procfs.REFUSED if "pid_ns" in process.refused else process.pid_ns
            capture = _Capture(
                None, None, None, None, process.cgroup, process.container, None,
                process.ns_pid, pid_ns,
            )  # fmt: skip
        # Ids are the events' (a set-user-ID exec sends uid and gid events before its exec):
        # /proc, read with the batch in hand, may already hold a later change.
        self._apply(process, capture, ids=old is None or old.uid is None)
        if not process.argv:
            process.complete = False
            self.incomplete += 1
        self._hold(process)
        records.append(Seen(event, process))

    def _uid(self, event: UidEvent, records: list[Record]) -> None:
        process = self._about(event)
        if process is not None:
            process = self._change(process, uid=event.ruid, euid=event.euid)
        records.append(Seen(event, process))

    def _gid(self, event: GidEvent, records: list[Record]) -> None:
        process = self._about(event)
        if process is not None:
            process = self._change(process, gid=event.rgid, egid=event.egid)
        records.append(Seen(event, process))

    def _sid(self, event: SidEvent, records: list[Record]) -> None:
        process = self._about(event)
        if process is not None:
            process = self._change(process, sid=event.process_tgid)
        records.append(Seen(event, process))

    def _comm(self, event: CommEvent, records: list[Record]) -> None:
        process = self._about(event)
        if process is not None and event.process_pid == event.process_tgid:
            process = self._change(process, comm=event.comm)
        records.append(Seen(event, process))

    def _exit(self, event: ExitEvent, records: list[Record]) -> None:
        process = self._about(event)
        pid, tgid, ts = event.process_pid, event.process_tgid, event.timestamp_ns
        if process is None:
            gone = self._gone.pop(tgid, None) if pid == tgid else None
            if gone is not None:  # its exit was still queued when a rescan found it gone
                lifetime = None if gone.start_ns is None else event.timestamp_ns - gone.start_ns
                records.append(Seen(event, gone, lifetime))  # its end: in that Resynced
                return
            records.append(Seen(event, None, thread=pid != tgid))
            return
        if event.parent_tgid and event.parent_tgid != process.ppid:  # reparented meanwhile
            process = self._change(process, ppid=event.parent_tgid)
        threads = self._threads.get(tgid)
        start = process.start_ns
        if pid != tgid:  # a thread: the process ends with it only after its leader
            thread_start = threads.others.pop(pid, None) if threads is not None else None
            last = threads is not None and threads.leader_gone and not threads.others
            start = start if last else thread_start
        else:  # the leader: the process ends unless other threads still run
            last = threads is None or not threads.others
            if threads is not None:
                threads.leader_gone = True
        lifetime = None if start is None else ts - start
        records.append(Seen(event, process, lifetime, thread=not last))
        if last:
            self._forget(tgid)
            records.append(self._ended(process, event))

    def _forget(self, pid: int) -> None:
        del self.processes[pid]
        self._threads.pop(pid, None)

    def _ended(self, process: Process, event: ExitEvent | None) -> Exited:
        parents: list[int] = []
        seen, ppid = {process.pid}, process.ppid
        while ppid and ppid not in seen and len(parents) < 64:
            parents.append(ppid)
            seen.add(ppid)
            parent = self.processes.get(ppid)
            ppid = parent.ppid if parent is not None else 0
        if event is None:
            return Exited(process, 0, None, tuple(parents), unknown=True)
        return Exited(process, event.exit_code, event.timestamp_ns, tuple(parents))

    def _resync(self, losses: tuple[EventsLost, ...]) -> Resynced:
        now = self._scan("late")
        vanished = []
        gone = self._gone
        for pid in [pid for pid in self.processes if pid not in now]:
            process = gone[pid] = self.processes[pid]
            self._forget(pid)
            vanished.append(self._ended(process, None))
        for pid in list(itertools.islice(gone, max(0, len(gone) - _GONE_KEPT))):
            del gone[pid]  # the oldest: their exits, if any, were read long ago
        appeared = []
        for pid, process in now.items():
            known = self.processes.get(pid)
            if known is None or (
                known.start_ns is not None
                and process.start_ns is not None
                and abs(known.start_ns - process.start_ns) > _SAME_START_NS  # reused meanwhile
            ):
                if known is not None:
                    vanished.append(self._ended(known, None))
                self._hold(process)
                appeared.append(process)
        return Resynced(losses, tuple(vanished), tuple(appeared))

    # -- its own loop ----------------------------------------------------------------------------
    def linger(self) -> float:
        """Seconds the next receive may let events gather (``recv_batch(linger=...)``):
        ``GATHER`` when the connector rings for execs (``urgent``: an exec ends the linger at
        once), so a storm of forks and exits costs a wake-up per batch, not per event, and the
        listener sleeps through a process's fork and wakes at its exec, when it preempts at
        once (woken for the fork 0.2 ms earlier, it has not yet got back its scheduling credit
        and waits for the exec'd process to yield). None while execs come closer than
        ``EXECS_CLOSE`` (a storm: there the listener never sleeps that long, and lingering read
        fewer command lines)."""
        if self.conn.urgent is None:
            return 0.0
        times = self._exec_times
        recent = time.monotonic_ns() - _EXECS_RECENT_NS  # the events' clock: CLOCK_MONOTONIC
        if (
            times
            and times[-1] > recent
            and any(
                later - earlier < _EXECS_CLOSE_NS and later > recent
                for earlier, later in itertools.pairwise(times)
            )
        ):
            return 0.0
        return GATHER

    def __iter__(self) -> Iterator[Record]:
        """Records forever, from the connector; execs are read from /proc as soon as each
        batch is in hand."""
        while True:
            yield from self.feed(self.receive(self.resync_in()))

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self._own:
            self.conn.close()

    def __enter__(self) -> ProcessTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_HANDLERS: dict[str, Any] = {
    "fork": ProcessTable._fork,
    "exec": ProcessTable._exec,
    "uid": ProcessTable._uid,
    "gid": ProcessTable._gid,
    "sid": ProcessTable._sid,
    "comm": ProcessTable._comm,
    "exit": ProcessTable._exit,
}
# The event types the table follows: a connector that feeds it must carry them.
FOLLOWED: frozenset[str] = frozenset(_HANDLERS)
FOLLOWED_EVENTS = EventType.from_names(",".join(sorted(FOLLOWED)))  # the same, as a mask

__all__ = [  # the records are defined in pyprocconn.records, and reachable from here too
    "DEFAULT_MAX_ARGV",
    "EXECS_CLOSE",
    "EXECS_COUNTED",
    "EXECS_RECENT",
    "FOLLOWED",
    "FOLLOWED_EVENTS",
    "GATHER",
    "Exited",
    "Origin",
    "Process",
    "ProcessTable",
    "Record",
    "Resynced",
    "Seen",
]
