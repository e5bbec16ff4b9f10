"""Decoding datagrams: the pure parser, the zero-copy message iterator, the connector's decoder.

A datagram holds one or more netlink messages, each ``nlmsghdr`` + ``cn_msg`` + ``proc_event``
for process events. Every length is checked against the bytes actually received before anything
is read, so nothing reads past ``nbytes`` whatever the bytes say.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pyprocconn.errors import MalformedMessageError, OverrunError
from pyprocconn.events import EVENT_CLASSES as _EVENT_CLASSES
from pyprocconn.events import (
    CommEvent,
    EventsLost,
    EventType,
    ProcEvent,
    UnknownEvent,
)
from pyprocconn.kernel import cn_proc, connector, netlink
from pyprocconn.wire import (
    PROC_EVENT_HEADER_SIZE,
    SIZE_CN_MSG,
    SIZE_NLMSGHDR,
    SIZE_PROC_EVENT,
    nlmsg_align,
    offsetof,
    struct_format,
)

_NLMSGHDR = struct.Struct("=" + struct_format(netlink.nlmsghdr))
# nlmsghdr + cn_msg + the fixed head of proc_event (what, cpu, timestamp_ns), read in one go.
_HEAD = struct.Struct(
    "="
    + struct_format(netlink.nlmsghdr)
    + struct_format(connector.cn_msg)
    + struct_format(cn_proc.proc_event, until="event_data")
)
_CN_OFFSET = SIZE_NLMSGHDR
_EVENT_OFFSET = SIZE_NLMSGHDR + SIZE_CN_MSG  # proc_event starts here: only 4-aligned
_DATA_OFFSET = _EVENT_OFFSET + PROC_EVENT_HEADER_SIZE
_NLMSGERR_ERROR = struct.Struct("=" + struct_format(netlink.nlmsgerr, until="msg"))
_EXIT_CODE_OFFSET = _DATA_OFFSET + offsetof(cn_proc.exit_proc_event, "exit_code")
_U32 = struct.Struct("=I")

# Which member of proc_event.event_data each event type uses.
_UNION_MEMBER = {
    EventType.NONE: "ack",
    EventType.FORK: "fork",
    EventType.EXEC: "exec",
    EventType.UID: "id",
    EventType.GID: "id",
    EventType.SID: "sid",
    EventType.PTRACE: "ptrace",
    EventType.COMM: "comm",
    EventType.COREDUMP: "coredump",
    EventType.EXIT: "exit",
}
_MEMBERS: dict[str, Any] = dict(cn_proc.proc_event._fields_[-1][1]._fields_)
# what -> (event class, unpacker of its event_data member, bytes that member needs)
_DECODERS: dict[int, tuple[type[ProcEvent], struct.Struct, int]] = {}
for _type, _member in _UNION_MEMBER.items():
    _unpacker = struct.Struct("=" + struct_format(_MEMBERS[_member]))
    _DECODERS[_type.value] = (_EVENT_CLASSES[_type.value], _unpacker, _unpacker.size)

_PROC_IDX, _PROC_VAL = connector.CN_IDX_PROC, connector.CN_VAL_PROC
_ALIGN_MASK = netlink.NLMSG_ALIGNTO - 1
_ExitEvent = _EVENT_CLASSES[EventType.EXIT.value]
# what -> (event class, unpacker of the whole message, smallest valid cn_msg.len): the fast path.
_WHOLE: dict[int, tuple[type[ProcEvent], struct.Struct, int]] = {
    what: (
        cls,
        struct.Struct(_HEAD.format + unpacker.format.lstrip("=")),
        PROC_EVENT_HEADER_SIZE + unpacker.size,
    )
    for what, (cls, unpacker, _) in _DECODERS.items()
}
# Index of exit_code in the whole-message values of an exit event.
_WHOLE_EXIT_CODE = len(_HEAD.unpack(bytes(_HEAD.size))) + 2
_NLMSG_DONE, _NLMSG_NOOP = netlink.NLMSG_DONE, netlink.NLMSG_NOOP
_NLMSG_ERROR, _NLMSG_OVERRUN = netlink.NLMSG_ERROR, netlink.NLMSG_OVERRUN
_EXIT, _NONZERO_EXIT = EventType.EXIT.value, EventType.NONZERO_EXIT.value
_ALL = EventType.ALL.value
_BYTES_TYPES = (bytes, bytearray)
_new: Any = tuple.__new__  # builds an event from a tuple without a Python-level __new__


@dataclass
class DecodeState:
    """What the connector's decoder remembers between datagrams."""

    mask: int = _ALL  # events outside it are dropped here (user-space filtering)
    track_sequence: bool = True  # per-CPU sequence gaps count lost events (all-events only)
    ack_token: int | None = None  # an ack with cn_msg.ack == token + 1 is ours: not delivered
    ack_error: int | None = None  # that ack's err, once seen
    last_sequence: dict[int, int] = field(default_factory=dict)
    received: int = 0
    lost: int = 0
    malformed: int = 0
    filtered: int = 0


