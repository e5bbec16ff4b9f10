"""The one decoder: netlink messages to events, driven by tables compiled from the generated
layout for each message size the kernel actually sends.

The kernel sends ``cn_msg.len`` bytes of *its* ``struct proc_event``: fewer than the header's
struct (an older kernel), or more (a newer one). A message is valid when its lengths are
consistent and the fixed head fits; each field lying wholly within the bytes received is decoded,
the others are None, extra bytes are ignored. Every length is checked against the bytes received
before anything is read, so nothing reads past them whatever the bytes say.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyprocconn import layout
from pyprocconn.errors import MalformedMessageError, OverrunError
from pyprocconn.events import EVENT_CLASSES, EventsLost, ProcEvent, UnknownEvent
from pyprocconn.kernel import cn_proc, connector, netlink

HEAD = struct.Struct(layout.HEAD_FORMAT)
_NLMSGHDR = struct.Struct(layout.NLMSGHDR_FORMAT)
_NLMSGERR_ERROR = struct.Struct(layout.NLMSGERR_ERROR_FORMAT)
_U32 = struct.Struct("=I")
# Positions in an unpacked message (head first, then the event's fields), named from the layout.
_LEN = layout.head_index("nlmsg_len")
_TYPE = layout.head_index("nlmsg_type")
_IDX, _VAL = layout.head_index("idx"), layout.head_index("val")
_SEQ, _ACK = layout.head_index("seq"), layout.head_index("ack")
_CN_LEN = layout.head_index("len")
_WHAT, _CPU = layout.head_index("what"), layout.head_index("cpu")
_TIMESTAMP = layout.head_index("timestamp_ns")
_FIELDS = len(layout.HEAD_NAMES)  # the event's own fields start here
_EVENT_OFFSET, _DATA_OFFSET = layout.EVENT_OFFSET, layout.DATA_OFFSET
_HEAD_BYTES = layout.EVENT_HEAD_SIZE
_ALIGN = layout.NLMSG_ALIGN_MASK  # layout.nlmsg_align, inlined on the hot path
_DONE, _NOOP = netlink.NLMSG_DONE, netlink.NLMSG_NOOP
_ERROR, _OVERRUN = netlink.NLMSG_ERROR, netlink.NLMSG_OVERRUN
_PROC_IDX, _PROC_VAL = connector.CN_IDX_PROC, connector.CN_VAL_PROC
_ALL, _EXIT, _NONZERO_EXIT = layout.ALL_EVENTS, layout.EXIT_BIT, layout.NONZERO_EXIT_BIT
_MAX_ERRNO = 4095  # the kernel's errno values are 1..4095
_MAX_PLANNED = layout.LARGEST_MESSAGE  # longer: not the connector's, never compiled
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_new: Any = tuple.__new__  # builds an event from a tuple without a Python-level __new__


def decode_name(raw: bytes) -> str:
    """A kernel name (``char[16]``, NUL-padded) as text, the way Python gives OS names
    (``os.fsdecode``: a byte that is not UTF-8 becomes a lone surrogate); ``os.fsencode`` gives
    the kernel's bytes back."""
    return raw.split(b"\0", 1)[0].decode(_FS_ENCODING, _FS_ERRORS)  # os.fsdecode, inlined


@dataclass(frozen=True, slots=True)
class _Kind:
    """How to build one event type's object from a message of one size."""

    cls: type[ProcEvent]
    unpack: Callable[[Any, int], tuple[Any, ...]]  # the whole message, read exactly
    pad: tuple[None, ...]  # the fields the kernel did not send
    texts: tuple[int, ...]  # positions of char arrays among the event's values, to decode


