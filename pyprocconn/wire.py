"""Sizes and offsets of the connector's messages, computed from the generated structs.

Nothing here is typed from the headers: every number comes from ``pyprocconn.kernel``.
"""

from __future__ import annotations

import ctypes
from typing import Any, Final

from pyprocconn.kernel import cn_proc, connector, netlink

# From <linux/socket.h> (``#define SOL_NETLINK 270``), a header this project does not vendor:
# the socket level of netlink options such as NETLINK_NO_ENOBUFS.
SOL_NETLINK: Final = 270


def struct_format(
    record: type[ctypes.Structure] | type[ctypes.Union], until: str | None = None
) -> str:
    """A :mod:`struct` format (native order, no implicit padding) with the record's layout.

    A union reads as its first member, which must span the whole union; a char array reads as
    bytes; a flexible array reads as nothing. ``until`` stops before that field.
    """
    if issubclass(record, ctypes.Union):
        first = record._fields_[0][1]
        if ctypes.sizeof(first) != ctypes.sizeof(record):
            raise TypeError(f"{record.__name__}: first member does not span the union")
        return struct_format_of(first)
    parts, position = [], 0
    for name, ctype, *_ in record._fields_:
        offset = offsetof(record, name)
        parts.append("x" * (offset - position))
        if name == until:
            return "".join(parts)
        parts.append(struct_format_of(ctype))
        position = offset + ctypes.sizeof(ctype)
    parts.append("x" * (ctypes.sizeof(record) - position))
    return "".join(parts)


def struct_format_of(ctype: Any) -> str:
    if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        return struct_format(ctype)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        element: Any = ctype._type_
        if element is ctypes.c_char:
            return f"{ctype._length_}s"
        length: int = getattr(ctype, "_length_")  # noqa: B009 - typeshed types it as a method
        return struct_format_of(element) * length
    code = ctype._type_
    if not isinstance(code, str) or code not in "bBhHiIlLqQ":
        raise TypeError(f"no struct format for {ctype!r}")
    # Standard-size codes, so formats can be used with "=" (no implicit alignment).
    standard = {1: "b", 2: "h", 4: "i", 8: "q"}[ctypes.sizeof(ctype)]
    return standard.upper() if code.isupper() else standard


def offsetof(record: type[ctypes.Structure] | type[ctypes.Union], field: str) -> int:
    """Byte offset of ``field`` in ``record``, like C's ``offsetof``."""
    return int(getattr(record, field).offset)


SIZE_NLMSGHDR: Final = ctypes.sizeof(netlink.nlmsghdr)
SIZE_CN_MSG: Final = ctypes.sizeof(connector.cn_msg)
SIZE_PROC_EVENT: Final = ctypes.sizeof(cn_proc.proc_event)
# Where event_data starts inside proc_event (after what, cpu and timestamp_ns).
PROC_EVENT_HEADER_SIZE: Final = offsetof(cn_proc.proc_event, "event_data")

SIZE_FORK_EVENT: Final = ctypes.sizeof(cn_proc.fork_proc_event)
SIZE_EXEC_EVENT: Final = ctypes.sizeof(cn_proc.exec_proc_event)
SIZE_ID_EVENT: Final = ctypes.sizeof(cn_proc.id_proc_event)
SIZE_SID_EVENT: Final = ctypes.sizeof(cn_proc.sid_proc_event)
SIZE_PTRACE_EVENT: Final = ctypes.sizeof(cn_proc.ptrace_proc_event)
SIZE_COMM_EVENT: Final = ctypes.sizeof(cn_proc.comm_proc_event)
SIZE_COREDUMP_EVENT: Final = ctypes.sizeof(cn_proc.coredump_proc_event)
SIZE_EXIT_EVENT: Final = ctypes.sizeof(cn_proc.exit_proc_event)

# Byte offsets of each event's fields inside event_data.
FORK_PARENT_PID: Final = offsetof(cn_proc.fork_proc_event, "parent_pid")
FORK_PARENT_TGID: Final = offsetof(cn_proc.fork_proc_event, "parent_tgid")
FORK_CHILD_PID: Final = offsetof(cn_proc.fork_proc_event, "child_pid")
FORK_CHILD_TGID: Final = offsetof(cn_proc.fork_proc_event, "child_tgid")
EXEC_PID: Final = offsetof(cn_proc.exec_proc_event, "process_pid")
EXEC_TGID: Final = offsetof(cn_proc.exec_proc_event, "process_tgid")
ID_PID: Final = offsetof(cn_proc.id_proc_event, "process_pid")
ID_TGID: Final = offsetof(cn_proc.id_proc_event, "process_tgid")
ID_RUID_RGID: Final = offsetof(cn_proc.id_proc_event, "r")
ID_EUID_EGID: Final = offsetof(cn_proc.id_proc_event, "e")
SID_PID: Final = offsetof(cn_proc.sid_proc_event, "process_pid")
SID_TGID: Final = offsetof(cn_proc.sid_proc_event, "process_tgid")
PTRACE_PID: Final = offsetof(cn_proc.ptrace_proc_event, "process_pid")
PTRACE_TGID: Final = offsetof(cn_proc.ptrace_proc_event, "process_tgid")
PTRACE_TRACER_PID: Final = offsetof(cn_proc.ptrace_proc_event, "tracer_pid")
PTRACE_TRACER_TGID: Final = offsetof(cn_proc.ptrace_proc_event, "tracer_tgid")
COMM_PID: Final = offsetof(cn_proc.comm_proc_event, "process_pid")
COMM_TGID: Final = offsetof(cn_proc.comm_proc_event, "process_tgid")
COMM_DATA: Final = offsetof(cn_proc.comm_proc_event, "comm")
COREDUMP_PID: Final = offsetof(cn_proc.coredump_proc_event, "process_pid")
COREDUMP_TGID: Final = offsetof(cn_proc.coredump_proc_event, "process_tgid")
COREDUMP_PARENT_PID: Final = offsetof(cn_proc.coredump_proc_event, "parent_pid")
COREDUMP_PARENT_TGID: Final = offsetof(cn_proc.coredump_proc_event, "parent_tgid")
EXIT_PID: Final = offsetof(cn_proc.exit_proc_event, "process_pid")
EXIT_TGID: Final = offsetof(cn_proc.exit_proc_event, "process_tgid")
EXIT_CODE: Final = offsetof(cn_proc.exit_proc_event, "exit_code")
EXIT_SIGNAL: Final = offsetof(cn_proc.exit_proc_event, "exit_signal")
EXIT_PARENT_PID: Final = offsetof(cn_proc.exit_proc_event, "parent_pid")
EXIT_PARENT_TGID: Final = offsetof(cn_proc.exit_proc_event, "parent_tgid")


def nlmsg_align(length: int) -> int:
    """``NLMSG_ALIGN``: ``length`` rounded up to the netlink alignment."""
    return (length + netlink.NLMSG_ALIGNTO - 1) & ~(netlink.NLMSG_ALIGNTO - 1)


def nlmsg_hdrlen() -> int:
    """``NLMSG_HDRLEN``: the aligned size of ``struct nlmsghdr``."""
    return nlmsg_align(SIZE_NLMSGHDR)


def nlmsg_length(payload: int) -> int:
    """``NLMSG_LENGTH``: ``nlmsg_len`` of a message carrying ``payload`` bytes."""
    return payload + nlmsg_hdrlen()
