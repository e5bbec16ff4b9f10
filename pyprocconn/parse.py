"""The pure parser: recorded bytes to events (:func:`parse_events`), or to zero-copy ctypes views
of each message (:class:`NetlinkMessageIter`). No sockets, no state between calls."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

from pyprocconn import layout
from pyprocconn.decode import decode
from pyprocconn.errors import MalformedMessageError
from pyprocconn.events import ProcEvent
from pyprocconn.kernel import cn_proc, connector, netlink

_BYTES_TYPES = (bytes, bytearray)
_NLMSGHDR_SIZE = layout.NLMSGHDR_SIZE
_PROC_EVENT_SIZE = ctypes.sizeof(cn_proc.proc_event)


def parse_events(buffer: Any, nbytes: int | None = None) -> list[ProcEvent]:
    """Decode recorded bytes (one datagram, or messages back to back) into events.

    ``buffer`` is anything with the buffer protocol; only its first ``nbytes`` bytes are read
    (all of it when None). Messages of any ``cn_msg.len`` are decoded (an older kernel's shorter
    struct gives None for the fields it did not send; a newer kernel's extra bytes are ignored).
    Acks are returned as :class:`AckEvent`.

    Errors never lose the events decoded before them: :class:`MalformedMessageError` (bytes that
    are not valid messages) and :class:`OverrunError` (an ``NLMSG_OVERRUN``) carry them in
    ``.events``. An ``NLMSG_ERROR`` raises ``OSError``.
    """
    view = buffer if type(buffer) in _BYTES_TYPES else memoryview(buffer).cast("B")
    size = len(view)
    end = size if nbytes is None else nbytes
    if not 0 <= end <= size:
        raise ValueError(f"nbytes {nbytes} outside the buffer's {size} bytes")
    out: list[ProcEvent] = []
    decode(view, ((0, end),), out)  # one datagram of ``end`` bytes, from the kernel
    return out


class NetlinkMessage:
    """Views of one message, valid while the buffer is not reused.

    ``header`` is a ``nlmsghdr`` view; for a connector message ``cn_msg`` is a view and
    ``proc_event`` a ``struct proc_event`` (else None). ``event_bytes`` says how many bytes of
    ``proc_event`` the kernel really sent (``cn_msg.len``). When that is at least the header's
    struct, ``proc_event`` is a zero-copy view; when it is shorter (an older kernel), it is a
    zero-padded copy, so no view ever reaches past the message (``proc_event_is_copy``).
    ``payload`` is a memoryview of the bytes after the netlink header, up to ``nlmsg_len``.
    """

    __slots__ = ("cn_msg", "event_bytes", "header", "offset", "payload", "proc_event",
                 "proc_event_is_copy")  # fmt: skip

    def __init__(self, buffer: Any, offset: int, length: int) -> None:
        self.offset = offset
        self.header = netlink.nlmsghdr.from_buffer(buffer, offset)
        self.payload = memoryview(buffer)[offset + _NLMSGHDR_SIZE : offset + length]
        self.cn_msg: connector.cn_msg | None = None
        self.proc_event: cn_proc.proc_event | None = None
        self.proc_event_is_copy = False
        self.event_bytes = 0
        if self.header.nlmsg_type != netlink.NLMSG_DONE or length < layout.EVENT_OFFSET:
            return
        self.cn_msg = connector.cn_msg.from_buffer(buffer, offset + layout.CN_MSG_OFFSET)
        sent = self.cn_msg.len
        if layout.EVENT_OFFSET + sent > length or sent < layout.EVENT_HEAD_SIZE:
            return  # not a whole proc event head: no view
        start = offset + layout.EVENT_OFFSET
        self.event_bytes = sent
        if sent >= _PROC_EVENT_SIZE:
            self.proc_event = cn_proc.proc_event.from_buffer(buffer, start)
        else:
            padded = bytes(buffer[start : start + sent]) + bytes(_PROC_EVENT_SIZE - sent)
            self.proc_event = cn_proc.proc_event.from_buffer_copy(padded)
            self.proc_event_is_copy = True


class NetlinkMessageIter:
    """Iterate over the messages of ``buffer[:nbytes]`` as :class:`NetlinkMessage` views.

    Zero copy on writable buffers (bytearray, ctypes arrays, mmap); a read-only buffer is
    copied once. Lengths are checked before each view is made: a bad one raises
    :class:`MalformedMessageError`, and no view reaches past ``nbytes``.
    """

    def __init__(self, buffer: Any, nbytes: int | None = None) -> None:
        view = memoryview(buffer).cast("B")
        if view.readonly:
            view = memoryview(bytearray(view))
        self._buffer = view
        self._end = len(view) if nbytes is None else nbytes
        if not 0 <= self._end <= len(view):
            raise ValueError(f"nbytes {nbytes} outside the buffer's {len(view)} bytes")

    def __iter__(self) -> Iterator[NetlinkMessage]:
        offset, end = 0, self._end
        while offset < end:
            remaining = end - offset
            if remaining < _NLMSGHDR_SIZE:
                raise MalformedMessageError(f"truncated netlink header: {remaining} bytes", offset)
            length = netlink.nlmsghdr.from_buffer(self._buffer, offset).nlmsg_len
            if length < _NLMSGHDR_SIZE or length > remaining:
                raise MalformedMessageError(
                    f"nlmsg_len {length} outside [{_NLMSGHDR_SIZE}, {remaining}]", offset
                )
            yield NetlinkMessage(self._buffer, offset, length)
            offset += layout.nlmsg_align(length)
