"""Decoding datagrams: the pure parser, the zero-copy message iterator, the connector's decoder.

A datagram holds one or more netlink messages, each ``nlmsghdr`` + ``cn_msg`` + ``proc_event``
for process events. Every length is checked against the bytes actually received before anything
is read, so nothing reads past ``nbytes`` whatever the bytes say.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyprocconn._libc import MSG_TRUNC as _MSG_TRUNC
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
# The hot paths index the unpacked head by position (literals are cheaper than names there).
# These are those positions, checked against the generated layout at import, so a header whose
# fields moved stops the import instead of being decoded wrong.
_HEAD_POSITIONS = {
    "nlmsg_len": 0,
    "nlmsg_type": 1,
    "idx": 5,
    "val": 6,
    "seq": 7,
    "ack": 8,
    "len": 9,
    "what": 11,
    "cpu": 12,
    "timestamp_ns": 13,
}


def _head_names() -> list[str]:
    names = [name for name, *_ in netlink.nlmsghdr._fields_]
    names += [name for name, *_ in connector.cb_id._fields_]
    names += [name for name, *_ in connector.cn_msg._fields_[1:-1]]  # after id, before data
    return names + [name for name, *_ in cn_proc.proc_event._fields_[:-1]]


if any(_head_names()[position] != name for name, position in _HEAD_POSITIONS.items()):
    raise ImportError(f"the generated layout moved the message head: {_head_names()}")
_CN_OFFSET = SIZE_NLMSGHDR
_EVENT_OFFSET = SIZE_NLMSGHDR + SIZE_CN_MSG  # proc_event starts here: only 4-aligned
_DATA_OFFSET = _EVENT_OFFSET + PROC_EVENT_HEADER_SIZE
_NLMSGERR_ERROR = struct.Struct("=" + struct_format(netlink.nlmsgerr, until="msg"))
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
_MEMBERS_UNION: Any = cn_proc.proc_event._fields_[-1][1]
_MEMBERS: dict[str, Any] = dict(_MEMBERS_UNION._fields_)
# what -> (event class, unpacker of its event_data member, bytes that member needs)
_DECODERS: dict[int, tuple[type[ProcEvent], struct.Struct, int]] = {}
for _type, _member in _UNION_MEMBER.items():
    _unpacker = struct.Struct("=" + struct_format(_MEMBERS[_member]))
    _DECODERS[_type.value] = (_EVENT_CLASSES[_type.value], _unpacker, _unpacker.size)

_PROC_IDX, _PROC_VAL = connector.CN_IDX_PROC, connector.CN_VAL_PROC
_ALIGN_MASK = netlink.NLMSG_ALIGNTO - 1
_ExitEvent = _EVENT_CLASSES[EventType.EXIT.value]
# what -> (event class, unpacker of the whole message, smallest valid cn_msg.len): the fast path.
_WHOLE: dict[int, tuple[type[ProcEvent], Any, int, int]] = {}
for _what, (_cls, _unpacker, _) in _DECODERS.items():
    _whole = struct.Struct(_HEAD.format + _unpacker.format.lstrip("="))
    _WHOLE[_what] = (_cls, _whole.unpack_from, _whole.size, PROC_EVENT_HEADER_SIZE + _unpacker.size)
# The usual message in one read: a whole proc event with event_data read as signed 32-bit words
# (pid fields are signed). An unsigned field that comes out negative (a thread's exit_signal, a
# uid above 2**31) sends the message the exact way instead, so values are always the header's.
_HEAD_FIELDS = len(_head_names())
# Where exit_code sits among exit_proc_event's fields, and among a whole exit message's values.
_EXIT_CODE_INDEX = [name for name, *_ in cn_proc.exit_proc_event._fields_].index("exit_code")
_WHOLE_EXIT_CODE = _HEAD_FIELDS + _EXIT_CODE_INDEX
_GENERIC = struct.Struct(_HEAD.format + "i" * (ctypes.sizeof(_MEMBERS_UNION) // 4))
_GENERIC_SIZE = _GENERIC.size  # a whole message: what the kernel sends for every event
_GENERIC_CN_LEN = _GENERIC_SIZE - _EVENT_OFFSET
# what -> (event class, end of its fields in the values, two indexes that must not be negative)
_GENERIC_TYPES: dict[int, tuple[type[ProcEvent], int, int, int]] = {}
for _what, (_cls, _unpacker, _) in _DECODERS.items():
    _format = _unpacker.format.lstrip("=")
    _unsigned = [_HEAD_FIELDS + i for i, code in enumerate(_format) if code == "I"]
    if set(_format) <= {"i", "I"} and len(_unsigned) <= 2:
        _what_index = _HEAD_POSITIONS["what"]  # never negative: a harmless filler
        _first, _second = [*_unsigned, _what_index, _what_index][:2]
        _GENERIC_TYPES[_what] = (_cls, _HEAD_FIELDS + len(_format), _first, _second)
_NLMSG_DONE, _NLMSG_NOOP = netlink.NLMSG_DONE, netlink.NLMSG_NOOP
_NLMSG_ERROR, _NLMSG_OVERRUN = netlink.NLMSG_ERROR, netlink.NLMSG_OVERRUN
_EXIT, _NONZERO_EXIT = EventType.EXIT.value, EventType.NONZERO_EXIT.value
_ALL = EventType.ALL.value
_BYTES_TYPES = (bytes, bytearray)
_MAX_ERRNO = 4095  # the kernel's errno values are 1..4095
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
    markers: int = 0  # EventsLost items appended and not yet taken by the reader


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
                state.markers += 1
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
    start_len = len(out)
    offset = start
    whole_get, what_unpack, append = _WHOLE.get, _U32.unpack_from, out.append
    data_offset, event_offset, align_mask = _DATA_OFFSET, _EVENT_OFFSET, _ALIGN_MASK
    done, proc_idx, proc_val, comm_event = _NLMSG_DONE, _PROC_IDX, _PROC_VAL, CommEvent
    while offset < end:
        # Pure parsing reads runs of whole messages in one go, until one is not the usual.
        if state is None and end - offset >= _GENERIC_SIZE:
            count = (end - offset) // _GENERIC_SIZE
            before = len(out)
            generic_types = _GENERIC_TYPES
            runs = (
                _GENERIC.iter_unpack(memoryview(buffer)[offset : offset + count * _GENERIC_SIZE])
                if count > 1
                else (_GENERIC.unpack_from(buffer, offset),)  # one datagram: skip the view
            )
            for values in runs:
                if not (
                    values[0] == _GENERIC_SIZE
                    and values[1] == done
                    and values[5] == proc_idx
                    and values[6] == proc_val
                    and values[9] == _GENERIC_CN_LEN
                ):
                    break
                kind = generic_types.get(values[11])
                if kind is None:
                    break
                cls, fields_end, first, second = kind
                if values[first] < 0 or values[second] < 0:
                    break
                append(_new(cls, values[11:fields_end]))
            offset += (len(out) - before) * _GENERIC_SIZE
            if offset >= end:
                return
            # Then one well-formed message of another size or kind, with one unpack.
            remaining = end - offset
            whole = (
                whole_get(what_unpack(buffer, offset + event_offset)[0])
                if remaining >= data_offset
                else None
            )
            if whole is not None and remaining >= whole[2]:
                cls, unpack, size, minimum_cn_len = whole
                values = unpack(buffer, offset)
                length = values[0]
                if (
                    values[1] == done
                    and size <= length <= remaining
                    and values[5] == proc_idx
                    and values[6] == proc_val
                    and minimum_cn_len <= values[9] <= length - event_offset
                ):
                    if cls is comm_event:
                        name = values[-1].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                        append(_new(cls, (*values[11:-1], name)))
                    else:
                        append(_new(cls, values[11:]))
                    offset += (length + align_mask) & ~align_mask
                    continue
        if offset >= end:
            return
        # Anything else: one message, with every check spelled out.
        if not _decode_one(buffer, offset, end, out, state, strict, start_len):
            return
        length = _NLMSGHDR.unpack_from(buffer, offset)[0]
        offset += (length + align_mask) & ~align_mask


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
                exit_code = values[_EXIT_CODE_INDEX]
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
            if -_MAX_ERRNO <= error < 0:
                code = -error
                raise OSError(code, f"{os.strerror(code)} (netlink error from the kernel)")
            if error:  # the kernel sends 0 (an ack) or a negative errno, nothing else
                _reject(strict, f"NLMSG_ERROR with error {error}", offset, out, start_len, state)
    elif kind == _NLMSG_OVERRUN:
        if state is None or strict:
            raise OverrunError(None)
        out.append(EventsLost(None))
        state.markers += 1
    else:
        _reject(strict, f"unexpected netlink message type {kind}", offset, out, start_len, state)
    return True


def decode_slots(
    buffer: Any,
    slot_size: int,
    results: Iterable[tuple[int, int]],
    senders: list[int] | None,
    out: Any,
    state: DecodeState,
    # Constants bound once as defaults: this runs once per wake-up, often for one datagram.
    whole_get: Any = _WHOLE.get,
    what_unpack: Any = _U32.unpack_from,
    generic_unpack: Any = _GENERIC.unpack_from,
    generic_types: Any = _GENERIC_TYPES,
    new: Any = _new,
) -> tuple[int, int]:
    """The connector's hot path: decode a ``recvmmsg`` batch whose datagram ``i`` sits at
    ``buffer[i * slot_size:]``; ``results`` gives (msg_flags, bytes) of each, ``senders`` each
    sender's port id (None: all were the kernel).

    Datagrams not sent by the kernel (port id 0) and truncated ones are skipped; returns how
    many of each, (foreign, truncated). The usual datagram (one well-formed event) is decoded
    inline; anything else goes through :func:`decode`.
    """
    foreign = truncated = received = 0
    append = out.append
    track, last_sequence = state.track_sequence, state.last_sequence
    mask, ack_token = state.mask, state.ack_token
    filtered = mask != _ALL
    start = -slot_size
    for flags, nbytes in results:
        start += slot_size
        if flags & _MSG_TRUNC or (senders is not None and senders[start // slot_size]):
            if flags & _MSG_TRUNC:
                truncated += 1
            else:
                foreign += 1
            continue
        values: Any = None
        if nbytes == _GENERIC_SIZE:  # the usual datagram: one whole message, one read
            generic = generic_unpack(buffer, start)
            kind = generic_types.get(generic[11])
            if (
                kind is not None
                and generic[0] == _GENERIC_SIZE
                and generic[1] == _NLMSG_DONE
                and generic[5] == _PROC_IDX
                and generic[6] == _PROC_VAL
                and generic[9] == _GENERIC_CN_LEN
                and generic[kind[2]] >= 0
                and generic[kind[3]] >= 0
            ):
                values, cls, fields_end = generic, kind[0], kind[1]
        if values is None:  # any other well-formed message, read with its exact layout
            whole = (
                whole_get(what_unpack(buffer, start + _EVENT_OFFSET)[0])
                if nbytes >= _DATA_OFFSET
                else None
            )
            if whole is None or nbytes < whole[2]:
                decode(buffer, start, start + nbytes, out, state, False)
                continue
            cls, unpack, size, minimum_cn_len = whole
            values = unpack(buffer, start)
            if not (
                values[1] == _NLMSG_DONE
                and size <= values[0] <= nbytes
                and values[5] == _PROC_IDX
                and values[6] == _PROC_VAL
                and minimum_cn_len <= values[9] <= values[0] - _EVENT_OFFSET
            ):
                decode(buffer, start, start + nbytes, out, state, False)
                continue
            fields_end = len(values)
        length = values[0]
        # The bookkeeping of _deliver, inlined here because this is the per-event hot path.
        if track:
            cpu, seq = values[12], values[7]
            last = last_sequence.get(cpu)
            last_sequence[cpu] = seq
            if last is not None and seq != (last + 1) & 0xFFFFFFFF:
                gap = (seq - last - 1) & 0xFFFFFFFF
                if gap < 0x80000000:  # a larger "gap" is reordering, not loss
                    state.lost += gap
                    append(EventsLost(gap, cpu))
                    state.markers += 1
        what = values[11]
        if what == 0 and ack_token is not None and values[8] == (ack_token + 1) & 0xFFFFFFFF:
            state.ack_error = values[14]
        elif filtered and not (
            what & mask or (what == _EXIT and mask & _NONZERO_EXIT and values[_WHOLE_EXIT_CODE])
        ):
            state.filtered += 1
        else:
            if cls is CommEvent:
                name = values[-1].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                append(new(cls, (*values[11:-1], name)))
            else:
                append(new(cls, values[11:fields_end]))
            received += 1
        if length < nbytes and (length + _ALIGN_MASK) & ~_ALIGN_MASK < nbytes:
            # More messages in this datagram.
            decode(
                buffer,
                start + ((length + _ALIGN_MASK) & ~_ALIGN_MASK),
                start + nbytes,
                out,
                state,
                False,
            )
    state.received += received
    return foreign, truncated


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
