"""Event objects: one immutable, hashable tuple class per event type of the generated layer.

The classes are made at import from :mod:`pyprocconn.layout`: a header with a new event type
gives a new class, a grown struct gives its event the new fields. Field names are the kernel's
(``struct fork_proc_event`` gives ``ForkEvent.child_pid``); every event starts with ``what``,
``cpu`` and ``timestamp_ns`` (CLOCK_MONOTONIC nanoseconds). A field the kernel did not send (an
older kernel's shorter struct) is None. Behaviour written by hand (:class:`ExitStatus`)
attaches by event name and checks at import that the fields it reads exist.
"""

import enum
import os
import signal
from collections import namedtuple
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

from pyprocconn import layout
from pyprocconn._own_names import OwnNames

if TYPE_CHECKING:
    # Generated from the layer (codegen.stubs): every member and event class, typed.
    from pyprocconn._event_types import *  # noqa: F403
    from pyprocconn._event_types import EventType

else:

    class _Members(type(enum.IntFlag)):
        def __dir__(cls) -> list[str]:
            return [*cls.__members__, "from_name", "from_names"]  # as OwnNames

    class _EventBits(enum.IntFlag, metaclass=_Members):
        @classmethod
        def from_name(cls, name: str) -> Any:
            """The member called ``name`` in any case: ``"exec"``, ``"EXEC"``."""
            try:
                return cls[name.upper()]
            except KeyError:
                choices = ", ".join(member.lower() for member in cls.__members__)
                raise ValueError(f"unknown event type {name!r} (choose from {choices})") from None

        @classmethod
        def from_names(cls, names: str) -> Any:
            """The mask of comma-separated names: ``"exec,exit"``; ``"all"`` for every event."""
            mask = cls(0)
            for name in filter(None, (part.strip() for part in names.split(","))):
                mask |= cls.from_name(name)
            if not mask:
                raise ValueError(f"no event type in {names!r}")
            return mask

    EventType = _EventBits(
        "EventType",
        {
            **{
                name.removeprefix("PROC_EVENT_"): value for name, value in layout.EVENT_BITS.items()
            },
            "ALL": layout.ALL_EVENTS,
        },
        module=__name__,
    )
    EventType.__doc__ = (
        "The kernel's event bits (``enum proc_cn_event``); also a subscription mask."
    )


class ProcEvent:
    """Base of every event. Subclasses are named tuples: immutable, hashable, cheap."""

    __slots__ = ()
    TYPE: ClassVar[EventType]
    NAME: ClassVar[str]  # short lower-case name: "fork", "exit", ...
    SPEC: ClassVar[layout.EventSpec]

    what: int
    cpu: int
    timestamp_ns: int
    if TYPE_CHECKING:  # the named tuple's, in each class built from the layer
        _fields: ClassVar[tuple[str, ...]]

        def _asdict(self) -> dict[str, Any]: ...
        def __iter__(self) -> Iterator[Any]: ...

    def to_dict(self) -> dict[str, Any]:
        """The event's fields as a plain dict (kernel names, plain values)."""
        return dict(self._asdict())

    def _details(self) -> str:
        fields = self.to_dict()
        for name in ("what", "cpu", "timestamp_ns"):
            fields.pop(name)
        return " ".join(f"{key}={value}" for key, value in fields.items())

    def __str__(self) -> str:
        seconds = self.timestamp_ns / 1e9
        return f"{self.NAME} {self._details()} cpu={self.cpu} t={seconds:.6f}"


class ExitStatus:
    """Decoding of an exit event's ``exit_code``, the wait(2) status."""

    __slots__ = ()
    NEEDS = ("exit_code",)
    exit_code: int

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


# Hand-written behaviour, by event name.
BEHAVIOUR: dict[str, type] = {"exit": ExitStatus}
DOCS: dict[str, str] = {
    "ack": "The kernel's answer to a LISTEN/IGNORE request (``err`` 0 or a positive errno).",
    "fork": "A new process or thread (``child_pid`` is the thread id, ``child_tgid`` the process).",
    "exec": "A successful execve.",
    "uid": "A change of credentials: the new real and effective uid.",
    "gid": "A change of credentials: the new real and effective gid.",
    "sid": "A successful setsid().",
    "ptrace": "A ptrace attach (tracer set) or detach (tracer 0).",
    "comm": "A new task name (prctl(PR_SET_NAME) or a write to /proc/PID/comm).",
    "coredump": "A process killed by a core-dumping signal (sent whether or not a core is "
    "written).",
    "exit": "A thread's exit. ``exit_code`` is the wait(2) status; ``exit_signal`` (u32) is the "
    "signal sent to the parent (17, SIGCHLD, for ordinary children; 0xFFFFFFFF for threads), "
    "not the signal that killed it (see :attr:`term_signal`).",
}


