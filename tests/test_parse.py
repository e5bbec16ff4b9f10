"""The pure parser and the zero-copy iterator on golden datagrams captured from the kernel.

Unprivileged: bytes only. ``tests/fixtures/golden.json`` is written by
``python -m tests.fixtures.capture_golden`` (as root), which records kernel and architecture and,
beside each datagram, an oracle known without the decoder: the values its trigger used, and
cpu/timestamp_ns read through the generated ctypes layouts, within bounds taken at capture.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

import pyprocconn as pc
from pyprocconn.decode import Stream, decode
from pyprocconn.kernel import netlink
from tests.fixtures import capture_golden

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden.json").read_text())
DATAGRAMS: dict[str, dict[str, Any]] = GOLDEN["datagrams"]
pytestmark = pytest.mark.skipif(
    sys.byteorder != GOLDEN["byteorder"], reason="golden datagrams are in the other byte order"
)


def golden(name: str) -> bytes:
    return bytes.fromhex(DATAGRAMS[name]["hex"])


def _message(kind: int, payload: bytes = b"") -> bytes:
    header = netlink.nlmsghdr(nlmsg_len=pc.SIZE_NLMSGHDR + len(payload), nlmsg_type=kind)
    padding: int = pc.nlmsg_align(len(payload)) - len(payload)
    return bytes(header) + payload + b"\0" * padding


def expected(name: str, sent: int = 24) -> dict[str, Any]:
    """What ``DATAGRAMS[name]`` must decode to, every field, without pyprocconn's decoder.

    The kernel-known fields are what the trigger did (``oracle.trigger``); cpu and timestamp_ns,
    which only the kernel knows, are read here from the bytes through the generated ctypes layouts.
    """
    reading = capture_golden.read_datagram(golden(name))
    fields = {
        **DATAGRAMS[name]["oracle"]["trigger"],
        "cpu": reading.cpu,
        "timestamp_ns": reading.timestamp_ns,
    }
    # Headers newer than the kernel may give the event more fields: the kernel did not send
    # them (None), or sent zero bytes for them (``sent``: bytes of event_data in the datagram).
    type_name = DATAGRAMS[name]["oracle"]["type"]
    cls = next(c for c in pc.EVENT_CLASSES.values() if c.__name__ == type_name)
    for field in cls.SPEC.fields:
        fields.setdefault(field.name, 0 if field.end <= sent else None)
    return fields


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_golden_datagram_decodes_to_what_the_trigger_did(name: str) -> None:
    data = golden(name)
    assert len(data) == pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG + 40
    (event,) = pc.parse_events(data)
    assert type(event).__name__ == DATAGRAMS[name]["oracle"]["type"]
    assert event.to_dict() == expected(name)  # the same fields, each with the oracle's value


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_golden_datagram_decodes_to_the_same_on_every_decoding_path(name: str) -> None:
    """The usual path, the general one (a message padded past its event), the connector's
    stream, and a newer kernel's longer event on each."""
    data = golden(name)
    longer = bytearray(data + bytes(8))  # a proc_event 8 bytes longer: structs grow at the end
    struct.pack_into("=I", longer, 0, len(longer))  # nlmsg_len
    struct.pack_into("=H", longer, 32, 48)  # cn_msg.len
    padded = bytearray(data + bytes(4))  # nlmsg_len past the event: read the general way
    struct.pack_into("=I", padded, 0, len(padded))
    paths: dict[str, list[Any]] = {}
    for label, datagram in (("usual", data), ("longer", longer), ("general", padded)):
        paths[f"parse_events, {label}"] = pc.parse_events(datagram)
        paths[f"stream, {label}"] = []
        decode(bytearray(datagram), [(0, len(datagram))], paths[f"stream, {label}"], Stream())
    for label, events in paths.items():
        assert [type(e).__name__ for e in events] == [DATAGRAMS[name]["oracle"]["type"]], label
        sent = 32 if "longer" in label else 24
        assert [e.to_dict() for e in events] == [expected(name, sent)], label


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_golden_oracle_agrees_with_the_bytes_read_through_ctypes(name: str) -> None:
    """The fixture itself: the kernel's bytes carry the trigger's values and fit the bounds."""
    assert capture_golden.check(DATAGRAMS[name]) == []


