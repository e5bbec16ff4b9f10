"""``ProcConnector``: subscribe to the kernel's process events and receive them.

One module over the project's ~400 lines on purpose: the receive path (``recv_batch`` with its
linger and doorbell, the per-call bookkeeping) is the measured hot path (``python -m benchmarks``:
CPU per event of ``recv_batch`` and ``recv``), and its shape is kept where it was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import errno
import itertools
import math
import os
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Generator
from typing import Any, Literal

from pyprocconn import _libc, layout
from pyprocconn.decode import Counters, Stream, decode
from pyprocconn.errors import ConnectorUnavailableError, OverrunError
from pyprocconn.events import EVENT_CLASSES, EventsLost, EventType, ProcEvent
from pyprocconn.kernel import cn_proc, connector, netlink
from pyprocconn.wire import subscription_request

# 4 MiB asked for; the kernel doubles it: room for about 10,000 queued events (~832 bytes each).
DEFAULT_RCVBUF = 4 * 1024 * 1024
# How long the iterators let events accumulate after a wake-up before reading them in one batch.
DEFAULT_LINGER = 0.001
# After a ring, how long to wait for its event here (it comes microseconds after the doorbell's).
_RING_GRACE = 0.001
# How long to wait for the kernel's answer to each form of the subscription request.
DEFAULT_ACK_TIMEOUT = 1.0
# The largest receive buffer to ask for: the kernel doubles it into an int.
MAX_RCVBUF = (2**31 - 1) // 2
_BATCH_SLOTS = 64
_SLOT_SIZE = 1024  # one proc event datagram is 76 bytes; larger ones are foreign or future
_ALL = layout.ALL_EVENTS
_thread_id = threading.get_ident
_EAGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)
_MSG_DONTWAIT, _MSG_TRUNC, _MSG_WAITFORONE = (
    _libc.MSG_DONTWAIT,
    _libc.MSG_TRUNC,
    _libc.MSG_WAITFORONE,
)

Buffer = bytearray | memoryview | ctypes.Array[Any]


class Stats(Counters):
    """Counters since the connector opened (a snapshot: see :class:`Counters` for each)."""


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _seconds(value: object) -> bool:
    """Whether ``value`` is a finite number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_times(ack_timeout: float, linger: float) -> None:
    if not (_seconds(ack_timeout) and ack_timeout > 0):
        raise ValueError(f"ack_timeout must be a number of seconds above 0, not {ack_timeout!r}")
    if not (_seconds(linger) and linger >= 0):
        raise ValueError(f"linger must be a number of seconds 0 or more, not {linger!r}")


def _mask_of(events: EventType | int | str | None) -> int:
    if isinstance(events, str):
        events = EventType.from_names(events)
    return _ALL if events is None else int(events) & _ALL