_HEAD_DOCS = {
    "what": "The event's bit (``EventType``)",
    "cpu": "The CPU the kernel sent it from",
    "timestamp_ns": "CLOCK_MONOTONIC nanoseconds",
}


def _document(fields: Any, docs: dict[str, str]) -> None:
    """Each named tuple field's doc (``help()`` shows it): its text and its item number."""
    for number, name in enumerate(fields._fields):
        getattr(fields, name).__doc__ = f"{docs[name]} (item {number})"


def _event_class(spec: layout.EventSpec) -> type[ProcEvent]:
    names = ["what", "cpu", "timestamp_ns", *(f.name for f in spec.fields)]
    # The event's own fields default to None, as when the kernel did not send them.
    defaults = (None,) * len(spec.fields)
    make: Any = namedtuple  # built from data: a type checker cannot follow it
    fields: type = make(f"_{spec.class_name}Fields", names, defaults=defaults)
    behaviour = BEHAVIOUR.get(spec.name)
    bases: tuple[type, ...] = (fields, ProcEvent)
    if behaviour is not None:
        missing = [name for name in getattr(behaviour, "NEEDS", ()) if name not in names]
        if missing:
            raise ImportError(
                f"{behaviour.__name__} needs {', '.join(missing)} of {spec.constant}'s event, "
                "which the generated layer lacks"
            )
        bases = (fields, behaviour, ProcEvent)
    c_type = f"struct {spec.member}" if spec.member != "ack" else "the ack struct"
    doc = DOCS.get(spec.name, f"The kernel's {spec.constant} event ({c_type}).")
    docs = dict(_HEAD_DOCS)
    for field in spec.fields:
        declared = f"str from char[{field.size}]" if field.is_text else f"ctypes.{field.ctype}"
        late = "; None from a kernel older than the headers" * (field.name in spec.late_fields)
        docs[field.name] = f"{declared} at byte {field.offset} of event_data.{spec.member}{late}"
    _document(fields, docs)
    made = OwnNames(
        spec.class_name,
        bases,
        {
            "__slots__": (),
            "__doc__": doc,
            "__module__": __name__,
            "TYPE": EventType(spec.what),
            "NAME": spec.name,
            "SPEC": spec,
        },
    )
    return cast("type[ProcEvent]", made)  # built from data, as the named tuple


EVENT_CLASSES: dict[int, type[ProcEvent]] = {
    what: _event_class(spec) for what, spec in layout.EVENTS.items()
}
"""``what`` -> the event class, for every event type the generated layer knows."""
_BY_CLASS_NAME = {cls.__name__: cls for cls in EVENT_CLASSES.values()}


class _UnknownFields(NamedTuple):
    what: int
    cpu: int
    timestamp_ns: int
    data: bytes


_document(_UnknownFields, {**_HEAD_DOCS, "data": "The event_data bytes the kernel sent"})


class UnknownEvent(_UnknownFields, ProcEvent, metaclass=OwnNames):  # type: ignore[misc]  # _fields: its four
    """An event type the generated layer does not know (a newer kernel): its raw
    ``event_data`` bytes, as many as the kernel sent."""

    __slots__ = ()
    TYPE = EventType(0)
    NAME = "unknown"


class _EventsLostFields(NamedTuple):
    lost: int | None
    cpu: int | None = None


_document(
    _EventsLostFields,
    {
        "lost": "How many events, or None: the kernel did not say",
        "cpu": "The CPU whose events were lost, or None: not known",
    },
)


class EventsLost(_EventsLostFields, metaclass=OwnNames):
    """Not a kernel event: where the stream lost events (yielded by the iterators).

    ``lost`` is exact when known (per-CPU sequence gap of ``cpu`` on an all-events
    subscription), None when the kernel only reported an overrun.
    """

    __slots__ = ()

    def __str__(self) -> str:
        if self.lost is None:
            count = "an unknown number of events"
        else:
            count = f"{self.lost} event{'' if self.lost == 1 else 's'}"
        where = "" if self.cpu is None else f" on cpu {self.cpu}"
        return f"lost {count}{where}"


if not TYPE_CHECKING:  # the type checker reads the generated stub instead

    def __getattr__(name: str) -> Any:
        """The event classes by name (``ForkEvent``), as the generated layer has them."""
        try:
            return _BY_CLASS_NAME[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_BY_CLASS_NAME])