def test_golden_fields_carry_what_the_triggers_did() -> None:
    """The trigger values spelled out, so the oracle cannot drift from what capture_golden did."""
    events = {name: pc.parse_events(golden(name))[0].to_dict() for name in DATAGRAMS}
    me = GOLDEN["capture"]["capturer_pid"]
    assert {name: e["what"] for name, e in events.items()} == {
        "ack": pc.PROC_EVENT_NONE,
        "fork": pc.PROC_EVENT_FORK,
        "exec": pc.PROC_EVENT_EXEC,
        "exit": pc.PROC_EVENT_EXIT,
        "exit_sigkill": pc.PROC_EVENT_EXIT,
        "exit_sigabrt": pc.PROC_EVENT_EXIT,
        "uid": pc.PROC_EVENT_UID,
        "gid": pc.PROC_EVENT_GID,
        "sid": pc.PROC_EVENT_SID,
        "comm": pc.PROC_EVENT_COMM,
        "ptrace_attach": pc.PROC_EVENT_PTRACE,
        "ptrace_detach": pc.PROC_EVENT_PTRACE,
        "coredump": pc.PROC_EVENT_COREDUMP,
    }
    assert events["ack"]["err"] == 0
    assert capture_golden.read_datagram(golden("ack")).cn_msg["ack"] == capture_golden.TOKEN + 1
    assert (events["uid"]["ruid"], events["uid"]["euid"]) == (2000, 2001)
    assert (events["gid"]["rgid"], events["gid"]["egid"]) == (1000, 1001)
    assert events["uid"]["process_pid"] == events["gid"]["process_pid"]
    assert events["comm"]["comm"] == "golden-comm"
    assert events["exit"]["exit_code"] == 0x300  # exit(3)
    assert events["exit_sigkill"]["exit_code"] == signal.SIGKILL
    assert events["exit_sigabrt"]["exit_code"] == signal.SIGABRT  # RLIMIT_CORE 0: no 0x80
    assert events["ptrace_attach"]["tracer_pid"] == events["ptrace_attach"]["tracer_tgid"] == me
    assert events["ptrace_detach"]["tracer_pid"] == events["ptrace_detach"]["tracer_tgid"] == 0
    assert events["ptrace_attach"]["process_pid"] == events["ptrace_detach"]["process_pid"]
    child = events["fork"]["child_pid"]
    assert child == events["exec"]["process_pid"] == events["exit"]["process_pid"]
    assert events["coredump"]["process_pid"] == events["exit_sigabrt"]["process_pid"]
    for name, event in events.items():
        if "process_pid" in event:
            assert event["process_tgid"] == event["process_pid"], name  # single-threaded
        if "parent_pid" in event:
            assert event["parent_pid"] == event["parent_tgid"] == me, name
        if name.startswith("exit"):
            assert event["exit_signal"] == signal.SIGCHLD, name


def test_several_messages_in_one_buffer_with_noop_and_ack_error_zero() -> None:
    names = ["fork", "exec", "exit"]
    data = golden(names[0]) + _message(pc.NLMSG_NOOP) + golden(names[1])
    data += _message(pc.NLMSG_ERROR, struct.pack("=i", 0) + bytes(16)) + golden(names[2])
    assert [e.to_dict() for e in pc.parse_events(data)] == [expected(n) for n in names]


