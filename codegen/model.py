"""The typed model between the C parser and the templates: plain data, no parsing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scalar:
    """A C arithmetic type and the ctypes type that has its layout."""

    c_spelling: str  # as written in the header: "__u32", "enum proc_cn_event", "char"
    ctypes_name: str  # attribute of the ctypes module: "c_uint32"
    annotation: str  # what reading the field gives in Python: "int" or "bytes"


@dataclass(frozen=True)
class RecordRef:
    """A field whose type is a struct or union of the same module."""

    name: str  # the Python class name
    c_spelling: str  # "struct fork_proc_event", or "anonymous union"


@dataclass(frozen=True)
class Array:
    element: CType
    length: int  # 0 for a flexible array member (``data[]`` / ``data[0]``)


CType = Scalar | RecordRef | Array


@dataclass(frozen=True)
class Field:
    name: str
    ctype: CType
    line: int
    comment: str | None = None
    align: int | None = None  # from __attribute__((aligned(N)))


@dataclass
class Record:
    """A struct or union. Anonymous ones are named after the path that holds them."""

    name: str  # Python class name: the C tag, or "<outer>_<field>" when anonymous
    kind: str  # "struct" or "union"
    line: int
    anonymous: bool
    c_name: str  # "struct fork_proc_event", "the anonymous union proc_event.event_data"
    fields: list[Field] = field(default_factory=list)
    comment: str | None = None


@dataclass(frozen=True)
class Constant:
    name: str
    value: int
    line: int
    hex: bool  # written in hex in the header, so rendered in hex
    comment: str | None = None  # on the same line
    leading: str | None = None  # the comment block right above
    expression: str | None = None  # the C expression when it is not a plain literal


@dataclass
class EnumBlock:
    """The constants of one enum, in declaration order."""

    name: str | None  # None for ``enum { ... }``
    line: int
    constants: list[Constant] = field(default_factory=list)
    comment: str | None = None


@dataclass(frozen=True)
class Skipped:
    """An object-like #define that is not an integer constant expression."""

    name: str
    line: int
    reason: str


@dataclass(frozen=True)
class AlignmentGuard:
    """``__attribute__((aligned(N)))`` on a field: the generated module checks it at import."""

    record: str
    field: str
    ctypes_name: str
    align: int


@dataclass(frozen=True)
class EventMember:
    """One row of ``EVENT_DATA_MEMBERS``: an event type and the union member it fills."""

    constant: str  # "PROC_EVENT_FORK"
    member: str  # "fork"


@dataclass
class HeaderModule:
    header: str  # file name: "cn_proc.h"
    module: str  # Python module name: "cn_proc"
    sha256: str
    comment: str | None
    constants: list[EnumBlock | Constant] = field(default_factory=list)  # source order
    records: list[Record] = field(default_factory=list)  # definition order: inner first
    skipped: list[Skipped] = field(default_factory=list)
    guards: list[AlignmentGuard] = field(default_factory=list)
    # Event type -> proc_event.event_data member, in enum order; empty unless the module has
    # both the event enum and the union (cn_proc.h).
    event_members: list[EventMember] = field(default_factory=list)
