"""What a ctypes user gets from the generated classes at run time: a readable repr, the header's
comments in ``__doc__`` and ``_docs_``, and ``EVENT_DATA_MEMBERS``."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codegen.__main__ import COMMAND, generate
from codegen.cparse import parse_header
from codegen.render import render
from codegen.verify import load_generated

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "tests" / "codegen" / "synthetic.h"


@pytest.fixture(scope="module")
def kernel() -> Iterator[dict[str, ModuleType]]:
    """The modules generated from headers/, imported from a temporary folder."""
    with load_generated(generate(ROOT / "headers", COMMAND)) as modules:
        yield modules


def test_repr_names_every_field(kernel: dict[str, ModuleType]) -> None:
    fork = kernel["cn_proc"].fork_proc_event(1, 1, 5, 5)
    assert repr(fork) == "fork_proc_event(parent_pid=1, parent_tgid=1, child_pid=5, child_tgid=5)"


def test_repr_nests_records_and_shows_char_arrays_as_bytes(kernel: dict[str, ModuleType]) -> None:
    cn_proc = kernel["cn_proc"]
    comm = cn_proc.comm_proc_event(7, 7, b"bash")
    assert repr(comm) == "comm_proc_event(process_pid=7, process_tgid=7, comm=b'bash')"
    event = cn_proc.proc_event(what=cn_proc.PROC_EVENT_UID, cpu=1, timestamp_ns=2)
    event.event_data.id.r.ruid = 1000
    text = repr(event)
    assert text.startswith(
        "proc_event(what=4, cpu=1, timestamp_ns=2, event_data=proc_event_event_data("
    )
    assert (
        "id=id_proc_event(process_pid=0, process_tgid=0, r=id_proc_event_r(ruid=1000, rgid=1000)"
        in text
    )


def test_repr_shows_other_arrays_as_lists_and_leaves_flexible_arrays_out(
    kernel: dict[str, ModuleType],
) -> None:
    msg = kernel["connector"].cn_msg(len=40)
    assert repr(msg) == "cn_msg(id=cb_id(idx=0, val=0), seq=0, ack=0, len=40, flags=0)"
    with load_generated(render([parse_header(SYNTHETIC)], COMMAND)) as synthetic:
        raw = synthetic["synthetic"].syn_outer_body_raw(as_u32=0x04030201)
        assert repr(raw) == "syn_outer_body_raw(as_u32=67305985, as_bytes=[1, 2, 3, 4])"


def _records(module: ModuleType) -> Iterator[type[ctypes.Structure] | type[ctypes.Union]]:
    for value in vars(module).values():
        records = (ctypes.Structure, ctypes.Union)
        if (
            isinstance(value, type)
            and issubclass(value, records)
            and value.__module__ == module.__name__
        ):
            yield value


def test_docs_has_one_entry_per_field_and_carries_the_comments(
    kernel: dict[str, ModuleType],
) -> None:
    for module in kernel.values():
        for record in _records(module):
            docs: dict[str, str] = getattr(record, "_docs_")  # noqa: B009 (a generated ClassVar)
            assert list(docs) == [name for name, *_ in record._fields_], record
            assert record.__doc__ and record.__repr__ is not object.__repr__
    cn_proc, netlink = kernel["cn_proc"], kernel["netlink"]
    assert cn_proc.proc_event._docs_["timestamp_ns"] == (
        "__u64; __attribute__((aligned(8))); Number of nano seconds since system boot"
    )
    assert cn_proc.id_proc_event_r._docs_["ruid"] == "__u32; task uid"
    assert cn_proc.proc_event._docs_["event_data"].startswith("anonymous union; must be last")
    assert netlink.nlmsgerr._docs_["msg"] == "struct nlmsghdr"
    # kernel-doc "@member: text" lines reach the fields they describe
    assert netlink.nlmsghdr._docs_["nlmsg_len"] == "__u32; Length of message including header"
    assert "fixed format metadata header" in (netlink.nlmsghdr.__doc__ or "")
    assert "Named after its path" in (cn_proc.proc_event_event_data.__doc__ or "")


def test_event_data_members_name_real_union_members(kernel: dict[str, ModuleType]) -> None:
    cn_proc = kernel["cn_proc"]
    members = dict(cn_proc.proc_event_event_data._fields_)
    assert set(cn_proc.EVENT_DATA_MEMBERS.values()) <= set(members)
    assert cn_proc.PROC_EVENT_NONZERO_EXIT not in cn_proc.EVENT_DATA_MEMBERS
    assert list(cn_proc.EVENT_DATA_MEMBERS) == sorted(
        cn_proc.EVENT_DATA_MEMBERS, key=lambda v: v if v else -1
    )  # enum order
