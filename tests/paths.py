"""Every way a caller can receive from a ``ProcConnector``, driven the same way by one function,
so each guarantee is checked on each path (a guarantee kept on one path only is not kept)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyprocconn as pc
from pyprocconn import _libc
from pyprocconn.check import group_sockets, listener_registered
from pyprocconn.kernel import netlink
from pyprocconn.wire import SOL_NETLINK

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
            items.append(error.loss)
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


def others_in_the_group() -> set[int]:
    """The inodes of the sockets in the process events group (NETLINK_CONNECTOR, group
    CN_IDX_PROC) that other processes hold now, from /proc/net/netlink."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                mine.add(int(target[len("socket:[") : -1]))
    return {sock.inode for sock in group_sockets()} - mine


def silence(conn: pc.ProcConnector) -> None:
    """Take ``conn``'s socket out of the process events group: from now on nothing reaches it,
    whatever other programs do (its subscription stands: closing it still unsubscribes). For a
    test of a wait with nothing to receive, which no event type makes sure of on a shared
    machine (another program may ptrace or rename at any moment). What was queued before stays
    queued. Not undone: the sequence numbers go on meanwhile, so rejoining would report the
    events it did not get as lost."""
    _libc.setsockopt_int(
        conn.fileno(), SOL_NETLINK, netlink.NETLINK_DROP_MEMBERSHIP, pc.CN_IDX_PROC
    )


@dataclass
class Acks:
    """The acks a connector decoded, by ``cn_msg.ack`` (the kernel answers a request whose token
    was T with ``cn_msg.ack`` T + 1): what :func:`acks_seen` records."""

    errs: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    # (cn_msg.ack, err) of each ack handed out as an AckEvent (another program's), in order:
    # the n-th AckEvent received is the n-th of these.
    handed_out: list[tuple[int, int]] = field(default_factory=list)

    def of_events(self, events: list[Any]) -> dict[int, list[pc.AckEvent]]:
        """The AckEvents among ``events`` (received in order since :func:`acks_seen` began), by
        their ``cn_msg.ack``."""
        ack_events = [e for e in events if isinstance(e, pc.AckEvent)]
        paired = list(zip(ack_events, self.handed_out, strict=False))
        assert len(paired) == len(ack_events), "an AckEvent the decoder did not hand out"
        assert all(e.err == err for e, (_, err) in paired), paired
        found: dict[int, list[pc.AckEvent]] = defaultdict(list)
        for event, (ack, _) in paired:
            found[ack].append(event)
        return found


@contextmanager
def acks_seen(conn: pc.ProcConnector) -> Iterator[Acks]:
    """Every ack ``conn`` decodes meanwhile, with its ``cn_msg.ack``.

    The kernel multicasts every program's acks to every all-events listener, and an
    :class:`AckEvent` does not say whose request it answers: a test counts only the acks of its
    own tokens, read here where the connector's decoder hands each ack to its owner check. What
    the connector decoded before is handed out first, so that the AckEvents received from now
    on pair with :attr:`Acks.handed_out`."""
    while conn._pending:
        with contextlib.suppress(pc.OverrunError):
            conn.recv_batch(0)
    acks = Acks()
    stream = conn._stream
    owner_check = stream.on_ack

    def record(ack: int, err: int) -> bool:
        acks.errs[ack].append(err)
        owned = owner_check(ack, err) if owner_check is not None else False
        if not owned:
            acks.handed_out.append((ack, err))
        return owned

    stream.on_ack = record
    try:
        yield acks
    finally:
        stream.on_ack = owner_check


@contextmanager
def requests_sent() -> Iterator[list[tuple[int, int]]]:
    """Every LISTEN/IGNORE request the connectors of this process send to the kernel
    meanwhile, as (operation, token), in order (the requests still go out)."""
    sent: list[tuple[int, int]] = []
    real_send = _libc.sendto_kernel
    op_at = pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG

    def record(fd: int, data: bytes) -> None:
        request = pc.kernel.connector.cn_msg.from_buffer_copy(data, pc.SIZE_NLMSGHDR)
        sent.append((ctypes.c_uint32.from_buffer_copy(data, op_at).value, request.ack))
        real_send(fd, data)

    _libc.sendto_kernel = record
    try:
        yield sent
    finally:
        _libc.sendto_kernel = real_send
