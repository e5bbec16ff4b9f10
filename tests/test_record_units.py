"""What the decoder says about bytes it is handed (golden datagrams the kernel sent, cut or
relabelled the way an older kernel or another connector would): no socket, no privilege."""

from __future__ import annotations

import struct
import sys
from typing import Any

import pytest

import pyprocconn as pc
from pyprocconn import layout
from pyprocconn.decode import Stream, decode
from tests.test_parse import DATAGRAMS, GOLDEN, golden

pytestmark = pytest.mark.skipif(
    sys.byteorder != GOLDEN["byteorder"], reason="golden datagrams are in the other byte order"
)
_JUNK = 0xA5  # what lies in the buffer past the bytes received: never to be read
_CN_ID = layout.CN_MSG_OFFSET  # cn_msg.id.idx, then cn_msg.id.val (u32 each)
_CN_LEN = layout.CN_MSG_OFFSET + 16  # cn_msg.len (u16), after id (8), seq (4), ack (4)


def _older_kernel(name: str, sent: int) -> bytes:
    """The golden datagram as a kernel whose ``struct proc_event`` ends ``sent`` bytes into
    ``event_data`` would send it: ``cn_msg.len`` and ``nlmsg_len`` say so."""
    data = bytearray(golden(name)[: layout.DATA_OFFSET + sent])
    struct.pack_into("=I", data, 0, len(data))
    struct.pack_into("=H", data, _CN_LEN, layout.EVENT_HEAD_SIZE + sent)
    return bytes(data)


def _decodings(datagram: bytes, received: int) -> dict[str, list[Any]]:
    """The datagram's first ``received`` bytes decoded on each path, junk in the buffer past
    them (a reader that goes past the bytes received reads junk, not zeros or an error)."""
    buffer = bytearray(datagram[:received]) + bytes([_JUNK]) * 64
    through_stream: list[Any] = []
    decode(buffer, [(0, received)], through_stream, Stream())
    return {"parse_events": pc.parse_events(buffer, received), "stream": through_stream}


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_a_field_the_kernel_sent_only_part_of_is_none(name: str) -> None:
    """The compatibility rule at every cut through ``event_data``: a field wholly inside the
    bytes sent has the kernel's value, any other (half sent too) is None, on every path, for
    messages ending unaligned (the usual path) and padded to alignment (the general one)."""
    (whole,) = pc.parse_events(golden(name))
    full = whole.to_dict()
    for sent in range(0, 25):
        datagram = _older_kernel(name, sent)
        expected = {
            **full,
            **{f.name: None for f in type(whole).SPEC.fields if f.end > sent},
        }
        padded = (len(datagram) + 3) & ~3
        for received in sorted({len(datagram), padded}):
            for path, events in _decodings(datagram + bytes(3), received).items():
                assert [e.to_dict() for e in events] == [expected], (sent, received, path)


@pytest.mark.parametrize("where", ["idx", "val"])
@pytest.mark.parametrize("name", ["fork", "exit", "comm", "exit_sigkill"])
def test_another_connectors_message_is_no_event(name: str, where: str) -> None:
    """A message of the usual size and shape from another connector (``cn_msg.id`` not
    {CN_IDX_PROC, CN_VAL_PROC}) is not a process event: refused when parsing, dropped and
    counted by a connector's stream."""
    data = bytearray(golden(name))
    offset = _CN_ID + (0 if where == "idx" else 4)
    struct.pack_into("=I", data, offset, struct.unpack_from("=I", data, offset)[0] + 1)
    with pytest.raises(pc.MalformedMessageError, match="foreign connector id"):
        pc.parse_events(bytes(data))
    stream = Stream()
    out: list[Any] = []
    decode(data, [(0, len(data))], out, stream, strict=False)
    assert out == [] and stream.counters.malformed == 1 and stream.counters.received == 0
    assert len(pc.parse_events(golden(name))) == 1  # the same bytes, unrelabelled: one event