def test_nlmsg_error_becomes_oserror_and_overrun_becomes_overrun_error() -> None:
    error = _message(pc.NLMSG_ERROR, struct.pack("=i", -errno.EPERM) + bytes(16))
    with pytest.raises(PermissionError):
        pc.parse_events(error)
    for nonsense in (-(2**31), 5):
        with pytest.raises(pc.MalformedMessageError, match=f"NLMSG_ERROR with error {nonsense}"):
            pc.parse_events(_message(pc.NLMSG_ERROR, struct.pack("=i", nonsense) + bytes(16)))
    with pytest.raises(pc.OverrunError) as caught:
        pc.parse_events(_message(pc.NLMSG_OVERRUN))
    assert caught.value.lost is None


def test_nothing_past_nbytes_is_read() -> None:
    data = golden("exit")
    poisoned = bytearray(data + b"\xff" * 200)
    assert pc.parse_events(poisoned, len(data)) == pc.parse_events(data)
    with pytest.raises(pc.MalformedMessageError):
        pc.parse_events(poisoned, len(data) - 1)  # nlmsg_len now exceeds what was received


def _patched(name: str, offset: int, fmt: str, value: int) -> bytearray:
    data = bytearray(golden(name))
    struct.pack_into(fmt, data, offset, value)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (golden("fork")[:10], "truncated netlink header"),
        (_patched("fork", 0, "=I", 8), "nlmsg_len 8 outside"),
        (_patched("fork", 0, "=I", 200), "nlmsg_len 200 outside"),
        (_patched("fork", 16, "=I", 7), "foreign connector id 7.1"),
        (_patched("fork", 32, "=H", 41), "cn_msg.len 41 does not fit"),
        (_patched("fork", 32, "=H", 12), "cn_msg.len 12 does not fit"),  # no whole head
        (_patched("fork", 4, "=H", 0x20), "unexpected netlink message type 32"),
        (_message(pc.NLMSG_DONE, bytes(20)), "connector message of 36 bytes is too short"),
    ],
)
def test_malformed_messages_raise_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(pc.MalformedMessageError, match=message) as caught:
        pc.parse_events(data)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, pc.Error)


def test_a_malformed_message_keeps_the_events_before_it() -> None:
    data = golden("fork") + golden("exec")[:50]
    with pytest.raises(pc.MalformedMessageError) as caught:
        pc.parse_events(data)
    assert caught.value.offset == len(golden("fork"))
    assert [e.to_dict() for e in caught.value.events] == [expected("fork")]


def test_unknown_event_type_keeps_its_raw_data() -> None:
    data = _patched("exec", 36, "=I", 0x10000000)  # a bit no header generation uses
    (event,) = pc.parse_events(data)
    assert isinstance(event, pc.UnknownEvent) and event.what == 0x10000000
    assert event.data == golden("exec")[52:76]


def test_comm_that_is_not_utf8_round_trips_like_an_os_name() -> None:
    """os.fsdecode's convention: undecodable bytes become lone surrogates, os.fsencode gives
    the kernel's bytes back, and a name spelling a backslash escape stays distinct."""
    data = bytearray(golden("comm"))
    data[60:64] = b"\xff\xfeab"
    (event,) = pc.parse_events(data)
    assert isinstance(event, pc.CommEvent)
    assert os.fsencode(event.comm).startswith(b"\xff\xfeab")
    assert event.comm.startswith("\udcff\udcfeab")
    data[60:64] = b"\\xff"
    (literal,) = pc.parse_events(data)
    assert (
        isinstance(literal, pc.CommEvent)
        and literal.comm.startswith("\\xff")
        and literal.comm != event.comm
    )


def test_exit_status_helpers() -> None:
    def exit_event(code: int) -> pc.ExitEvent:
        return pc.ExitEvent(pc.PROC_EVENT_EXIT, 0, 0, 1, 1, code, 17, 0, 0)

    assert exit_event(0x300).describe_status() == "exit 3"
    assert exit_event(0x9).describe_status() == "killed by SIGKILL"
    core = exit_event(0x86)
    assert (core.term_signal, core.core_dumped) == (signal.SIGABRT, True)
    assert core.describe_status() == "killed by SIGABRT (core dumped)"


