"""What the friendly layer needs to know of the wire, computed from the generated structs.

Nothing here is typed from the headers: the message head, the event types, each event's fields
(names, order, C types, offsets) all come from ``pyprocconn.kernel``, so a layer regenerated
from other headers gives other events, fields and formats.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Final

from pyprocconn.kernel import cn_proc, connector, netlink

Record = type[ctypes.Structure] | type[ctypes.Union]


def offsetof(record: Record, field: str) -> int:
    """Byte offset of ``field`` in ``record``, like C's ``offsetof``."""
    return int(getattr(record, field).offset)


def struct_code(ctype: Any) -> str:
    """The :mod:`struct` code of a C integer type (standard sizes, for use with ``=``)."""
    code = getattr(ctype, "_type_", None)
    if not isinstance(code, str) or code not in "bBhHiIlLqQ":
        raise TypeError(f"no struct code for {ctype!r}")
    standard = {1: "b", 2: "h", 4: "i", 8: "q"}[ctypes.sizeof(ctype)]
    return standard.upper() if code.isupper() else standard


def struct_format(record: Record, until: str | None = None) -> str:
    """A :mod:`struct` format (native order, no implicit padding) with the record's layout.

    A union reads as its first member, which must span the whole union; a char array reads as
    bytes; a flexible array reads as nothing. ``until`` stops before that field.
    """
    if issubclass(record, ctypes.Union):
        first = record._fields_[0][1]
        if ctypes.sizeof(first) != ctypes.sizeof(record):
            raise TypeError(f"{record.__name__}: first member does not span the union")
        return _format_of(first)
    parts, position = [], 0
    for name, ctype, *_ in record._fields_:
        offset = offsetof(record, name)
        parts.append("x" * (offset - position))
        if name == until:
            return "".join(parts)
        parts.append(_format_of(ctype))
        position = offset + ctypes.sizeof(ctype)
    parts.append("x" * (ctypes.sizeof(record) - position))
    return "".join(parts)


def _format_of(ctype: Any) -> str:
    if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        return struct_format(ctype)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        element: Any = ctype._type_
        length: int = getattr(ctype, "_length_")  # noqa: B009 - typeshed types it as a method
        return f"{length}s" if element is ctypes.c_char else _format_of(element) * length
    return struct_code(ctype)


def _field_names(record: Record) -> list[str]:
    return [name for name, *_ in record._fields_]


# -- the message head: nlmsghdr + cn_msg + proc_event up to event_data ------------------------
NLMSGHDR_SIZE: Final = ctypes.sizeof(netlink.nlmsghdr)
CN_MSG_SIZE: Final = ctypes.sizeof(connector.cn_msg)
CN_MSG_OFFSET: Final = NLMSGHDR_SIZE
EVENT_OFFSET: Final = CN_MSG_OFFSET + CN_MSG_SIZE  # only 4-aligned
EVENT_HEAD_SIZE: Final = offsetof(cn_proc.proc_event, "event_data")
DATA_OFFSET: Final = EVENT_OFFSET + EVENT_HEAD_SIZE
# The longest message the connector sends: a head and at most CONNECTOR_MAX_MSG_SIZE bytes.
LARGEST_MESSAGE: Final = EVENT_OFFSET + connector.CONNECTOR_MAX_MSG_SIZE
NLMSG_ALIGN_MASK: Final = netlink.NLMSG_ALIGNTO - 1


def nlmsg_align(length: int) -> int:
    """``NLMSG_ALIGN``: ``length`` rounded up to the netlink alignment (where the next message
    of a datagram starts)."""
    return (length + NLMSG_ALIGN_MASK) & ~NLMSG_ALIGN_MASK


HEAD_FORMAT: Final = (
    "="
    + struct_format(netlink.nlmsghdr)
    + struct_format(connector.cn_msg)
    + struct_format(cn_proc.proc_event, until="event_data")
)
# The unpacked head's values, in order: every field named as in the headers.
HEAD_NAMES: Final = (
    _field_names(netlink.nlmsghdr)
    + _field_names(connector.cb_id)
    + [name for name in _field_names(connector.cn_msg) if name not in ("id", "data")]
    + _field_names(cn_proc.proc_event)[:-1]
)
NLMSGHDR_FORMAT: Final = "=" + struct_format(netlink.nlmsghdr)
NLMSGERR_ERROR_FORMAT: Final = "=" + struct_format(netlink.nlmsgerr, until="msg")


def head_index(name: str) -> int:
    """Where the head field ``name`` sits among the unpacked head's values."""
    return HEAD_NAMES.index(name)