class ProcConnector:
    """A subscription to the kernel's process events.

    ``urgent`` (event types, as ``events``): a linger (``recv_batch``'s, the iterator's) ends
    the moment one of these arrives, and none starts after a wake-up that brought one. A second
    socket, filtered by the kernel to them, rings for it (kernels 6.6+; :attr:`urgent` says
    whether it is in effect). A process table lingers for company on forks and exits, so a
    storm costs a few wake-ups per millisecond instead of one per event, and still reads an
    exec's /proc at once.

    ``events`` selects event types: an :class:`EventType` mask, names (``"exec,exit"``), or
    None for all. The kernel
    filters when it can (6.6+); older kernels get everything and the connector filters in user
    space, transparently (:attr:`filter_mode` says which). Receive with :meth:`recv`,
    :meth:`recv_timeout`, :meth:`recv_batch`, ``for``/``async for``, or wait on :meth:`fileno`.

    Loss: the ``recv*`` methods raise :class:`OverrunError` at the place in the stream where
    events were lost, then go on with the events after it. The iterators never stop for loss:
    they yield an :class:`EventsLost` item there instead. :attr:`stats` counts everything.

    Threads: a connector may be handed from one thread to another, but only one thread may use
    it at a time; give each thread its own connector. fork(): the child must not use the parent's
    connector; closing it there (or at the child's exit) only drops the child's descriptor, so
    the parent's subscription goes on. Raises ``OSError`` subclasses when the
    kernel refuses (``PermissionError`` on old kernels without CAP_NET_ADMIN) and
    :class:`ConnectorUnavailableError` when it never answers.
    """

    def __init__(
        self,
        events: EventType | int | str | None = None,
        *,
        rcvbuf: int | None = DEFAULT_RCVBUF,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        linger: float = DEFAULT_LINGER,
        urgent: EventType | int | str | None = None,
    ) -> None:
        _check_times(ack_timeout, linger)
        mask = _mask_of(events)
        if mask == 0:
            raise ValueError("events names no event type; use None or EventType.ALL for all")
        self._mask = mask
        self._doorbell: ProcConnector | None = None
        self._urgent: frozenset[type[ProcEvent]] = frozenset()
        self._linger = linger
        self._stream = Stream(mask=mask, on_ack=self._on_ack)
        self._counters = self._stream.counters
        self._listen_mask: int | bool | None = False  # the last LISTEN sent (False: none)
        self._awaiting: int | None = None  # cn_msg.ack of the answer to our pending request
        self._answer: int | None = None  # its err, once it came
        self._pending: deque[ProcEvent | EventsLost] = deque()
        self._user: int | None = None  # the thread receiving right now
        self._depth = 0  # its calls and iterations not yet ended
        self._filter_mode: Literal["none", "kernel", "user"] = "none"
        self._kernel_filters = False  # the kernel took the 8-byte LISTEN: it filters per socket
        self._fd = -1
        self._owner_pid = os.getpid()  # a forked child must not unsubscribe its parent
        urgent_mask = None if urgent is None else _mask_of(urgent) & mask
        if urgent_mask == 0:
            raise ValueError("urgent names no event type this connector receives")
        try:
            self._fd = _libc.socket_netlink(netlink.NETLINK_CONNECTOR)
        except OSError as error:
            if error.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
                raise ConnectorUnavailableError(
                    error.errno,
                    "this kernel has no netlink connector (CONFIG_CONNECTOR): "
                    "process events are not available",
                ) from None
            raise
        try:
            self._batch = _libc.RecvBatch(_BATCH_SLOTS, _SLOT_SIZE, connector.CN_IDX_PROC)
            self._recvfrom = _libc.RecvFrom()
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
            if rcvbuf is not None:
                self._set_rcvbuf(rcvbuf)
            try:
                _libc.bind_netlink(self._fd, connector.CN_IDX_PROC)
            except PermissionError as error:
                raise PermissionError(
                    error.errno,
                    "joining the process events group needs CAP_NET_ADMIN on this kernel "
                    "(before 6.6): run as root",
                ) from None
            self._subscribe(ack_timeout)
            if urgent_mask is not None and self._kernel_filters:
                self._ring_on(urgent_mask, ack_timeout)
        except BaseException:
            if self._doorbell is not None:
                self._doorbell.close()
            self._undo_listen()
            _libc.close(self._fd)
            self._fd = -1
            raise

    def _undo_listen(self) -> None:
        """After a failed construction: a LISTEN the kernel may have counted (no error ack came
        for it) gets its IGNORE, in the same form, or the kernel's listener count leaks."""
        if self._listen_mask is False:
            return
        mask = None if self._listen_mask is None else int(self._listen_mask)
        with contextlib.suppress(OSError):
            ignore = subscription_request(cn_proc.PROC_CN_MCAST_IGNORE, mask, self._token())
            _libc.sendto_kernel(self._fd, ignore)

    # -- subscription ----------------------------------------------------------------------
    def _subscribe(self, ack_timeout: float) -> None:
        error = None
        if layout.HAS_EVENT_FILTER:
            error = self._request(cn_proc.PROC_CN_MCAST_LISTEN, _ALL, ack_timeout)
        kernel_filters = self._kernel_filters = error is not None
        if error is None:  # kernels before 6.6 ignore the 8-byte form: ask the old way
            error = self._request(cn_proc.PROC_CN_MCAST_LISTEN, None, ack_timeout)
        if error is None:
            raise ConnectorUnavailableError(
                errno.ETIMEDOUT,
                f"the kernel did not answer the process events subscription within "
                f"{(2 if layout.HAS_EVENT_FILTER else 1) * ack_timeout:g} s: this process is "
                "outside the initial user or pid namespace (a container?), or the kernel "
                "lacks CONFIG_PROC_EVENTS",
            )
        if error:
            advice = {
                errno.EPERM: "subscribing needs CAP_NET_ADMIN on this kernel: run as root",
            }.get(error, "the kernel refused the process events subscription")
            raise OSError(error, f"{errno.errorcode.get(error, error)}: {advice}")
        if self._mask != _ALL:
            if kernel_filters:
                # No ack can come back: a filtered socket never sees acks.
                _libc.sendto_kernel(
                    self._fd,
                    subscription_request(cn_proc.PROC_CN_MCAST_LISTEN, self._mask, self._token()),
                )
                self._filter_mode = "kernel"
            else:
                self._filter_mode = "user"
            # Gaps now include events filtered out, so they no longer count loss.
            self._stream.track_sequence = False

    def _ring_on(self, urgent: int, ack_timeout: float) -> None:
        """A second socket, filtered by the kernel to the ``urgent`` types, that ends a linger
        the moment one of them comes (made only where the kernel filters per socket: one that
        woke on everything would be no doorbell). It is the newer socket, and the kernel
        delivers to the newest first: a ring may come a moment before this socket has the
        event, so the read after a ring waits up to ``_RING_GRACE`` for it (without that wait
        the exec would wait for the next wake-up)."""
        self._doorbell = ProcConnector(urgent, rcvbuf=None, ack_timeout=ack_timeout, linger=0.0)
        self._urgent = frozenset(
            cls for what, cls in EVENT_CLASSES.items() if what & urgent == what and what
        )

    @property
    def urgent(self) -> EventType | None:
        """The event types that end a linger at once (``urgent=``); None when not in effect
        (not asked, or a kernel before 6.6 that cannot filter per socket)."""
        if self._doorbell is None:
            return None
        return EventType(self._doorbell._mask)

    def _linger_step(self, phase: int, linger: float, decoded_from: int) -> int:
        """Events come in bursts: take the burst in one go. After a read that emptied the
        socket, in ``phase`` 0 (the first) or 1 (after silencing the doorbell): wait, and say
        the phase of the next read (2: the last; 3: the last, after a ring), or -1 to end now."""
        doorbell = self._doorbell
        if doorbell is None:
            time.sleep(linger)
            return 2
        if self._urgent_in(decoded_from):
            return -1  # an exec's /proc is read now, not after the linger
        if phase == 0:
            # Rings for the events already read are dropped; one for an event that came after
            # that read is then caught by the read that follows.
            doorbell._silence()
            return 1
        return 3 if doorbell._wait(linger) else 2

    def _urgent_in(self, start: int) -> bool:
        """Whether pending holds an urgent event from index ``start`` on."""
        urgent = self._urgent
        return any(type(item) in urgent for item in itertools.islice(self._pending, start, None))

    def _silence(self) -> None:
        """Drop the rings queued on the doorbell (their events are read from this socket)."""
        batch, fd = self._batch, self._fd
        while True:
            try:
                if batch(fd, _MSG_DONTWAIT) < batch.slots:
                    return
            except OSError as error:
                if error.errno != errno.ENOBUFS:  # EAGAIN: empty
                    return

    @staticmethod
    def _token() -> int:
        return random.randrange(1 << 16, 1 << 31)

    def _request(self, op: int, mask: int | None, timeout: float) -> int | None:
        """Send one request and wait for its ack: its err, or None when none came in time."""
        token = self._token()
        self._awaiting, self._answer = (token + 1) & 0xFFFFFFFF, None
        if op == cn_proc.PROC_CN_MCAST_LISTEN:
            self._listen_mask = mask  # the form sent; False once refused
        _libc.sendto_kernel(self._fd, subscription_request(op, mask, token))
        deadline = time.monotonic() + timeout
        try:
            while self._answer is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._fill(remaining, 0.0)
            if self._answer and op == cn_proc.PROC_CN_MCAST_LISTEN:
                self._listen_mask = False  # refused: nothing was counted
            return self._answer
        finally:
            self._awaiting = None

    def _on_ack(self, ack: int, err: int) -> bool:
        """The decoder's report of an ack: True when it answers our request (kept from the
        caller); another listener's ack is an event like any other."""
        if ack != self._awaiting:
            return False
        self._answer, self._awaiting = err, None
        return True

    # -- receiving -------------------------------------------------------------------------
    def _set_rcvbuf(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"rcvbuf must be a positive number of bytes, not {size!r}")
        # The kernel doubles what is asked and keeps the result in an int: ask at most half
        # of INT_MAX (a larger value would wrap to the smallest buffer).
        size = min(size, MAX_RCVBUF)
        try:
            _libc.setsockopt_int(self._fd, socket.SOL_SOCKET, _libc.SO_RCVBUFFORCE, size)
        except PermissionError:  # without CAP_NET_ADMIN: capped at net.core.rmem_max
            _libc.setsockopt_int(self._fd, socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def _wait(self, timeout: float | None) -> bool:
        """Wait until readable; False on timeout. Retries signals, keeping the deadline."""
        return bool(self._poll.poll(None if timeout is None else max(0.0, timeout) * 1000))

    def _fill(self, timeout: float | None, linger: float) -> bool:
        """Wait up to ``timeout`` (None: forever) for datagrams, let more arrive for ``linger``
        seconds after the first (see ``urgent``), then decode all that are queued into pending.
        False on timeout."""
        if timeout is None:
            flags = _MSG_WAITFORONE  # block in recvmmsg itself: one system call per wake-up
        else:
            if not self._wait(timeout):
                return False
            flags = _MSG_DONTWAIT
        slots = self._batch.slots
        phase = 0 if linger > 0 else 2
        decoded_from = len(self._pending)
        while True:
            count = self._read(flags)
            flags = _MSG_DONTWAIT
            if count == slots or count < 0:  # more waiting, or a loss read: read on
                continue
            if phase == 2:
                return True
            if phase == 3:  # the read after a ring: its event may be a moment behind
                if self._urgent_in(decoded_from) or not self._wait(_RING_GRACE):
                    return True
                phase = 2
                continue
            phase = self._linger_step(phase, linger, decoded_from)
            if phase < 0:
                return True
            decoded_from = len(self._pending)

    def _read(self, flags: int) -> int:
        """One recvmmsg, decoded into pending: the datagrams read (0: none queued, -1: the
        kernel said it dropped some, recorded as a loss)."""
        batch, fd = self._batch, self._fd
        try:
            count = batch(fd, flags)
        except OSError as error:
            if error.errno in _EAGAIN:
                return 0
            if self._fd != fd:  # closed meanwhile by another thread (misuse): say so
                self._check_open()
            if error.errno != errno.ENOBUFS:
                raise
            self._stream.lose(self._pending, None)
            return -1
        if self._fd != fd:  # closed by another thread while this one waited (misuse): the
            self._check_open()  # number may be another socket's by now: read no more
        headers, senders = batch.results()
        decode(batch.buffer, headers, self._pending, self._stream, False, batch.slot_size, senders)
        return count

    def _receive_into(self, buf: Buffer, timeout: float | None) -> bool:
        """One datagram into the caller's buffer, decoded into pending; False on timeout."""
        if not self._wait(timeout):
            return False
        view = memoryview(buf).cast("B")
        raw = (ctypes.c_char * len(view)).from_buffer(view)
        if len(view) < _SLOT_SIZE:  # small: check the next datagram fits before taking it
            try:
                waiting = self._recvfrom(
                    self._fd, raw, len(view), _MSG_DONTWAIT | _MSG_TRUNC | socket.MSG_PEEK
                )
            except OSError as error:
                if error.errno == errno.ENOBUFS:  # reading it clears it: report it here
                    self._stream.lose(self._pending, None)
                    return True
                if error.errno not in _EAGAIN:
                    raise
                waiting = 0
            if waiting > len(view):
                raise ValueError(
                    f"the buffer ({len(view)} bytes) is smaller than the next datagram "
                    f"({waiting} bytes); it was left queued: pass a buffer of at least "
                    f"{_SLOT_SIZE} bytes"
                )
        try:
            nbytes = self._recvfrom(
                self._fd, raw, len(view), socket.MSG_DONTWAIT | socket.MSG_TRUNC
            )
        except OSError as error:
            if error.errno in _EAGAIN:
                return True
            if error.errno == errno.ENOBUFS:
                self._stream.lose(self._pending, None)
                return True
            raise
        flags = _MSG_TRUNC if nbytes > len(view) else 0  # the buffer was too small for it
        received = [(flags, min(nbytes, len(view)))]
        sender = [self._recvfrom.sender.nl_pid]
        decode(view, received, self._pending, self._stream, False, len(view), sender)
        return True

    def _take(self) -> ProcEvent | EventsLost:
        item = self._pending.popleft()
        if type(item) is EventsLost:
            self._stream.markers -= 1
        return item

    def _pop(self) -> ProcEvent:
        item = self._take()
        if isinstance(item, EventsLost):
            raise OverrunError(item.lost, cpu=item.cpu)
        return item

    def _enter(self) -> None:
        """Claim the connector for this thread (one thread at a time, see the class doc). Calls
        nest (a recv inside a for loop), and iterators may end in any order: a count, not a
        stack, says when the thread is out."""
        if self._fd < 0:
            self._check_open()
        me = _thread_id()
        # No lock (this runs per receive call): a detection of the misuse, not a mutex; two
        # threads racing into the same instant may both get through.
        user = self._user
        if user is not None and user != me:
            raise RuntimeError(
                "this ProcConnector is being used by another thread right now: a connector "
                "serves one thread at a time; give each thread its own connector"
            )
        self._user = me
        self._depth += 1

    def _leave(self) -> None:
        self._depth -= 1
        if not self._depth:
            self._user = None

    def recv(self, buf: Buffer | None = None) -> ProcEvent:
        """Block until the next event. ``buf``: a writable buffer to receive into (else an
        internal one). Raises :class:`OverrunError` where events were lost."""
        pending = self._pending
        if pending and self._user is None and self._fd >= 0 and not self._stream.markers:
            # The usual call: an event already decoded, no loss marker queued, no other thread
            # inside (the rule's check, below, is for calls that may receive).
            return pending.popleft()  # type: ignore[return-value]  # (no marker: an event)
        self._enter()
        try:
            while not pending:
                if buf is None:
                    self._fill(None, 0.0)
                else:
                    self._receive_into(buf, None)
            return self._pop()
        finally:
            self._leave()

    def recv_timeout(self, timeout: float = 0.0, *, buf: Buffer | None = None) -> ProcEvent | None:
        """Like :meth:`recv`, but None when no event arrived within ``timeout`` seconds."""
        if not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        pending = self._pending
        if pending and self._user is None and self._fd >= 0 and not self._stream.markers:
            return pending.popleft()  # type: ignore[return-value]  # as in recv
        self._enter()
        try:
            deadline = time.monotonic() + timeout
            while not self._pending:
                remaining = deadline - time.monotonic()
                received = (
                    self._fill(remaining, 0.0)
                    if buf is None
                    else self._receive_into(buf, remaining)
                )
                if not received:
                    return None
            return self._pop()
        finally:
            self._leave()

    def recv_batch(
        self, timeout: float | None = None, *, max_events: int = 4096, linger: float = 0.0
    ) -> list[ProcEvent]:
        """The events queued now, waiting up to ``timeout`` seconds (None: forever) for the
        first; an empty list on timeout. ``linger``: seconds to let more arrive after the first
        wake-up. Raises :class:`OverrunError` where events were lost (the events before the loss
        are returned first)."""
        self._enter()
        try:
            return self._batch_of(timeout, max_events, linger)
        finally:
            self._leave()

    def _batch_of(self, timeout: float | None, max_events: int, linger: float) -> list[ProcEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = self._pending
        while not pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._fill(remaining, linger)
            if not pending and remaining == 0.0:
                return []
        if not self._stream.markers and len(pending) <= max_events:
            out: list[Any] = list(pending)  # the usual case: no loss inside, take everything
            pending.clear()
            return out
        out = []
        while pending and len(out) < max_events:
            if type(pending[0]) is EventsLost:
                if out:
                    break
                self._pop()  # raises OverrunError
            out.append(self._take())
        return out

    def __iter__(self) -> Generator[ProcEvent | EventsLost, None, None]:
        """Events forever, blocking; :class:`EventsLost` items mark where events were lost."""
        self._enter()
        try:
            pending = self._pending
            while True:
                while pending:
                    yield self._take()
                self._fill(None, self._linger)
        finally:
            self._leave()

    async def __aiter__(self) -> AsyncGenerator[ProcEvent | EventsLost, None]:
        """Like iteration, on the running asyncio loop (a reader on :meth:`fileno`)."""
        self._enter()
        try:
            loop = asyncio.get_running_loop()
            pending = self._pending
            while True:
                while pending:
                    yield self._take()
                ready = loop.create_future()
                loop.add_reader(self._fd, _wake, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(self._fd)
                if self._linger > 0:
                    await asyncio.sleep(self._linger)
                self._fill(0.0, 0.0)
        finally:
            self._leave()

    # -- state -----------------------------------------------------------------------------
    def fileno(self) -> int:
        """The socket's descriptor, readable when events are queued (for select/poll/epoll).

        Events may also be pending inside the connector: call :meth:`recv_batch` with
        ``timeout=0`` after each wake-up until it returns an empty list."""
        self._check_open()
        return self._fd

    @property
    def events(self) -> EventType:
        """The event types this connector delivers."""
        return EventType(self._mask)

    @property
    def filter_mode(self) -> Literal["none", "kernel", "user"]:
        """Who drops unwanted event types: nobody (all events), the kernel, or user space."""
        return self._filter_mode

    @property
    def port_id(self) -> int:
        """The socket's netlink port id (its address; the kernel's is 0)."""
        self._check_open()
        return _libc.port_id(self._fd)

    @property
    def rcvbuf(self) -> int:
        """The socket's effective receive buffer in bytes (the kernel doubles what is asked)."""
        self._check_open()
        return _libc.getsockopt_int(self._fd, socket.SOL_SOCKET, socket.SO_RCVBUF)

    @rcvbuf.setter
    def rcvbuf(self, size: int) -> None:
        self._check_open()
        self._set_rcvbuf(size)

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters."""
        return Stats(**dataclasses.asdict(self._counters))

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _check_open(self) -> None:
        if self._fd < 0:
            raise ValueError("I/O operation on a closed ProcConnector")

    def close(self) -> None:
        """Unsubscribe (IGNORE, so the kernel's listener count stays right) and close.
        Idempotent."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        if self._doorbell is not None:
            self._doorbell.close()
        try:
            # After fork() parent and child share the socket: only the process that opened it
            # unsubscribes; a child just drops its descriptor.
            if os.getpid() == self._owner_pid:
                _libc.sendto_kernel(
                    fd, subscription_request(cn_proc.PROC_CN_MCAST_IGNORE, None, self._token())
                )
        except OSError:
            pass  # closing anyway; the kernel forgets a closed socket's filter
        finally:
            _libc.close(fd)

    def __enter__(self) -> ProcConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<ProcConnector {state} events={self.events!r} filter={self._filter_mode}>"