def test_message_iterator_gives_zero_copy_views() -> None:
    buffer = bytearray(golden("exit") + golden("comm"))
    messages = list(pc.NetlinkMessageIter(buffer, len(buffer)))
    assert [m.offset for m in messages] == [0, 76]
    first = messages[0]
    assert first.header.nlmsg_len == 76 and first.header.nlmsg_pid == 0
    assert first.cn_msg is not None and first.proc_event is not None
    assert (first.cn_msg.id.idx, first.cn_msg.id.val) == (pc.CN_IDX_PROC, pc.CN_VAL_PROC)
    assert first.proc_event.event_data.exit.exit_code == 0x300
    assert len(first.payload) == 60
    buffer[pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG + 16 + pc.EXIT_CODE] = 0x05
    # A view sees the change; headers whose struct is longer than the kernel's give a copy.
    changed = 0x300 if first.proc_event_is_copy else 0x305
    assert first.proc_event.event_data.exit.exit_code == changed
    assert ctypes.addressof(first.header) == ctypes.addressof(
        (ctypes.c_char * 1).from_buffer(buffer)
    )
    assert messages[1].proc_event is not None
    assert messages[1].proc_event.event_data.comm.comm == b"golden-comm"


def test_message_iterator_checks_lengths_before_making_views() -> None:
    with pytest.raises(pc.MalformedMessageError):
        list(pc.NetlinkMessageIter(bytearray(golden("fork")), 40))
    readonly = golden("fork")  # read-only input is copied once, then viewed
    assert [m.header.nlmsg_len for m in pc.NetlinkMessageIter(readonly)] == [76]


def test_seed_names_are_computed_from_the_generated_layout() -> None:
    assert pc.PROC_EVENT_HEADER_SIZE == 16 and pc.SIZE_NLMSGHDR == 16 and pc.SIZE_CN_MSG == 20
    assert pc.nlmsg_hdrlen() == netlink.NLMSG_HDRLEN and pc.nlmsg_length(40) == 56
    assert pc.nlmsg_align(77) == 80 and pc.SOL_NETLINK == 270
    assert (pc.EXIT_CODE, pc.EXIT_SIGNAL, pc.COMM_DATA, pc.ID_EUID_EGID) == (8, 12, 8, 12)
    every = getattr(pc.kernel.cn_proc, "PROC_EVENT_ALL", int(pc.EventType.ALL))  # 6.6+ only
    assert int(pc.EventType.ALL) == every and int(pc.EventType.EXIT) == 0x80000000


def test_an_older_kernels_shorter_event_gives_none_for_the_fields_it_did_not_send() -> None:
    """The kernel's ABI rule: structs grow at the end, and cn_msg.len says how much was sent.
    A fork event of 20 bytes carries what, cpu, timestamp_ns and parent_pid only."""
    data = bytearray(golden("fork")[: pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG + 20])
    struct.pack_into("=I", data, 0, len(data))  # nlmsg_len
    struct.pack_into("=H", data, 32, 20)  # cn_msg.len
    (event,) = pc.parse_events(data)
    whole = expected("fork")
    assert isinstance(event, pc.ForkEvent)
    assert event.parent_pid == whole["parent_pid"]
    sent: tuple[int | None, ...] = (event.parent_tgid, event.child_pid, event.child_tgid)
    assert sent == (None, None, None)  # typed as the header says; None: not sent
    assert (event.what, event.cpu, event.timestamp_ns) == (
        whole["what"],
        whole["cpu"],
        whole["timestamp_ns"],
    )
    (view,) = pc.NetlinkMessageIter(data)
    assert view.event_bytes == 20 and view.proc_event_is_copy  # zero-padded, never past the end
    assert view.proc_event is not None
    assert view.proc_event.event_data.fork.parent_pid == whole["parent_pid"]
    assert view.proc_event.event_data.fork.child_pid == 0
