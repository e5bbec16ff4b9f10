"""What the process table hands out: a process as it was at one moment, and the records of
the stream (an event with its process, a process's end, the rescan after a loss)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from pyprocconn.containers import Container
from pyprocconn.events import EventsLost, ExitStatus, ProcEvent

Origin = Literal["snapshot", "fork", "late"]


@dataclass(eq=False)
class Process:
    """One process as it was at one moment (threads folded in). The table never changes a
    ``Process`` it has handed out: each change (an exec, an id or name change, reparenting)
    makes a new one, so keep a reference for the process as it was then.

    ``start_ns`` is the kernel's CLOCK_MONOTONIC time of its fork (from ``/proc`` for a
    snapshot, 10 ms precision); (``pid``, ``start_ns``) is its identity, which survives pid
    reuse. ``complete`` is False when the process was gone before its command line could be
    read. ``argv`` is exactly the kernel's arguments (empty ones kept), cut to the table's
    ``max_argv`` bytes, which ``argv_truncated`` then says. ``cgroup`` is the unified
    hierarchy's path (else the first line's) and ``container`` the container it names
    (:mod:`pyprocconn.containers`), both read again at each exec (a process may move).
    ``ns_pid`` is the pid as its own pid namespace numbers it (``NSpid``'s last) and ``pid_ns``
    that namespace's inode (``/proc/PID/ns/pid``), read at the snapshot and at each exec; None
    for a fork's child until it execs (it may have been forked into a new namespace). ``refused``
    names the fields ``/proc`` denied this process (``exe``, ``cwd``, ``pid_ns`` of another
    user's process without CAP_SYS_PTRACE): None there means refused, elsewhere gone."""

    pid: int
    ppid: int
    start_ns: int | None
    origin: Origin
    comm: str | None = None
    argv: list[str] | None = None
    exe: str | None = None
    cwd: str | None = None
    refused: tuple[str, ...] = ()
    uid: int | None = None
    euid: int | None = None
    gid: int | None = None
    egid: int | None = None
    sid: int | None = None
    cgroup: str | None = None
    container: Container | None = None
    ns_pid: int | None = None
    pid_ns: int | None = None
    kernel_thread: bool = False
    complete: bool = True
    exec_ns: int | None = None
    argv_truncated: bool = False

    @property
    def key(self) -> tuple[int, int | None]:
        return self.pid, self.start_ns


@dataclass(frozen=True)
class Seen:
    """An event, with the process it is about as it was at that event (None: unknown).
    ``thread``: the event is about one thread, not the process: a new thread, or an exit that
    leaves other threads running (a leader's ``pthread_exit`` too); the exit of a process's last
    thread is the process's exit. ``lifetime_ns``, for an exit: how long what exited lived (the
    process, or the thread for a thread's exit), None when its start is unknown."""

    event: ProcEvent
    process: Process | None
    lifetime_ns: int | None = None
    thread: bool = False


@dataclass(frozen=True)
class Exited(ExitStatus):
    """A process ended (its last thread exited). ``exit_code`` is the wait(2) status (of that
    last thread's exit: the process's status); ``parents`` is its parent chain at the end,
    nearest first."""

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
class Resynced:
    """After losses: ``/proc`` rescanned. ``vanished`` ended unseen (gone from /proc, no exit seen;
    an exit still queued then comes later as a :class:`Seen` with its process, not a second
    end), ``appeared`` started unseen; ``losses``: the losses it answers (several when a long
    overrun's were merged)."""

    losses: tuple[EventsLost, ...]
    vanished: tuple[Exited, ...]
    appeared: tuple[Process, ...]


# A loss is the connector's own EventsLost, where it happened in the stream; a Resynced follows
# (at once, or within ``resync_interval`` when a rescan ran just before).
Record: TypeAlias = Seen | Exited | EventsLost | Resynced
