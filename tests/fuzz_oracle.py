"""What parsing any bytes may do, shared by the hypothesis tests and the long fuzz run."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pyprocconn as pc
from pyprocconn.decode import Stream, decode

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden.json").read_text())
SEEDS = [bytes.fromhex(d["hex"]) for d in GOLDEN["datagrams"].values()]
ALLOWED = (pc.MalformedMessageError, pc.OverrunError, OSError)  # bad bytes, NLMSG_OVERRUN/ERROR


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", call(*args)
    except ALLOWED as error:
        extra = (
            [e.to_dict() for e in error.events]
            if isinstance(error, pc.MalformedMessageError)
            else []
        )
        return type(error).__name__, (str(error), extra)


def check(data: bytes, poison: bytes) -> None:
    """Every property, for one input: only allowed outcomes, nothing read past nbytes."""
    plain = outcome(pc.parse_events, data)
    poisoned = bytearray(data + poison)
    assert outcome(pc.parse_events, poisoned, len(data)) == plain  # bytes past nbytes unread

    # Zero-copy views never reach past nbytes.
    try:
        for message in pc.NetlinkMessageIter(poisoned, len(data)):
            end = message.offset + message.header.nlmsg_len
            assert end <= len(data)
            assert message.offset + len(message.payload) + pc.SIZE_NLMSGHDR <= len(data)
            if message.proc_event is not None:
                assert message.offset + 36 + 40 <= len(data)
    except pc.MalformedMessageError:
        pass

    # The connector's path: never raises for malformed input, counts what it skips.
    stream = Stream()
    out: deque[Any] = deque()
    view = memoryview(poisoned)
    try:
        decode(view, [(0, len(data))], out, stream, False)
    except OSError as error:  # only an NLMSG_ERROR from the "kernel" may raise
        assert not isinstance(error, (pc.MalformedMessageError, pc.OverrunError))
    kinds = {type(item) for item in out}
    assert kinds <= {*pc.events.EVENT_CLASSES.values(), pc.UnknownEvent, pc.EventsLost}
    if plain[0] == "MalformedMessageError":
        assert stream.counters.malformed >= 1
