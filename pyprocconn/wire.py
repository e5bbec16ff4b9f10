"""For people with their own socket: the subscription request, and the seed crate's sizes and
offsets of the connector's messages, computed from the generated structs.

Nothing here is typed from the headers: every number comes from ``pyprocconn.kernel``.
"""

from __future__ import annotations

import ctypes
from typing import Final

from pyprocconn import layout
from pyprocconn.kernel import cn_proc, connector, netlink
from pyprocconn.layout import offsetof

# From <linux/socket.h> (``#define SOL_NETLINK 270``), a header this project does not vendor:
# the socket level of netlink options such as NETLINK_NO_ENOBUFS.
SOL_NETLINK: Final = 270


SIZE_NLMSGHDR: Final = layout.NLMSGHDR_SIZE
SIZE_CN_MSG: Final = layout.CN_MSG_SIZE
SIZE_PROC_EVENT: Final = ctypes.sizeof(cn_proc.proc_event)
# Where event_data starts inside proc_event (after what, cpu and timestamp_ns).
PROC_EVENT_HEADER_SIZE: Final = layout.EVENT_HEAD_SIZE


def subscription_request(op: int, mask: int | None = None, token: int = 0) -> bytes:
    """A LISTEN/IGNORE request to send to the kernel (netlink port 0) from a socket bound to
    ``CN_IDX_PROC``: ``{op, mask}`` (``struct proc_input``, kernels 6.6+, which filter events by
    ``mask``), or just ``op`` when ``mask`` is None (all events; what kernels before 6.6 need).

    ``token`` goes into ``cn_msg.seq`` and ``cn_msg.ack``; the kernel's ack (a
    ``PROC_EVENT_NONE`` event) carries ``cn_msg.ack == token + 1``. Headers without
    ``proc_input`` (before 6.6) cannot build the ``{op, mask}`` form.
    """
    op_bytes = bytes(ctypes.c_uint32(op))  # enum proc_cn_mcast_op: 4 bytes, as every enum
    if mask is None:
        request = op_bytes
    else:
        proc_input = getattr(cn_proc, "proc_input", None)
        if proc_input is None:
            raise ValueError("these headers have no struct proc_input: no per-socket mask")
        request = bytes(proc_input(mcast_op=op, event_type=mask))
    message = connector.cn_msg(
        id=connector.cb_id(idx=connector.CN_IDX_PROC, val=connector.CN_VAL_PROC),
        seq=token,
        ack=token,
        len=len(request),
    )
    total = SIZE_NLMSGHDR + SIZE_CN_MSG + len(request)
    header = netlink.nlmsghdr(nlmsg_len=total, nlmsg_type=netlink.NLMSG_DONE, nlmsg_pid=0)
    return bytes(header) + bytes(message) + request


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


nlmsg_align = layout.nlmsg_align


def nlmsg_hdrlen() -> int:
    """``NLMSG_HDRLEN``: the aligned size of ``struct nlmsghdr`` (the generated constant)."""
    return int(netlink.NLMSG_HDRLEN)


def nlmsg_length(payload: int) -> int:
    """``NLMSG_LENGTH``: ``nlmsg_len`` of a message carrying ``payload`` bytes."""
    return payload + nlmsg_hdrlen()


# The seed crate's names, forwarded by ``pyprocconn`` (with the generated modules' ``__all__``).
__all__ = [
    "COMM_DATA",
    "COMM_PID",
    "COMM_TGID",
    "COREDUMP_PARENT_PID",
    "COREDUMP_PARENT_TGID",
    "COREDUMP_PID",
    "COREDUMP_TGID",
    "EXEC_PID",
    "EXEC_TGID",
    "EXIT_CODE",
    "EXIT_PARENT_PID",
    "EXIT_PARENT_TGID",
    "EXIT_PID",
    "EXIT_SIGNAL",
    "EXIT_TGID",
    "FORK_CHILD_PID",
    "FORK_CHILD_TGID",
    "FORK_PARENT_PID",
    "FORK_PARENT_TGID",
    "ID_EUID_EGID",
    "ID_PID",
    "ID_RUID_RGID",
    "ID_TGID",
    "PROC_EVENT_HEADER_SIZE",
    "PTRACE_PID",
    "PTRACE_TGID",
    "PTRACE_TRACER_PID",
    "PTRACE_TRACER_TGID",
    "SID_PID",
    "SID_TGID",
    "SIZE_CN_MSG",
    "SIZE_COMM_EVENT",
    "SIZE_COREDUMP_EVENT",
    "SIZE_EXEC_EVENT",
    "SIZE_EXIT_EVENT",
    "SIZE_FORK_EVENT",
    "SIZE_ID_EVENT",
    "SIZE_NLMSGHDR",
    "SIZE_PROC_EVENT",
    "SIZE_PTRACE_EVENT",
    "SIZE_SID_EVENT",
    "SOL_NETLINK",
    "nlmsg_align",
    "nlmsg_hdrlen",
    "nlmsg_length",
    "subscription_request",
]
