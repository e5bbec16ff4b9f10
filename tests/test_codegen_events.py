"""EVENT_DATA_MEMBERS: derived by the generator from the event enum and the union, never typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.cparse import parse_header
from codegen.events import event_data_member
from codegen.model import HeaderModule

ROOT = Path(__file__).resolve().parent.parent
VENDORED_CN_PROC = ROOT / "headers" / "cn_proc.h"
MEMBERS = ("ack", "fork", "exec", "id", "sid", "ptrace", "comm", "coredump", "exit")
EXPECTED = {
    "PROC_EVENT_NONE": "ack",
    "PROC_EVENT_FORK": "fork",
    "PROC_EVENT_EXEC": "exec",
    "PROC_EVENT_UID": "id",
    "PROC_EVENT_GID": "id",
    "PROC_EVENT_SID": "sid",
    "PROC_EVENT_PTRACE": "ptrace",
    "PROC_EVENT_COMM": "comm",
    "PROC_EVENT_COREDUMP": "coredump",
    "PROC_EVENT_EXIT": "exit",
}


def table(module: HeaderModule) -> dict[str, str]:
    return {row.constant: row.member for row in module.event_members}


@pytest.mark.parametrize(
    ("enumerator", "value", "member"),
    [
        ("PROC_EVENT_FORK", 1, "fork"),  # same name
        ("PROC_EVENT_UID", 4, "id"),  # suffix inside the last word
        ("PROC_EVENT_GID", 0x40, "id"),
        ("PROC_EVENT_NONE", 0, "ack"),  # the kernel's ack
        ("PROC_EVENT_NONZERO_EXIT", 0x20000000, None),  # a filter bit: suffix at a word boundary
        ("PROC_EVENT_NEWTHING", 0x400, None),  # no member of that name
        ("PROC_CN_MCAST_LISTEN", 1, None),  # not an event type
    ],
)
def test_the_rule(enumerator: str, value: int, member: str | None) -> None:
    assert event_data_member(enumerator, value, MEMBERS) == member


def test_ack_needs_a_member_named_ack() -> None:
    assert event_data_member("PROC_EVENT_NONE", 0, ("fork",)) is None


def test_every_header_generation(all_header_sets: dict[str, Path]) -> None:
    for name, headers in all_header_sets.items():
        assert table(parse_header(headers / "cn_proc.h")) == EXPECTED, name


def test_only_the_module_with_the_enum_and_the_union(all_header_sets: dict[str, Path]) -> None:
    for headers in all_header_sets.values():
        for other in ("connector.h", "netlink.h"):
            assert parse_header(headers / other).event_members == []


def test_a_new_event_gets_its_member_automatically(tmp_path: Path) -> None:
    text = VENDORED_CN_PROC.read_text()
    text = text.replace(
        "\tPROC_EVENT_COMM = 0x00000200,\n",
        "\tPROC_EVENT_COMM = 0x00000200,\n\tPROC_EVENT_NEWTHING = 0x00000400,\n",
    )
    text = text.replace(
        "\t} exit;\n",
        "\t} exit;\n\n\t\tstruct newthing_proc_event {\n"
        "\t\t\t__kernel_pid_t process_pid;\n\t\t} newthing;\n",
    )
    header = tmp_path / "cn_proc.h"
    header.write_text(text)
    module = parse_header(header)
    rows = [(row.constant, row.member) for row in module.event_members]
    assert rows[:8] == list(EXPECTED.items())[:8]  # enum order
    assert rows[8] == ("PROC_EVENT_NEWTHING", "newthing")
    assert table(module) == {**EXPECTED, "PROC_EVENT_NEWTHING": "newthing"}