def _reject(
    strict: bool,
    message: str,
    offset: int,
    out: list[Any],
    start_len: int,
    state: DecodeState | None,
) -> None:
    if strict:
        events = [e for e in out[start_len:] if isinstance(e, ProcEvent)]
        raise MalformedMessageError(f"{message} (at byte {offset})", offset, events)
    if state is not None:
        state.malformed += 1


def _deliver(
    state: DecodeState,
    event: ProcEvent,
    what: int,
    cpu: int,
    seq: int,
    ack: int,
    exit_code: int,
    out: Any,
) -> None:
    """The connector's bookkeeping for one decoded event: loss, its own ack, filtering."""
    if state.track_sequence:
        last = state.last_sequence.get(cpu)
        state.last_sequence[cpu] = seq
        if last is not None:
            gap = (seq - last - 1) & 0xFFFFFFFF
            if 0 < gap < 0x80000000:  # a larger "gap" is reordering, not loss
                state.lost += gap
                out.append(EventsLost(gap, cpu))
    if what == 0 and state.ack_token is not None and ack == (state.ack_token + 1) & 0xFFFFFFFF:
        state.ack_error = event.err  # type: ignore[attr-defined]
        return
    mask = state.mask
    if mask != _ALL and not (what & mask or (what == _EXIT and mask & _NONZERO_EXIT and exit_code)):
        state.filtered += 1
        return
    state.received += 1
    out.append(event)


def decode(
    buffer: Any,
    start: int,
    end: int,
    out: Any,
    state: DecodeState | None = None,
    strict: bool = True,
) -> None:
    """Append the events of the messages in ``buffer[start:end]`` to ``out``.

    ``strict`` raises :class:`MalformedMessageError` at the first bad message; otherwise bad
    messages are counted in ``state.malformed`` and skipped. With a state, sequence gaps append
    :class:`EventsLost` before the event that revealed them.
    """
    whole_unpackers = _WHOLE
    what_unpack = _U32.unpack_from
    start_len = len(out)
    offset = start
    while offset < end:
        remaining = end - offset
        # Fast path: a well-formed proc event, read with one unpack of the whole message.
        if remaining >= _DATA_OFFSET:
            whole = whole_unpackers.get(what_unpack(buffer, offset + _EVENT_OFFSET)[0])
            if whole is not None and remaining >= whole[1].size:
                cls, unpacker, minimum_cn_len = whole
                values = unpacker.unpack_from(buffer, offset)
                length = values[0]
                if (
                    values[1] == _NLMSG_DONE
                    and unpacker.size <= length <= remaining
                    and values[5] == _PROC_IDX
                    and values[6] == _PROC_VAL
                    and minimum_cn_len <= values[9] <= length - _EVENT_OFFSET
                ):
                    if cls is CommEvent:
                        name = values[-1].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                        event = _new(cls, (*values[11:-1], name))
                    else:
                        event = _new(cls, values[11:])
                    if state is None:
                        out.append(event)
                    else:
                        exit_code = values[_WHOLE_EXIT_CODE] if cls is _ExitEvent else 0
                        _deliver(
                            state,
                            event,
                            values[11],
                            values[12],
                            values[7],
                            values[8],
                            exit_code,
                            out,
                        )
                    offset += (length + _ALIGN_MASK) & ~_ALIGN_MASK
                    continue
        if not _decode_one(buffer, offset, end, out, state, strict, start_len):
            return
        length = _NLMSGHDR.unpack_from(buffer, offset)[0]
        offset += (length + _ALIGN_MASK) & ~_ALIGN_MASK


