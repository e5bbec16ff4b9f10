"""Every way a caller can receive from a ``ProcConnector``, driven the same way by one function,
so each guarantee is checked on each path (a guarantee kept on one path only is not kept)."""

from __future__ import annotations

import asyncio
import ctypes
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyprocconn as pc
from pyprocconn.check import listener_registered

Item = pc.ProcEvent | pc.EventsLost
# name -> does it block without a timeout (then events must keep coming for it to return)
PATHS: dict[str, bool] = {
    "recv": True,
    "recv_buf": True,
    "recv_timeout": False,
    "recv_timeout_buf": False,
    "recv_batch": False,
    "iter": True,
    "aiter": True,
}
BUFFER_PATHS = [name for name in PATHS if name.endswith("_buf")]


def _run_true() -> None:
    subprocess.run(["/bin/true"], check=True)


@contextmanager
def ticking(interval: float = 0.05, trigger: Callable[[], object] = _run_true) -> Iterator[None]:
    """Run ``trigger`` (``/bin/true``) every ``interval`` seconds meanwhile, so a blocking
    receive always has an event to return and a bounded loop around it stays bounded."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            trigger()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def gather(
    conn: pc.ProcConnector,
    path: str,
    done: Callable[[list[Item]], bool],
    timeout: float = 10.0,
    buf: bytearray | None = None,
) -> list[Item]:
    """Receive through ``path`` until ``done(items)`` or ``timeout`` seconds pass.

    Loss comes back in the list as :class:`EventsLost` whichever way the path reports it
    (``OverrunError`` from the ``recv*`` methods, an item from the iterators). Blocking paths
    return only when something arrives: run them inside :func:`ticking`.
    """
    items: list[Item] = []
    deadline = time.monotonic() + timeout
    if path == "aiter":
        return asyncio.run(asyncio.wait_for(_gather_async(conn, done, deadline), timeout + 5))
    iterator = iter(conn) if path == "iter" else None
    buffer = bytearray(512) if buf is None else buf
    while not done(items) and time.monotonic() < deadline:
        remaining = max(0.0, min(0.5, deadline - time.monotonic()))
        try:
            if iterator is not None:
                items.append(next(iterator))
            else:
                received = _receive_once(conn, path, buffer, remaining)
                # These paths report loss by raising, never by handing out a marker.
                assert not any(type(e) is pc.EventsLost for e in received), (path, received)
                items.extend(received)
        except pc.OverrunError as error:
            items.append(pc.EventsLost(error.lost, error.cpu))
    return items


def _receive_once(
    conn: pc.ProcConnector, path: str, buffer: bytearray, timeout: float
) -> list[Item]:
    if path == "recv":
        return [conn.recv()]
    if path == "recv_buf":
        return [conn.recv(buffer)]
    if path in ("recv_timeout", "recv_timeout_buf"):
        chosen = buffer if path == "recv_timeout_buf" else None
        event = conn.recv_timeout(buf=chosen, timeout=timeout)
        return [] if event is None else [event]
    if path == "recv_batch":
        return list(conn.recv_batch(timeout))
    raise ValueError(f"unknown receive path {path!r}")


async def _gather_async(
    conn: pc.ProcConnector, done: Callable[[list[Item]], bool], deadline: float
) -> list[Item]:
    items: list[Item] = []
    if done(items):
        return items
    async for item in conn:
        items.append(item)
        if done(items) or time.monotonic() >= deadline:
            break
    return items


def receive(conn: pc.ProcConnector, path: str, buf: bytearray | None = None) -> Any:
    """One call of a path that takes a timeout (for deadline checks): its result."""
    if path == "recv_timeout":
        return conn.recv_timeout(timeout=1.0)
    if path == "recv_timeout_buf":
        return conn.recv_timeout(buf=bytearray(512) if buf is None else buf, timeout=1.0)
    if path == "recv_batch":
        return conn.recv_batch(1.0)
    raise ValueError(f"{path} has no timeout")


def forger() -> socket.socket:
    """A second, real netlink socket (root) to send forged datagrams from."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, pc.NETLINK_CONNECTOR)
    sock.bind((0, 0))
    return sock


def forged(what: int, fill: Callable[[Any], None], ack: int = 0) -> bytes:
    """A well-formed single-message datagram as only the kernel should send: ``what`` with its
    ``event_data`` set by ``fill``, and ``cn_msg.ack`` (an ack's is the request's token + 1)."""
    kernel = pc.kernel
    event = kernel.cn_proc.proc_event(what=what)
    fill(event.event_data)
    body = kernel.connector.cn_msg(
        id=kernel.connector.cb_id(idx=pc.CN_IDX_PROC, val=pc.CN_VAL_PROC),
        ack=ack,
        len=ctypes.sizeof(event),
    )
    header = kernel.netlink.nlmsghdr(
        nlmsg_len=pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG + ctypes.sizeof(event),
        nlmsg_type=pc.NLMSG_DONE,
    )
    return bytes(header) + bytes(body) + bytes(event)


def forged_exec(pid: int) -> bytes:
    def fill(data: Any) -> None:
        data.exec.process_pid = data.exec.process_tgid = pid

    return forged(pc.PROC_EVENT_EXEC, fill)


def forged_ack(token: int, err: int) -> bytes:
    """The kernel's answer to a request whose ``cn_msg.ack`` was ``token``."""

    def fill(data: Any) -> None:
        data.ack.err = err

    return forged(pc.PROC_EVENT_NONE, fill, ack=(token + 1) & 0xFFFFFFFF)


def passive_member_sees_events() -> bool:
    """Whether the kernel's global listener count is above zero."""
    return listener_registered(0.5)
