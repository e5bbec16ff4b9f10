"""Event objects: one immutable, hashable tuple subclass per kernel event type.

Field names are the kernel's (``struct fork_proc_event`` gives ``ForkEvent.child_pid``); every
event starts with ``what``, ``cpu`` and ``timestamp_ns`` (CLOCK_MONOTONIC nanoseconds).
"""

from __future__ import annotations

import enum
import os
import signal
from typing import Any, ClassVar, NamedTuple

from pyprocconn.kernel import cn_proc


class EventType(enum.IntFlag):
    """The kernel's event bits (``enum proc_cn_event``); also a subscription mask."""

    NONE = cn_proc.PROC_EVENT_NONE
    FORK = cn_proc.PROC_EVENT_FORK
    EXEC = cn_proc.PROC_EVENT_EXEC
    UID = cn_proc.PROC_EVENT_UID
    GID = cn_proc.PROC_EVENT_GID
    SID = cn_proc.PROC_EVENT_SID
    PTRACE = cn_proc.PROC_EVENT_PTRACE
    COMM = cn_proc.PROC_EVENT_COMM
    # A filter bit only: exits with a non-zero code still arrive as EXIT.
    NONZERO_EXIT = cn_proc.PROC_EVENT_NONZERO_EXIT
    COREDUMP = cn_proc.PROC_EVENT_COREDUMP
    EXIT = cn_proc.PROC_EVENT_EXIT
    ALL = cn_proc.PROC_EVENT_ALL


class ProcEvent:
    """Base of every event. Subclasses are named tuples: immutable, hashable, cheap."""

    __slots__ = ()
    TYPE: ClassVar[EventType]
    NAME: ClassVar[str]  # short lower-case name: "fork", "exit", ...

    what: int
    cpu: int
    timestamp_ns: int

    def to_dict(self) -> dict[str, Any]:
        """The event's fields as a plain dict (kernel names, plain values)."""
        return dict(self._asdict())  # type: ignore[attr-defined]

    def _details(self) -> str:
        fields = self.to_dict()
        for name in ("what", "cpu", "timestamp_ns"):
            fields.pop(name)
        return " ".join(f"{key}={value}" for key, value in fields.items())

    def __str__(self) -> str:
        seconds = self.timestamp_ns / 1e9
        return f"{self.NAME} {self._details()} cpu={self.cpu} t={seconds:.6f}"


class _Ack(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    err: int


class AckEvent(_Ack, ProcEvent):
    """The kernel's answer to a LISTEN/IGNORE request (``err`` 0 or a positive errno)."""

    __slots__ = ()
    TYPE = EventType.NONE
    NAME = "ack"


class _Fork(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    parent_pid: int
    parent_tgid: int
    child_pid: int
    child_tgid: int


class ForkEvent(_Fork, ProcEvent):
    """A new process or thread (``child_pid`` is the thread id, ``child_tgid`` the process)."""

    __slots__ = ()
    TYPE = EventType.FORK
    NAME = "fork"


class _Exec(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int


class ExecEvent(_Exec, ProcEvent):
    """A successful execve."""

    __slots__ = ()
    TYPE = EventType.EXEC
    NAME = "exec"


class _Uid(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    ruid: int
    euid: int


class UidEvent(_Uid, ProcEvent):
    """A change of credentials: the new real and effective uid."""

    __slots__ = ()
    TYPE = EventType.UID
    NAME = "uid"


class _Gid(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    rgid: int
    egid: int


class GidEvent(_Gid, ProcEvent):
    """A change of credentials: the new real and effective gid."""

    __slots__ = ()
    TYPE = EventType.GID
    NAME = "gid"


class _Sid(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int


class SidEvent(_Sid, ProcEvent):
    """A successful setsid()."""

    __slots__ = ()
    TYPE = EventType.SID
    NAME = "sid"


class _Ptrace(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    tracer_pid: int
    tracer_tgid: int


class PtraceEvent(_Ptrace, ProcEvent):
    """A ptrace attach (tracer set) or detach (tracer 0)."""

    __slots__ = ()
    TYPE = EventType.PTRACE
    NAME = "ptrace"


class _Comm(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    comm: str


class CommEvent(_Comm, ProcEvent):
    """A new task name (prctl(PR_SET_NAME) or a write to /proc/PID/comm)."""

    __slots__ = ()
    TYPE = EventType.COMM
    NAME = "comm"


class _Coredump(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    parent_pid: int
    parent_tgid: int


class CoredumpEvent(_Coredump, ProcEvent):
    """A process being killed by a core-dumping signal (sent whether or not a core is written)."""

    __slots__ = ()
    TYPE = EventType.COREDUMP
    NAME = "coredump"


class _Exit(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    process_pid: int
    process_tgid: int
    exit_code: int
    exit_signal: int
    parent_pid: int
    parent_tgid: int


class ExitEvent(_Exit, ProcEvent):
    """A thread's exit. ``exit_code`` is the wait(2) status; ``exit_signal`` (u32) is the
    signal sent to the parent (17, SIGCHLD, for ordinary children; 0xFFFFFFFF for threads)."""

    __slots__ = ()
    TYPE = EventType.EXIT
    NAME = "exit"

    @property
    def exit_status(self) -> int | None:
        """The status given to exit(), or None when a signal ended the process."""
        return os.WEXITSTATUS(self.exit_code) if os.WIFEXITED(self.exit_code) else None

    @property
    def term_signal(self) -> int | None:
        """The signal that ended the process, or None when it called exit()."""
        return os.WTERMSIG(self.exit_code) if os.WIFSIGNALED(self.exit_code) else None

    @property
    def core_dumped(self) -> bool:
        return os.WIFSIGNALED(self.exit_code) and os.WCOREDUMP(self.exit_code)

    def describe_status(self) -> str:
        """``exit 3``, ``killed by SIGKILL`` or ``killed by SIGABRT (core dumped)``."""
        signal_number = self.term_signal
        if signal_number is None:
            return f"exit {self.exit_status}"
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        return f"killed by {name}" + (" (core dumped)" if self.core_dumped else "")


class _Unknown(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    data: bytes


class UnknownEvent(_Unknown, ProcEvent):
    """An event type this version does not know (a newer kernel): its raw ``event_data``."""

    __slots__ = ()
    TYPE = EventType.NONE
    NAME = "unknown"


class EventsLost(NamedTuple):
    """Not a kernel event: where the stream lost events (yielded by the iterators).

    ``lost`` is exact when known (per-CPU sequence gap of ``cpu`` on an all-events
    subscription), None when the kernel only reported an overrun.
    """

    lost: int | None
    cpu: int | None = None

    def __str__(self) -> str:
        count = "an unknown number of" if self.lost is None else str(self.lost)
        where = "" if self.cpu is None else f" on cpu {self.cpu}"
        return f"lost {count} events{where}"


EVENT_CLASSES: dict[int, type[ProcEvent]] = {
    cls.TYPE.value: cls
    for cls in (
        AckEvent,
        ForkEvent,
        ExecEvent,
        UidEvent,
        GidEvent,
        SidEvent,
        PtraceEvent,
        CommEvent,
        CoredumpEvent,
        ExitEvent,
    )
}
