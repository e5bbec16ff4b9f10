"""Who ran what, as whom, for how long, and how it ended: a process table kept from the events.

Opt-in, on top of :class:`ProcConnector` (which itself never reads ``/proc``). It starts from a
snapshot of ``/proc``, follows forks, execs, id changes, setsid, comm changes and exits, reads what
``/proc`` still has the moment an exec arrives (a process that lives half a millisecond is gone a
moment later: a zombie has no ``cmdline``, ``exe`` or ``cwd``), and after a loss rescans ``/proc``
to reconcile (at most once per ``resync_interval``: the losses of a long overrun are merged into
one rescan rather than costing one each). Iterate it like a connector, or hand it events from
your own loop::

    with ProcessTable() as table:
        for record in table:            # Seen, Exited, Lost or Resynced
            if isinstance(record, Exited):
                print(record.process.argv, record.lifetime_ns, record.describe_status())
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pyprocconn import procfs
from pyprocconn.connector import DEFAULT_RCVBUF, ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventsLost, ExitStatus, ProcEvent

Origin = Literal["snapshot", "fork", "late"]
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    """One process (threads folded in; ``threads`` lists their ids). ``start_ns`` is the
    kernel's CLOCK_MONOTONIC time of its fork (from ``/proc`` for a snapshot, 10 ms precision);
    (``pid``, ``start_ns``) is its identity, which survives pid reuse. ``complete`` is False
    when the process was gone before its command line could be read."""

    pid: int
    ppid: int
    start_ns: int | None
    origin: Origin
    comm: str | None = None
    argv: list[str] | None = None
    exe: str | None = None
    cwd: str | None = None
    uid: int | None = None
    euid: int | None = None
    gid: int | None = None
    egid: int | None = None
    sid: int | None = None
    cgroup: str | None = None
    kernel_thread: bool = False
    complete: bool = True
    exec_ns: int | None = None
    threads: set[int] = field(default_factory=set)

    @property
    def key(self) -> tuple[int, int | None]:
        return self.pid, self.start_ns


@dataclass(frozen=True)
class Seen:
    """An event, with the process it is about as the table now knows it (None: unknown)."""

    event: ProcEvent
    process: Process | None


@dataclass(frozen=True)
class Exited(ExitStatus):
    """A process ended. ``exit_code`` is the wait(2) status, None when it vanished unseen (while
    events were lost); ``parents`` is its parent chain at the end, nearest first."""

    process: Process
    exit_code: int  # 0 with ``unknown`` True when it vanished unseen
    timestamp_ns: int | None
    parents: tuple[int, ...]
    unknown: bool = False

    @property
    def lifetime_ns(self) -> int | None:
        start, end = self.process.start_ns, self.timestamp_ns
        return None if start is None or end is None else end - start

    def describe_status(self) -> str:
        return "vanished unseen (events were lost)" if self.unknown else super().describe_status()


@dataclass(frozen=True)
class Lost:
    """Where the kernel dropped events, in stream order; a :class:`Resynced` follows (at once, or
    within ``resync_interval`` when a rescan ran just before)."""

    lost: EventsLost


@dataclass(frozen=True)
class Resynced:
    """After losses: ``/proc`` rescanned. ``vanished`` ended unseen, ``appeared`` started unseen;
    ``losses``: the losses it answers (several when a long overrun's were merged)."""

    losses: tuple[EventsLost, ...]
    vanished: tuple[Exited, ...]
    appeared: tuple[Process, ...]


Record = Seen | Exited | Lost | Resynced


def _boot_offset_ns() -> int:
    """CLOCK_BOOTTIME minus CLOCK_MONOTONIC: /proc's start times count suspended time too."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) - time.monotonic_ns()


class ProcessTable:
    """The processes of the machine, kept from the kernel's events (see the module doc).

    ``conn``: a connector to read from when iterating (one with all events is opened when None).
    ``snapshot``: start from what ``/proc`` has. ``capture_limit``: above this many events
    waiting in one batch, execs are not enriched from ``/proc`` (counted in ``skipped``), so a
    storm never costs events. ``realtime``: run this process under ``SCHED_FIFO`` (like
    ``forkstat -r``), so the exec capture wins the race with short-lived processes.
    ``max_processes`` bounds memory. ``resync_interval``: the least time between two rescans of
    ``/proc`` after losses; a loss within it is owed and merged into the next rescan, made by the
    next :meth:`update` once the time has passed, or by :meth:`resync_due` (a loop of your own
    that waits for events calls it when idle, waiting at most :meth:`resync_in`).
    """

    def __init__(
        self,
        conn: ProcConnector | None = None,
        *,
        snapshot: bool = True,
        capture_limit: int = 2048,
        realtime: bool = False,
        max_processes: int = 1 << 20,
        resync_interval: float = 0.5,
    ) -> None:
        if realtime:
            priority = os.sched_get_priority_max(os.SCHED_FIFO)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        self._own = conn is None
        self.conn = ProcConnector(rcvbuf=DEFAULT_RCVBUF * 4) if conn is None else conn
        self.processes: dict[int, Process] = {}
        self.capture_limit = capture_limit
        self.max_processes = max_processes
        self.skipped = 0  # execs not enriched under overload
        self.incomplete = 0  # execs whose process was gone before /proc could be read
        self._captured: dict[int, bytes | None] = {}  # exec'd pid -> its cmdline, read early
        self.resync_interval = resync_interval
        self._unsynced: list[EventsLost] = []  # losses not rescanned for yet
        self._next_rescan = 0.0  # time.monotonic() from which a rescan may run
        if snapshot:
            for process in self._scan().values():
                self.processes[process.pid] = process

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
        if found is None or found[1][0] in (b"Z", b"X"):
            return None
        comm, fields = found
        flags = int(fields[6])
        start_ns = int(fields[19]) * 1_000_000_000 // _TICKS - offset
        process = Process(pid, int(fields[1]), start_ns, origin, sid=int(fields[3]))
        process.comm = comm
        process.kernel_thread = bool(flags & 0x00200000)  # PF_KTHREAD
        process.threads = procfs.thread_ids(pid)
        self._enrich(process)
        return process

    def _enrich(self, process: Process) -> None:
        """What /proc has now: command line first (it is gone soonest), then the rest."""
        pid = process.pid
        process.argv = procfs.argv(pid)
        if process.argv is None and not process.kernel_thread:
            process.complete = False
        process.exe = procfs.link(f"/proc/{pid}/exe")
        process.cwd = procfs.link(f"/proc/{pid}/cwd")
        status = procfs.read(f"/proc/{pid}/status") or b""
        for line in status.splitlines():
            key, _, value = line.partition(b":")
            if key in (b"Uid", b"Gid"):
                real, effective = (int(v) for v in value.split()[:2])
                if key == b"Uid":
                    process.uid, process.euid = real, effective
                else:
                    process.gid, process.egid = real, effective
            elif key == b"Name" and process.comm is None:
                process.comm = os.fsdecode(value.strip())
        cgroup = procfs.read(f"/proc/{pid}/cgroup")
        if cgroup:
            process.cgroup = os.fsdecode(cgroup.splitlines()[0].split(b":", 2)[-1])

    # -- events ----------------------------------------------------------------------------------
    def capture_execs(self, batch: Iterable[ProcEvent | EventsLost]) -> None:
        """Read each exec'd process's command line now, before anything else in the batch is
        looked at (call it as soon as a batch is in hand; :meth:`update` does the rest)."""
        items = list(batch)
        if len(items) > self.capture_limit:
            self.skipped += sum(1 for item in items if getattr(item, "NAME", "") == "exec")
            return
        for item in items:
            if getattr(item, "NAME", "") == "exec":
                pid = item.process_tgid  # type: ignore[union-attr]
                self._captured[pid] = procfs.read(f"/proc/{pid}/cmdline")

    def feed(self, batch: Sequence[ProcEvent | EventsLost]) -> list[Record]:
        """What a batch from the connector tells: command lines of execs read first
        (:meth:`capture_execs`), then each item (:meth:`update`); an empty batch (a wait that
        timed out) gives the rescan owed for losses, once due."""
        self.capture_execs(batch)
        if not batch:
            return self.resync_due()
        return [record for item in batch for record in self.update(item)]

    def update(self, item: ProcEvent | EventsLost) -> list[Record]:
        """Apply one item of the stream; what it tells, as records (a rescan owed for earlier
        losses first, once due)."""
        owed = self.resync_due() if self._unsynced else []
        if isinstance(item, EventsLost):
            self._unsynced.append(item)
            return [*owed, Lost(item), *self.resync_due()]
        name = item.NAME
        handler = _HANDLERS.get(name)
        records: list[Record] = []
        process = handler(self, item, records) if handler else self._about(item)
        return [*owed, Seen(item, process), *records]

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

    def _about(self, event: Any) -> Process | None:
        tgid = getattr(event, "process_tgid", None)
        return self.processes.get(tgid) if isinstance(tgid, int) else None

    def _fork(self, event: Any, records: list[Record]) -> Process:
        tgid = event.child_tgid
        if event.child_pid != tgid:  # a new thread of a known process
            process = self.processes.get(tgid)
            if process is not None:
                process.threads.add(event.child_pid)
                return process
        old = self.processes.pop(tgid, None)
        if old is not None:  # the pid was reused: the old one ended unseen
            records.append(self._ended(old, None))
        parent = self.processes.get(event.parent_tgid)
        process = Process(tgid, event.parent_tgid, event.timestamp_ns, "fork", threads={tgid})
        if parent is not None:  # a child starts as a copy of its parent
            for name in ("comm", "argv", "exe", "cwd", "uid", "euid", "gid", "egid", "sid"):
                setattr(process, name, getattr(parent, name))
            process.cgroup = parent.cgroup
        if len(self.processes) < self.max_processes:
            self.processes[tgid] = process
        return process

    def _exec(self, event: Any, records: list[Record]) -> Process:
        tgid = event.process_tgid
        process = self.processes.get(tgid)
        if process is None:
            process = Process(tgid, 0, None, "late")
            self.processes[tgid] = process
        process.threads = {tgid}  # exec leaves one thread
        process.exec_ns = event.timestamp_ns
        early = tgid in self._captured
        raw = self._captured.pop(tgid) if early else procfs.read(f"/proc/{tgid}/cmdline")
        if len(self._captured) > 4096:  # captures whose exec never came: forget them
            self._captured.clear()
        process.comm = None  # exec changes it: read again
        process.argv = None  # the parent's, copied at fork: never the exec'd command's
        self._enrich(process)  # exe, cwd, ids, cgroup: whatever is still there
        if raw:  # the early read wins: it was taken closer to the exec
            process.argv = procfs.parse_argv(raw)
        process.complete = bool(process.argv)
        if not process.complete:
            self.incomplete += 1
        return process

    def _ids(self, event: Any, records: list[Record]) -> Process | None:
        process = self._about(event)
        if process is not None:
            if event.NAME == "uid":
                process.uid, process.euid = event.ruid, event.euid
            else:
                process.gid, process.egid = event.rgid, event.egid
        return process

    def _sid(self, event: Any, records: list[Record]) -> Process | None:
        process = self._about(event)
        if process is not None:
            process.sid = event.process_tgid
        return process

    def _comm(self, event: Any, records: list[Record]) -> Process | None:
        process = self._about(event)
        if process is not None and event.process_pid == event.process_tgid:
            process.comm = event.comm
        return process

    def _exit(self, event: Any, records: list[Record]) -> Process | None:
        process = self._about(event)
        if process is None:
            return None
        if event.parent_tgid:  # the real parent at the end: reparenting followed
            process.ppid = event.parent_tgid
        process.threads.discard(event.process_pid)
        if not process.threads:  # its last thread
            del self.processes[process.pid]
            records.append(self._ended(process, event))
        return process

    def _ended(self, process: Process, event: Any) -> Exited:
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
        for pid in [pid for pid in self.processes if pid not in now]:
            vanished.append(self._ended(self.processes.pop(pid), None))
        appeared = []
        for pid, process in now.items():
            known = self.processes.get(pid)
            if known is None or (
                known.start_ns is not None
                and process.start_ns is not None
                and abs(known.start_ns - process.start_ns) > 20_000_000  # reused meanwhile
            ):
                if known is not None:
                    vanished.append(self._ended(known, None))
                self.processes[pid] = process
                appeared.append(process)
        return Resynced(losses, tuple(vanished), tuple(appeared))

    # -- its own loop ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        """Records forever, from the connector; execs are read from /proc as soon as each
        batch is in hand."""
        conn = self.conn
        while True:
            try:
                batch: list[ProcEvent | EventsLost] = list(conn.recv_batch(self.resync_in()))
            except OverrunError as error:
                batch = [EventsLost(error.lost, error.cpu)]
            yield from self.feed(batch)

    def close(self) -> None:
        if self._own:
            self.conn.close()

    def __enter__(self) -> ProcessTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_HANDLERS: dict[str, Any] = {
    "fork": ProcessTable._fork,
    "exec": ProcessTable._exec,
    "uid": ProcessTable._ids,
    "gid": ProcessTable._ids,
    "sid": ProcessTable._sid,
    "comm": ProcessTable._comm,
    "exit": ProcessTable._exit,
}
# The event types the table follows: a connector that feeds it must carry them.
FOLLOWED: frozenset[str] = frozenset(_HANDLERS)