def _kind(cls: type[ProcEvent], sent: int) -> tuple[_Kind, tuple[Any, ...] | None]:
    """How to build ``cls`` from a message carrying ``sent`` bytes of event_data: its exact
    :class:`_Kind`, and how the hot path builds it from the size's signed 32-bit words, or None
    when they cannot read it: (class, end of its fields among the words, the positions of up to
    two unsigned fields that must not come out negative, the fields not sent as None)."""
    fitting = [f for f in cls.SPEC.fields if f.end <= sent]
    parts, position = [], 0
    for item in fitting:
        parts.append("x" * (item.offset - position) + item.code)
        position = item.end
    fmt = layout.HEAD_FORMAT + "".join(parts) + "x" * (sent - position)
    texts = tuple(_FIELDS - _WHAT + i for i, f in enumerate(fitting) if f.is_text)
    pad = (None,) * (len(cls.SPEC.fields) - len(fitting))
    whole = struct.Struct(fmt)
    arity = len(whole.unpack(bytes(whole.size))[_WHAT:]) + len(pad)
    if arity != len(cls._fields):
        raise TypeError(f"{cls.__name__}: the layout gives {arity} values for its fields")
    exact = _Kind(cls, whole.unpack_from, pad, texts)
    # The words read it when every field is one, in order from offset 0, and at most two are
    # unsigned (checked not to come out negative).
    codes = [f.code for f in fitting]
    unsigned = [_FIELDS + i for i, code in enumerate(codes) if code == "I"]
    in_words = all(f.offset == 4 * i for i, f in enumerate(fitting))
    if not (set(codes) <= {"i", "I"} and len(unsigned) <= 2 and in_words):
        return exact, None
    first, second = [*unsigned, _WHAT, _WHAT][:2]  # what is unsigned: a harmless filler
    return exact, (cls, _FIELDS + len(fitting), first, second, pad)


# Everything compiled for messages of one nlmsg_len (= head + cn_msg.len). A plain tuple: the hot
# path unpacks it in one specialised step (a NamedTuple would not be, on 3.11). In order:
# - length, aligned (padded to NLMSG_ALIGNTO: where the next message starts), cn_len;
# - the words reader (the message as signed 32-bit words after the head: one read, any type),
#   and the same over back-to-back messages (iter_unpack);
# - what -> how the words build it (for the types they can read), what -> its exact _Kind.
_Plan = tuple[int, int, int, Any, Any, dict[int, tuple[Any, ...]], dict[int, _Kind]]