def _decode_one(
    buffer: Any,
    offset: int,
    end: int,
    out: Any,
    state: DecodeState | None,
    strict: bool,
    start_len: int,
) -> bool:
    """Any one message, with every check spelled out; False when the rest is unreadable."""
    remaining = end - offset
    if remaining < SIZE_NLMSGHDR:
        _reject(
            strict, f"truncated netlink header: {remaining} bytes", offset, out, start_len, state
        )
        return False
    length, kind = _NLMSGHDR.unpack_from(buffer, offset)[:2]
    if length < SIZE_NLMSGHDR or length > remaining:
        _reject(
            strict,
            f"nlmsg_len {length} outside [{SIZE_NLMSGHDR}, {remaining}]",
            offset,
            out,
            start_len,
            state,
        )
        return False
    if kind == _NLMSG_DONE:
        if length < _DATA_OFFSET:
            _reject(
                strict,
                f"connector message of {length} bytes is too short",
                offset,
                out,
                start_len,
                state,
            )
            return True
        (_, _, _, _, _, idx, val, seq, ack, cn_len, _, what, cpu, timestamp) = _HEAD.unpack_from(
            buffer, offset
        )
        if (idx, val) != (_PROC_IDX, _PROC_VAL):
            _reject(strict, f"foreign connector id {idx}.{val}", offset, out, start_len, state)
            return True
        if _EVENT_OFFSET + cn_len > length or cn_len < PROC_EVENT_HEADER_SIZE:
            _reject(
                strict,
                f"cn_msg.len {cn_len} does not fit nlmsg_len {length}",
                offset,
                out,
                start_len,
                state,
            )
            return True
        decoder = _DECODERS.get(what)
        data_end = offset + _EVENT_OFFSET + cn_len
        exit_code = 0
        if decoder is None:
            data = bytes(buffer[offset + _DATA_OFFSET : data_end])
            event: ProcEvent = _new(UnknownEvent, (what, cpu, timestamp, data))
        else:
            cls, unpacker, needed = decoder
            if cn_len - PROC_EVENT_HEADER_SIZE < needed:
                _reject(
                    strict,
                    f"{cls.NAME} event needs {needed} bytes of data, has "
                    f"{cn_len - PROC_EVENT_HEADER_SIZE}",
                    offset,
                    out,
                    start_len,
                    state,
                )
                return True
            values = unpacker.unpack_from(buffer, offset + _DATA_OFFSET)
            if cls is CommEvent:
                name = values[2].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                values = (values[0], values[1], name)
            if cls is _ExitEvent:
                exit_code = _U32.unpack_from(buffer, offset + _EXIT_CODE_OFFSET)[0]
            event = _new(cls, (what, cpu, timestamp, *values))
        if state is None:
            out.append(event)
        else:
            _deliver(state, event, what, cpu, seq, ack, exit_code, out)
    elif kind == _NLMSG_NOOP:
        pass
    elif kind == _NLMSG_ERROR:
        if length < SIZE_NLMSGHDR + _NLMSGERR_ERROR.size:
            _reject(strict, "truncated NLMSG_ERROR", offset, out, start_len, state)
        else:
            (error,) = _NLMSGERR_ERROR.unpack_from(buffer, offset + SIZE_NLMSGHDR)
            if error:
                code = -error
                raise OSError(code, f"{os.strerror(code)} (netlink error from the kernel)")
    elif kind == _NLMSG_OVERRUN:
        if state is None or strict:
            raise OverrunError(None)
        out.append(EventsLost(None))
    else:
        _reject(strict, f"unexpected netlink message type {kind}", offset, out, start_len, state)
    return True


def parse_events(buffer: Any, nbytes: int | None = None) -> list[ProcEvent]:
    """Decode recorded bytes (one datagram, or messages back to back) into events.

    ``buffer`` is anything with the buffer protocol; only its first ``nbytes`` bytes are read
    (all of it when None). Raises :class:`MalformedMessageError` for bytes that are not valid
    messages (its ``events`` holds the events before the bad one), ``OSError`` for an
    ``NLMSG_ERROR`` and :class:`OverrunError` for an ``NLMSG_OVERRUN``. Acks are returned as
    :class:`AckEvent`.
    """
    view = buffer if type(buffer) in _BYTES_TYPES else memoryview(buffer).cast("B")
    size = len(view)
    end = size if nbytes is None else nbytes
    if not 0 <= end <= size:
        raise ValueError(f"nbytes {nbytes} outside the buffer's {size} bytes")
    out: list[ProcEvent] = []
    decode(view, 0, end, out)
    return out


class NetlinkMessage:
    """Zero-copy views of one message, valid while the buffer is not reused.

    ``header`` is a ``nlmsghdr`` view; ``cn_msg`` and ``proc_event`` are views when the message
    is a connector message (else None); ``payload`` is a memoryview of the bytes after the
    netlink header, up to ``nlmsg_len``.
    """

    __slots__ = ("cn_msg", "header", "offset", "payload", "proc_event")

    def __init__(self, buffer: Any, offset: int, length: int) -> None:
        self.offset = offset
        self.header = netlink.nlmsghdr.from_buffer(buffer, offset)
        self.payload = memoryview(buffer)[offset + SIZE_NLMSGHDR : offset + length]
        self.cn_msg: connector.cn_msg | None = None
        self.proc_event: cn_proc.proc_event | None = None
        if self.header.nlmsg_type == _NLMSG_DONE and length >= _EVENT_OFFSET:
            self.cn_msg = connector.cn_msg.from_buffer(buffer, offset + _CN_OFFSET)
            fits = _EVENT_OFFSET + self.cn_msg.len <= length
            if fits and self.cn_msg.len >= SIZE_PROC_EVENT:
                self.proc_event = cn_proc.proc_event.from_buffer(buffer, offset + _EVENT_OFFSET)


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
            if remaining < SIZE_NLMSGHDR:
                raise MalformedMessageError(f"truncated netlink header: {remaining} bytes", offset)
            length = _NLMSGHDR.unpack_from(self._buffer, offset)[0]
            if length < SIZE_NLMSGHDR or length > remaining:
                raise MalformedMessageError(
                    f"nlmsg_len {length} outside [{SIZE_NLMSGHDR}, {remaining}]", offset
                )
            yield NetlinkMessage(self._buffer, offset, length)
            offset += nlmsg_align(length)