# -- the events --------------------------------------------------------------------------------
EVENT_DATA: Final[Record] = cn_proc.proc_event._fields_[-1][1]
_MEMBERS: Final[dict[str, Record]] = dict(EVENT_DATA._fields_)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Field:
    """One field of an event, as the event class shows it."""

    name: str
    offset: int  # in event_data
    size: int
    code: str  # struct code: an integer code, or "16s" for a char array
    ctype: str  # the C type's ctypes name, for documentation

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def is_text(self) -> bool:
        return self.code.endswith("s")


@dataclass(frozen=True)
class EventSpec:
    """An event type: its bit, its short name, the union member it fills, its fields."""

    what: int
    name: str  # "fork", "exit", "ack" (PROC_EVENT_NONE is the kernel's answer to a request)
    constant: str  # "PROC_EVENT_FORK"
    member: str  # "fork"
    fields: tuple[Field, ...]
    # Bytes of event_data every kernel with this event sends: the kernel sends its whole union,
    # so what lies within another member's size came with it (if that member had its size
    # already: the usual growth). A field past that may be an addition an older kernel lacks,
    # and comes as None there (the stubs type it so); one within it comes as 0 (zero-filled).
    always_sent: int

    @property
    def late_fields(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.end > self.always_sent)

    @property
    def class_name(self) -> str:
        return "".join(part.title() for part in self.name.split("_")) + "Event"


def _flatten(record: Record, base: int, event: str, prefix: str = "") -> list[Field]:
    """The record's leaf fields. A nested union shows the member named for the event (the
    kernel's ``r.ruid`` / ``r.rgid`` for uid / gid events), else its first; a nested struct's
    fields are prefixed with its name; an integer array becomes one field per element."""
    fields: list[Field] = []
    for name, ctype, *_ in record._fields_:
        offset = base + offsetof(record, name)
        if isinstance(ctype, type) and issubclass(ctype, ctypes.Union):
            members = _field_names(ctype)
            chosen = next((m for m in members if m.endswith(event)), members[0])
            member_type = dict(ctype._fields_)[chosen]  # type: ignore[arg-type]
            inner = getattr(ctype, chosen).offset
            if isinstance(member_type, type) and issubclass(member_type, ctypes.Structure):
                fields += _flatten(member_type, offset + inner, event, f"{prefix}{chosen}_")
            else:
                fields.append(_leaf(f"{prefix}{chosen}", member_type, offset + inner))
        elif isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
            fields += _flatten(ctype, offset, event, f"{prefix}{name}_")
        elif (
            isinstance(ctype, type)
            and issubclass(ctype, ctypes.Array)
            and getattr(ctype, "_type_") is not ctypes.c_char  # noqa: B009
        ):
            element: Any = ctype._type_
            width = ctypes.sizeof(element)
            length: int = getattr(ctype, "_length_")  # noqa: B009
            fields += [
                _leaf(f"{prefix}{name}_{i}", element, offset + i * width) for i in range(length)
            ]
        else:
            fields.append(_leaf(prefix + name, ctype, offset))
    return fields


def _leaf(name: str, ctype: Any, offset: int) -> Field:
    return Field(name, offset, ctypes.sizeof(ctype), _format_of(ctype), ctype.__name__)


def _event_constants() -> dict[str, int]:
    """Every ``PROC_EVENT_*`` bit the generated layer defines (the mask ``PROC_EVENT_ALL`` not)."""
    return {
        name: value
        for name, value in vars(cn_proc).items()
        if name.startswith("PROC_EVENT_") and name != "PROC_EVENT_ALL" and isinstance(value, int)
    }


EVENT_BITS: Final = _event_constants()
# The mask of every event; headers before 6.6 do not define it.
ALL_EVENTS: Final[int] = getattr(cn_proc, "PROC_EVENT_ALL", 0) or sum(
    value for value in EVENT_BITS.values()
)


def _event_specs() -> dict[int, EventSpec]:
    names = {value: name for name, value in EVENT_BITS.items()}
    specs = {}
    for what, member in cn_proc.EVENT_DATA_MEMBERS.items():
        constant = names[what]
        short = "ack" if what == 0 else constant.removeprefix("PROC_EVENT_").lower()
        fields = tuple(_flatten(_MEMBERS[member], 0, short))
        others = [ctypes.sizeof(record) for name, record in _MEMBERS.items() if name != member]
        specs[what] = EventSpec(what, short, constant, member, fields, max(others, default=0))
    return specs


EVENTS: Final = _event_specs()
# What an event filter needs: the exit bit, and the filter-only bit for non-zero exits (0 when
# the headers lack it: then the kernel cannot filter either).
EXIT_BIT: Final = EVENT_BITS.get("PROC_EVENT_EXIT", 0)
NONZERO_EXIT_BIT: Final = EVENT_BITS.get("PROC_EVENT_NONZERO_EXIT", 0)
# The 8-byte {op, mask} request (kernel-side filtering, 6.6+) exists only with proc_input.
HAS_EVENT_FILTER: Final = hasattr(cn_proc, "proc_input")
