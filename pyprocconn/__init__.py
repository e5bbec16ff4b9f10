"""pyprocconn: the Linux process events connector, with the kernel's exact layouts.

Names resolve lazily (PEP 562), so ``import pyprocconn.kernel.cn_proc`` loads only the
generated layer, and ``import pyprocconn`` loads a module only when one of its names is used.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The friendly API: name -> module. This is what __all__, dir() and the docs show.
_API = {
    "ProcConnector": "connector",
    "Stats": "connector",
    "DEFAULT_ACK_TIMEOUT": "connector",
    "DEFAULT_LINGER": "connector",
    "DEFAULT_RCVBUF": "connector",
    "Error": "errors",
    "ConnectorUnavailableError": "errors",
    "MalformedMessageError": "errors",
    "OverrunError": "errors",
    "EventType": "events",
    "ProcEvent": "events",
    "UnknownEvent": "events",
    "EventsLost": "events",
    "EVENT_CLASSES": "events",
    "ExitStatus": "events",
    "parse_events": "parse",
    "NetlinkMessage": "parse",
    "NetlinkMessageIter": "parse",
    "subscription_request": "wire",
    "wait_for_exits": "wait",
    "Ended": "wait",
    # The process table: who ran what, as the command shows it (events and /proc together).
    "ProcessTable": "processes",
    "Process": "records",
    "Seen": "records",
    "Exited": "records",
    "Resynced": "records",
    "Record": "records",
}
# The seed crate's names (C constants, sizes, byte offsets), still importable from here so
# existing code keeps working: each module's ``__all__`` (the generated ones list what they
# define). ``_seed_names.pyi`` (generated) types them.
_SEED_MODULES = ("wire", "kernel.cn_proc", "kernel.connector", "kernel.netlink")

if TYPE_CHECKING:
    from pyprocconn import kernel as kernel
    from pyprocconn._event_types import *  # noqa: F403 - generated: the event classes, typed
    from pyprocconn._event_types import EventType as EventType
    from pyprocconn._seed_names import *  # noqa: F403 - generated: the seed names
    from pyprocconn.connector import DEFAULT_ACK_TIMEOUT as DEFAULT_ACK_TIMEOUT
    from pyprocconn.connector import DEFAULT_LINGER as DEFAULT_LINGER
    from pyprocconn.connector import DEFAULT_RCVBUF as DEFAULT_RCVBUF
    from pyprocconn.connector import ProcConnector as ProcConnector
    from pyprocconn.connector import Stats as Stats
    from pyprocconn.errors import ConnectorUnavailableError as ConnectorUnavailableError
    from pyprocconn.errors import Error as Error
    from pyprocconn.errors import MalformedMessageError as MalformedMessageError
    from pyprocconn.errors import OverrunError as OverrunError
    from pyprocconn.events import EVENT_CLASSES as EVENT_CLASSES
    from pyprocconn.events import EventsLost as EventsLost
    from pyprocconn.events import ExitStatus as ExitStatus
    from pyprocconn.events import ProcEvent as ProcEvent
    from pyprocconn.events import UnknownEvent as UnknownEvent
    from pyprocconn.parse import NetlinkMessage as NetlinkMessage
    from pyprocconn.parse import NetlinkMessageIter as NetlinkMessageIter
    from pyprocconn.parse import parse_events as parse_events
    from pyprocconn.processes import ProcessTable as ProcessTable
    from pyprocconn.records import Exited as Exited
    from pyprocconn.records import Process as Process
    from pyprocconn.records import Record as Record
    from pyprocconn.records import Resynced as Resynced
    from pyprocconn.records import Seen as Seen
    from pyprocconn.wait import Ended as Ended
    from pyprocconn.wait import wait_for_exits as wait_for_exits
    from pyprocconn.wire import subscription_request as subscription_request


def _event_class_names() -> list[str]:
    from pyprocconn.events import EVENT_CLASSES

    return [cls.__name__ for cls in EVENT_CLASSES.values()]


def _forwarded() -> dict[str, str]:
    """Seed name -> the module (under pyprocconn) it comes from; the first module wins."""
    names: dict[str, str] = {}
    for seed in _SEED_MODULES:
        for name in _import_module(f"pyprocconn.{seed}").__all__:
            if not name.startswith("_") and name not in _API:
                names.setdefault(name, seed)
    return names


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        if name == "__all__":
            return _public_names()
        module = _API.get(name)
        if module is None and name.endswith("Event") and name in _event_class_names():
            module = "events"
        if module is None:
            module = _forwarded().get(name)
        if module is None:
            raise AttributeError(f"module 'pyprocconn' has no attribute {name!r}")
        value = getattr(_import_module(f"pyprocconn.{module}"), name)
        globals()[name] = value  # resolved once
        return value


def __dir__() -> list[str]:
    return sorted({*_public_names(), "__version__", "kernel"})


def _public_names() -> list[str]:
    """The friendly API and the event classes the generated layer gives (``__all__``)."""
    return [*_API, *_event_class_names()]
