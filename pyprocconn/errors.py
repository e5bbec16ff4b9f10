"""The package's exceptions. System failures stay ``OSError`` (with advice in the message)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyprocconn._own_names import OwnNames
from pyprocconn.events import EventsLost

if TYPE_CHECKING:
    from pyprocconn.events import ProcEvent


class Error(Exception, metaclass=OwnNames):
    """Base class of every exception pyprocconn defines."""


class MalformedMessageError(Error, ValueError):
    """Bytes that are not a valid process-events message.

    ``offset`` is where in the buffer the bad message starts; ``events`` holds the events decoded
    from the same buffer before it, so raising loses nothing.
    """

    def __init__(self, message: str, offset: int = 0, events: list[ProcEvent] | None = None):
        super().__init__(message)
        self.offset = offset
        self.events: list[ProcEvent] = events if events is not None else []

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:  # pickle: every argument
        return type(self), (str(self), self.offset, self.events)


class OverrunError(Error):
    """The kernel dropped events because the receive buffer was full.

    ``lost`` is how many, when known (a per-CPU sequence gap on an all-events subscription);
    None when the kernel only said that it dropped some (ENOBUFS). ``cpu`` is the CPU whose
    events were lost when known. ``events``: from :func:`parse_events`, the events decoded
    before the ``NLMSG_OVERRUN`` (never lost). ``loss`` is the same loss as the iterators
    yield it (:class:`~pyprocconn.events.EventsLost`), to put in a stream of your own. The
    connector keeps working: receive again to go on.
    """

    def __init__(
        self,
        lost: int | None,
        message: str | None = None,
        cpu: int | None = None,
        events: list[ProcEvent] | None = None,
    ):
        if message is None:
            count = "an unknown number of" if lost is None else str(lost)
            where = "" if cpu is None else f" on cpu {cpu}"
            message = (
                f"the kernel dropped {count} process events{where} (receive buffer full); "
                "receive faster or pass a larger rcvbuf"
            )
        super().__init__(message)
        self.loss = EventsLost(lost, cpu)
        self.events: list[ProcEvent] = events if events is not None else []

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:  # pickle: every argument
        return type(self), (self.lost, str(self), self.cpu, self.events)

    @property
    def lost(self) -> int | None:
        return self.loss.lost

    @property
    def cpu(self) -> int | None:
        return self.loss.cpu


class ConnectorUnavailableError(Error, OSError):
    """The kernel never answered the subscription: no process events for this process.

    Raised after a bounded wait. Causes: running outside the initial user or pid namespace
    (a container), or a kernel built without CONFIG_PROC_EVENTS.
    """
