"""The friendly layer follows whatever headers the kernel layer was generated from.

Written against the generated layer, not against one header generation: ``test_regenerate.py``
runs this file (with the parser and fuzz tests) against packages regenerated from the 6.1
headers and from a synthetic newer header (a new event type, a grown struct, a new macro).
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyprocconn as pc
from pyprocconn import layout
from pyprocconn.command.options import EVENT_NAMES
from pyprocconn.kernel import cn_proc
from tests import triggers
from tests.triggers import collect, of

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden.json").read_text())
EVENT_DATA: Any = layout.EVENT_DATA
live = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")


def _leaves(record: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, ctype) of every leaf of a ctypes record, every union member included."""
    for name, ctype, *_ in record._fields_:
        if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            yield from _leaves(ctype, (*path, name))
        else:
            yield (*path, name), ctype


def _offset(record: Any, path: tuple[str, ...]) -> int:
    offset = 0
    for name in path:
        offset += getattr(record, name).offset
        record = dict(record._fields_)[name]
    return offset


def _read(record: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        record = getattr(record, name)
    return record


def test_every_event_bit_of_the_headers_is_an_event_type_and_a_command_name() -> None:
    bits = {
        name.removeprefix("PROC_EVENT_"): value
        for name, value in vars(cn_proc).items()
        if name.startswith("PROC_EVENT_") and name != "PROC_EVENT_ALL"
    }
    assert {m: int(pc.EventType[m]) for m in bits} == bits
    assert int(pc.EventType.ALL) == getattr(cn_proc, "PROC_EVENT_ALL", sum(bits.values()))
    named = {name for name, value in bits.items() if value in cn_proc.EVENT_DATA_MEMBERS and value}
    assert {name.lower() for name in named} <= set(EVENT_NAMES)
    assert pc.EventType.from_name("exec") == pc.EventType.EXEC


def test_every_union_member_gives_an_event_class_with_its_fields() -> None:
    members = dict(EVENT_DATA._fields_)
    for what, member in cn_proc.EVENT_DATA_MEMBERS.items():
        cls = pc.EVENT_CLASSES[what]
        assert int(cls.TYPE) == what and cls.__name__.endswith("Event")
        leaf_names = {path[-1] for path, _ in _leaves(members[member])}
        fields = cls._fields
        assert fields[:3] == ("what", "cpu", "timestamp_ns")
        assert set(fields[3:]) <= leaf_names, (cls, fields, leaf_names)
        assert getattr(pc, cls.__name__) is cls


def _forged(what: int, member: str, sent: int) -> tuple[bytes, dict[str, Any]]:
    """A message of ``what`` carrying ``sent`` bytes of event_data, every byte set through
    the ctypes layout, and the value each leaf name holds (the oracle: ctypes, not the parser)."""
    event = cn_proc.proc_event(what=what, cpu=1, timestamp_ns=123456789)
    data = getattr(event.event_data, member)
    base = ctypes.addressof(data)
    leaves = list(_leaves(type(data)))
    for index, (path, ctype) in enumerate(leaves):
        offset = _offset(type(data), path)
        if getattr(ctype, "_type_", None) is ctypes.c_char:
            raw = f"n{index}".encode()
        else:
            size = ctypes.sizeof(ctype)
            signed = ctype(-1).value < 0
            value = -(index + 2) if signed else (1 << (8 * size - 1)) + index  # sign matters
            raw = bytes(ctype(value))
        ctypes.memmove(base + offset, raw, len(raw))
    expected: dict[str, Any] = {}
    for path, _ in leaves:  # read back through ctypes: union members share their bytes
        value = _read(data, path)
        expected[path[-1]] = value.decode() if isinstance(value, bytes) else value
    body = (bytes(event) + bytes(sent))[: layout.EVENT_HEAD_SIZE + sent]
    message = pc.kernel.connector.cn_msg(
        id=pc.kernel.connector.cb_id(idx=pc.CN_IDX_PROC, val=pc.CN_VAL_PROC), len=len(body)
    )
    total = layout.EVENT_OFFSET + len(body)
    header = pc.kernel.netlink.nlmsghdr(nlmsg_len=total, nlmsg_type=pc.NLMSG_DONE)
    return bytes(header) + bytes(message) + body, expected


@pytest.mark.parametrize("what", sorted(cn_proc.EVENT_DATA_MEMBERS))
def test_each_event_decodes_every_field_the_headers_give_it(what: int) -> None:
    member = cn_proc.EVENT_DATA_MEMBERS[what]
    full = ctypes.sizeof(dict(EVENT_DATA._fields_)[member])
    for sent in (full, ctypes.sizeof(EVENT_DATA), full + 8):  # its own size, the union's, more
        datagram, expected = _forged(what, member, sent)
        (event,) = pc.parse_events(datagram)
        assert type(event) is pc.EVENT_CLASSES[what]
        assert (event.what, event.cpu, event.timestamp_ns) == (what, 1, 123456789)
        for name in event._fields[3:]:
            assert getattr(event, name) == expected[name], (name, sent)


def test_todays_kernel_datagrams_decode_whatever_the_headers() -> None:
    """The captured 76-byte datagrams: each field the trigger knows decodes to its value; a
    field the headers add past the bytes the kernel sent is None."""
    for name, datagram in GOLDEN["datagrams"].items():
        (event,) = pc.parse_events(bytes.fromhex(datagram["hex"]))
        assert type(event).__name__ == datagram["oracle"]["type"], name
        known = datagram["oracle"]["trigger"]
        sent = len(bytes.fromhex(datagram["hex"])) - layout.DATA_OFFSET
        for field in event.SPEC.fields:
            value = getattr(event, field.name)
            if field.end > sent:
                assert value is None, (name, field.name)
            elif field.name in known:
                assert value == known[field.name], (name, field.name)


def test_a_view_never_reaches_past_the_message() -> None:
    for datagram in GOLDEN["datagrams"].values():
        data = bytearray.fromhex(datagram["hex"])
        (message,) = pc.NetlinkMessageIter(data)
        assert message.proc_event is not None
        copy = message.event_bytes < ctypes.sizeof(cn_proc.proc_event)
        assert message.proc_event_is_copy == copy


@live
def test_the_connector_subscribes_and_filters_with_these_headers() -> None:
    """Kernel-side filtering where the headers have ``proc_input``, user-space otherwise."""
    with pc.ProcConnector(events=pc.EventType.EXIT) as conn:
        assert conn.filter_mode == ("kernel" if hasattr(cn_proc, "proc_input") else "user")
        pid = triggers.exit_with(3)
        events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
        (exit_,) = of(events, pc.ExitEvent, pid)
        assert exit_.describe_status() == "exit 3"
        assert {type(e) for e in events} == {pc.ExitEvent}


def test_the_kernels_event_offset_is_only_four_aligned() -> None:
    """Documented for ctypes users: proc_event starts at byte 36 of a datagram."""
    assert layout.EVENT_OFFSET == 36 and layout.EVENT_OFFSET % 8 == 4


@live
def test_the_command_filters_in_user_space_where_the_kernel_cannot() -> None:
    """``--nonzero-exit`` and ``-e`` hold whatever the headers (the kernel filters with 6.6+
    headers; with 6.1's the command alone does, and must)."""
    from tests.test_cli import Cli, _json_for, _subscribed

    nonzero = Cli("--json", "--raw", "--nonzero-exit")
    execs = Cli("--json", "--raw", "-e", "exec")
    for command in (nonzero, execs):
        _subscribed(command.process.pid)
    zero, three = triggers.exit_with(0), triggers.exit_with(3)
    for command in (nonzero, execs):
        assert command.wait_for(lambda lines: bool(_json_for(lines, three)))
        command.finish()
    assert [r["exit_code"] for r in _json_for(nonzero.lines, three)] == [0x300]
    assert _json_for(nonzero.lines, zero) == []  # the exit 0 is filtered out
    assert {r["event"] for r in _json_for(execs.lines, three)} == {"exec"}
