"""The generated structs on their own, as plain ctypes code would use them, on real datagrams."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import time

import pytest

from pyprocconn.kernel import cn_proc, connector, netlink

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="subscribing needs root on old kernels")


def _control(op: int) -> bytes:
    payload = bytes(cn_proc.proc_input(mcast_op=op, event_type=cn_proc.PROC_EVENT_ALL))
    body = connector.cn_msg(
        id=connector.cb_id(idx=connector.CN_IDX_PROC, val=connector.CN_VAL_PROC),
        seq=1,
        ack=0,
        len=len(payload),
    )
    size = ctypes.sizeof(netlink.nlmsghdr) + ctypes.sizeof(connector.cn_msg) + len(payload)
    header = netlink.nlmsghdr(nlmsg_len=size, nlmsg_type=netlink.NLMSG_DONE, nlmsg_pid=0)
    return bytes(header) + bytes(body) + payload


def test_from_buffer_reads_fork_exec_exit_of_a_child() -> None:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink.NETLINK_CONNECTOR)
    try:
        # Room for what other programs make meanwhile (the default holds ~256 events).
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
        sock.bind((0, connector.CN_IDX_PROC))
        sock.sendto(_control(cn_proc.PROC_CN_MCAST_LISTEN), (0, 0))
        child = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
        child.wait()
        seen: dict[str, tuple[int, ...]] = {}
        buffer = bytearray(4096)
        event_offset = ctypes.sizeof(netlink.nlmsghdr) + ctypes.sizeof(connector.cn_msg)
        deadline = time.monotonic() + 10
        sock.settimeout(1.0)
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                continue
            header = netlink.nlmsghdr.from_buffer(buffer)
            message = connector.cn_msg.from_buffer(buffer, ctypes.sizeof(netlink.nlmsghdr))
            event = cn_proc.proc_event.from_buffer(buffer, event_offset)
            assert header.nlmsg_len == size == event_offset + message.len
            assert (message.id.idx, message.id.val) == (
                connector.CN_IDX_PROC,
                connector.CN_VAL_PROC,
            )
            data = event.event_data
            if event.what == cn_proc.PROC_EVENT_FORK and data.fork.child_pid == child.pid:
                seen["fork"] = (data.fork.parent_tgid, data.fork.child_tgid)
            elif event.what == cn_proc.PROC_EVENT_EXEC and data.exec.process_pid == child.pid:
                seen["exec"] = (data.exec.process_tgid,)
            elif event.what == cn_proc.PROC_EVENT_EXIT and data.exit.process_pid == child.pid:
                seen["exit"] = (data.exit.exit_code, data.exit.exit_signal, data.exit.parent_pid)
        assert seen["fork"] == (os.getpid(), child.pid)
        assert seen["exec"] == (child.pid,)
        assert seen["exit"] == (3 << 8, 17, os.getpid())  # wait status of exit(3); SIGCHLD
    finally:
        sock.sendto(_control(cn_proc.PROC_CN_MCAST_IGNORE), (0, 0))
        sock.close()
