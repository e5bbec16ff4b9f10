"""The generated ctypes layouts and constants agree with the C compiler, for every header set."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from codegen.__main__ import HEADERS, main
from tests.layout_probe import (
    c_probe_source,
    compiler_facts,
    field_paths,
    load_module,
    python_facts,
)


@pytest.mark.parametrize("generation", ["vendored", "6.1", "kernel-source-tree"])
def test_layout_matches_the_compiler(
    generation: str, all_header_sets: dict[str, Path], tmp_path: Path
) -> None:
    headers = all_header_sets[generation]
    out = tmp_path / "kernel"
    assert main(["--headers", str(headers), "--output", str(out)]) == 0
    modules = [
        load_module(
            out / f"{Path(h).stem}.py",
            f"_probe_{generation}_{Path(h).stem}".replace("-", "_").replace(".", "_"),
        )
        for h in HEADERS
    ]
    expected = compiler_facts(c_probe_source([headers / h for h in HEADERS], modules), tmp_path)
    got = python_facts(modules)
    assert got == expected, (
        f"only in ctypes: {sorted(got - expected)}\nonly in C: {sorted(expected - got)}"
    )
    # The comparison covered what matters: every event's fields, deep inside the union.
    assert any(f.startswith("F struct proc_event event_data.exit.exit_code ") for f in got)
    assert any(f.startswith("F struct proc_event timestamp_ns ") for f in got)
    assert any(f.startswith("C PROC_EVENT_EXIT ") for f in got)


def test_nested_paths_cover_every_event(all_header_sets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "kernel"
    assert main(["--headers", str(all_header_sets["vendored"]), "--output", str(out)]) == 0
    cn_proc = load_module(out / "cn_proc.py", "_paths_cn_proc")
    paths = {path for path, *_ in field_paths(cn_proc.proc_event)}
    for member in (
        "ack.err",
        "fork.child_tgid",
        "exec.process_tgid",
        "id.r.ruid",
        "id.e.egid",
        "sid.process_pid",
        "ptrace.tracer_tgid",
        "comm.comm",
        "coredump.parent_tgid",
        "exit.exit_signal",
        "exit.parent_tgid",
    ):
        assert f"event_data.{member}" in paths
    assert ctypes.sizeof(cn_proc.proc_event) == 40  # the 76-byte datagram's last part