def _plan(length: int) -> _Plan:
    sent = length - _DATA_OFFSET
    aligned = (length + _ALIGN) & ~_ALIGN
    words = struct.Struct(layout.HEAD_FORMAT + "i" * (sent // 4) + "x" * (sent % 4))
    # Runs of back-to-back messages, when no alignment padding separates them.
    runs = words.iter_unpack if aligned == length else _no_runs
    kinds = {what: _kind(cls, sent) for what, cls in EVENT_CLASSES.items()}
    from_words = {what: fast for what, (_, fast) in kinds.items() if fast is not None}
    exact = {what: kind for what, (kind, _) in kinds.items()}
    cn_len = length - _EVENT_OFFSET
    return length, aligned, cn_len, words.unpack_from, runs, from_words, exact


def _no_runs(data: Any) -> tuple[()]:
    return ()


class _Plans(dict[int, "_Plan | None"]):
    def __missing__(self, length: int) -> _Plan | None:
        plan = _plan(length) if _DATA_OFFSET <= length <= _MAX_PLANNED else None
        if len(self) < 64:  # a hostile stream of odd sizes cannot grow it without bound
            self[length] = plan
        return plan


_PLANS = _Plans()


@dataclass
class Counters:
    """What a connector counts, in one place (:class:`~pyprocconn.Stats` is read from it)."""

    received: int = 0  # events delivered (acks of other listeners included)
    lost: int = 0  # events the kernel dropped, from per-CPU sequence gaps
    overruns: int = 0  # times the kernel reported a full receive buffer
    malformed: int = 0  # messages skipped as malformed (and datagrams cut short)
    foreign: int = 0  # datagrams dropped because the kernel did not send them
    filtered: int = 0  # events dropped by user-space filtering


@dataclass
class Stream:
    """The connector's decoding state: what it wants, where each CPU's sequence stands."""

    mask: int = _ALL  # events outside it are dropped (user-space filtering)
    track_sequence: bool = True  # per-CPU gaps count lost events (all-events only)
    counters: Counters = field(default_factory=Counters)
    # Called with (cn_msg.ack, err) for each ack; True when it answers the caller's request,
    # which then is not delivered.
    on_ack: Callable[[int, int], bool] | None = None
    last_sequence: dict[int, int] = field(default_factory=dict)
    markers: int = 0  # EventsLost items appended and not yet taken by the reader

    def lose(self, out: Any, lost: int | None, cpu: int | None = None) -> None:
        """Mark a loss in the stream: ``lost`` events (None: an unknown number)."""
        out.append(EventsLost(lost, cpu))
        self.markers += 1
        if lost is None:
            self.counters.overruns += 1
        else:
            self.counters.lost += lost


def _make_decode() -> Any:  # noqa: C901, PLR0915 - builds the measured loop below
    """``decode``, with the constants of its per-event path as closure cells (faster to read
    than globals, and free per call, unlike default arguments; each costs a little per call,
    so the rarely used ones stay globals)."""
    at_len, at_type, at_cn_len, at_what = _LEN, _TYPE, _CN_LEN, _WHAT
    at_idx, at_val, at_cpu, at_seq = _IDX, _VAL, _CPU, _SEQ
    done_type, proc_idx, proc_val = _DONE, _PROC_IDX, _PROC_VAL
    msg_trunc, new = socket.MSG_TRUNC.value, _new
    usual = _plan(_EVENT_OFFSET + ctypes.sizeof(cn_proc.proc_event))  # the headers' kernel's

    def decode(  # noqa: C901, PLR0912, PLR0913, PLR0915, PLR0917 - the measured loop, inlined
        buffer: Any,
        datagrams: Iterable[tuple[int, int]],
        out: Any,
        stream: Stream | None = None,
        strict: bool = True,
        slot_size: int = 0,
        senders: list[int] | None = None,
    ) -> None:
        """Append the events of the datagrams in ``buffer`` to ``out``. ``datagrams`` gives
        (msg_flags, bytes received) of each; datagram ``i`` starts at ``i * slot_size``.
        ``senders``: each one's netlink port id (None: all were the kernel; given, it needs
        ``slot_size`` > 0, which gives each datagram's index); a datagram another sender sent, or
        one cut short (``MSG_TRUNC``), is skipped and counted in the stream.

        Without a stream (pure parsing) every event is appended and ``NLMSG_OVERRUN`` raises
        :class:`OverrunError`. With one, the connector's bookkeeping applies: sequence gaps append
        :class:`EventsLost` before the event that revealed them, acks go to ``stream.on_ack``,
        unwanted events are filtered, all counted. ``strict`` raises
        :class:`MalformedMessageError` at the first bad message; otherwise it is counted and
        skipped.
        """
        if senders is not None and slot_size <= 0:
            raise ValueError("senders need slot_size > 0: datagram i starts at i * slot_size")
        first_event = len(out)
        append = out.append
        plan = usual
        length, aligned, cn_len, read_words, _, from_words, exact = plan
        # The stream's state, in locals for the per-event path; counts written back at the end.
        parsing = stream is None
        filtered = 0
        if stream is not None:
            track, last_sequence = stream.track_sequence, stream.last_sequence
            mask, on_ack, lose = stream.mask, stream.on_ack, stream.lose
            filtering = mask != _ALL
            markers_before = stream.markers
        try:
            start = -slot_size
            for flags, nbytes in datagrams:
                start += slot_size
                # (datagram i starts at i * slot_size: start // slot_size is its index)
                if flags & msg_trunc or (senders is not None and senders[start // slot_size]):
                    if stream is not None:
                        if flags & msg_trunc:
                            stream.counters.malformed += 1
                        else:
                            stream.counters.foreign += 1
                    continue
                offset, remaining = start, nbytes
                # (No "while remaining > 0": a comparison before a long jump is left generic
                # on Python 3.11. The end is found below, as a planned size is never 0.)
                while True:
                    if remaining != length:  # else one message of the size planned last
                        if remaining <= 0:
                            break
                        # A span is usually one message: its size finds the plan without a read.
                        found = _PLANS.get(remaining)
                        if found is None and remaining >= _DATA_OFFSET:
                            found = _PLANS[_U32.unpack_from(buffer, offset)[0]]
                        if found is not None:
                            plan = found
                            length, aligned, cn_len, read_words, _, from_words, exact = plan
                    event = None  # (None: not decoded by the usual path)
                    if remaining == length:  # the usual: one message of a planned size is left
                        values = read_words(buffer, offset)
                        if (
                            values[at_len] == length
                            and values[at_type] == done_type
                            and values[at_idx] == proc_idx
                            and values[at_val] == proc_val
                            and values[at_cn_len] == cn_len
                        ):
                            fast = from_words.get(values[at_what])
                            if fast is not None:
                                cls, end_of_fields, first, second, pad = fast
                                if values[first] >= 0 and values[second] >= 0:  # (u32 as i32)
                                    fields = values[at_what:end_of_fields]
                                    # (pad: the fields an older kernel does not send)
                                    event = new(cls, fields + pad if pad else fields)
                            if event is None and (kind := exact.get(values[at_what])):
                                # A comm's name, a thread's exit (exit_signal -1 as u32): the
                                # same checked message, read with its exact layout.
                                values = kind.unpack(buffer, offset)
                                event = _build(kind, values)
                            if event is not None:
                                remaining = 0  # the datagram is done
                    if event is None:  # anything else: one message, every check spelled out
                        # (The plan may be another size's: it reads only whole messages of
                        # its own length, and _read_run keeps only those that say so.)
                        if parsing and remaining >= 2 * aligned:
                            taken = _read_run(buffer, offset, remaining, plan, out) * aligned
                            if taken:
                                offset, remaining = offset + taken, remaining - taken
                                continue
                        step, values, event = _decode_other(
                            buffer, offset, offset + remaining, out, stream, strict, first_event
                        )
                        if step <= 0:
                            break
                        offset, remaining = offset + step, remaining - step
                        if event is None:
                            continue
                    if parsing:
                        append(event)
                        continue
                    # The connector's bookkeeping, the one copy.
                    what = values[at_what]
                    if track:
                        cpu, seq = values[at_cpu], values[at_seq]
                        last = last_sequence.get(cpu)
                        last_sequence[cpu] = seq
                        if last is not None and seq - last != 1:  # (also a wrap to 0: gap 0)
                            gap = (seq - last - 1) & 0xFFFFFFFF
                            if 0 < gap < 0x80000000:  # a larger "gap" is reordering, not loss
                                lose(out, gap, cpu)
                    if not what and on_ack is not None and on_ack(values[_ACK], event.err):
                        continue
                    if filtering and not (
                        what & mask
                        or (what == _EXIT and mask & _NONZERO_EXIT and _exit_code(event))
                    ):
                        filtered += 1
                        continue
                    append(event)
        finally:
            if stream is not None:  # delivered: what was appended, less the loss markers
                counters = stream.counters
                markers = stream.markers - markers_before
                counters.received += len(out) - first_event - markers
                if filtered:
                    counters.filtered += filtered

    return decode


decode = _make_decode()


def _read_run(buffer: Any, offset: int, remaining: int, plan: _Plan, out: list[Any]) -> int:
    """Pure parsing of a recording: the events of a run of same-size messages at ``offset``,
    read in one go until one is not the usual; how many were taken."""
    length, aligned, cn_len, _, read_runs, from_words, _ = plan
    append, new, before = out.append, _new, len(out)
    at_len, at_type, at_idx, at_val, at_cn_len, at_what = _LEN, _TYPE, _IDX, _VAL, _CN_LEN, _WHAT
    done_type, proc_idx, proc_val = _DONE, _PROC_IDX, _PROC_VAL
    for values in read_runs(memoryview(buffer)[offset : offset + remaining // aligned * aligned]):
        fast = from_words.get(values[at_what])
        if (
            fast is None
            or values[at_len] != length
            or values[at_type] != done_type
            or values[at_idx] != proc_idx
            or values[at_val] != proc_val
            or values[at_cn_len] != cn_len
        ):
            break
        cls, end_of_fields, first, second, pad = fast
        if values[first] < 0 or values[second] < 0:
            break
        fields = values[at_what:end_of_fields]
        append(new(cls, fields + pad if pad else fields))
    return len(out) - before


def _exit_code(event: Any) -> int:
    return int(getattr(event, "exit_code", 0) or 0)


def _build(kind: _Kind, values: tuple[Any, ...]) -> ProcEvent:
    fields = values[_WHAT:]
    if kind.texts:
        decoded = list(fields)
        for position in kind.texts:
            decoded[position] = decode_name(decoded[position])
        fields = tuple(decoded)
    event: ProcEvent = _new(kind.cls, fields + kind.pad if kind.pad else fields)
    return event


def _decode_other(  # noqa: C901, PLR0913, PLR0917 - its rare branch: the same state
    buffer: Any,
    offset: int,
    end: int,
    out: Any,
    stream: Stream | None,
    strict: bool,
    first_event: int,
) -> tuple[int, Any, Any]:
    """One message that is not the usual: (bytes to step, its values or None, its event).

    A step of 0 means the rest of the buffer is unreadable.
    """

    def reject(message: str) -> None:
        if strict:
            events = [e for e in out[first_event:] if isinstance(e, ProcEvent)]
            raise MalformedMessageError(f"{message} (at byte {offset})", offset, events)
        if stream is not None:
            stream.counters.malformed += 1

    remaining = end - offset
    if remaining < _NLMSGHDR.size:
        reject(f"truncated netlink header: {remaining} bytes")
        return 0, None, None
    length, kind = _NLMSGHDR.unpack_from(buffer, offset)[:2]
    if length < _NLMSGHDR.size or length > remaining:
        reject(f"nlmsg_len {length} outside [{_NLMSGHDR.size}, {remaining}]")
        return 0, None, None
    step = (length + _ALIGN) & ~_ALIGN
    if kind == _DONE:
        values, event, problem = _connector_message(buffer, offset, length)
        if problem:
            reject(problem)
        return step, values, event
    if kind == _ERROR:
        if length < _NLMSGHDR.size + _NLMSGERR_ERROR.size:
            reject("truncated NLMSG_ERROR")
        else:
            (error,) = _NLMSGERR_ERROR.unpack_from(buffer, offset + _NLMSGHDR.size)
            if -_MAX_ERRNO <= error < 0:
                raise OSError(-error, f"{os.strerror(-error)} (netlink error from the kernel)")
            if error:  # the kernel sends 0 (an ack) or a negative errno, nothing else
                reject(f"NLMSG_ERROR with error {error}")
    elif kind == _OVERRUN:
        if stream is None or strict:
            events = [e for e in out[first_event:] if isinstance(e, ProcEvent)]
            raise OverrunError(None, events=events)
        stream.lose(out, None)
    elif kind != _NOOP:
        reject(f"unexpected netlink message type {kind}")
    return step, None, None


def _connector_message(buffer: Any, offset: int, length: int) -> tuple[Any, Any, str]:
    """A connector message with any valid sizes: (values, event, "") or (None, None, why)."""
    if length < _DATA_OFFSET:
        return None, None, f"connector message of {length} bytes is too short"
    head = HEAD.unpack_from(buffer, offset)
    if (head[_IDX], head[_VAL]) != (_PROC_IDX, _PROC_VAL):
        return None, None, f"foreign connector id {head[_IDX]}.{head[_VAL]}"
    cn_len = head[_CN_LEN]
    if cn_len < _HEAD_BYTES or _EVENT_OFFSET + cn_len > length:
        return None, None, f"cn_msg.len {cn_len} does not fit nlmsg_len {length}"
    cls = EVENT_CLASSES.get(head[_WHAT])
    if cls is None:
        data = bytes(buffer[offset + _DATA_OFFSET : offset + _EVENT_OFFSET + cn_len])
        return head, _new(UnknownEvent, (head[_WHAT], head[_CPU], head[_TIMESTAMP], data)), ""
    plan = _PLANS[_EVENT_OFFSET + cn_len]  # the size the kernel sent, whatever the padding
    kind = plan[-1][head[_WHAT]] if plan is not None else _kind(cls, cn_len - _HEAD_BYTES)[0]
    values = kind.unpack(buffer, offset)
    return values, _build(kind, values), ""
