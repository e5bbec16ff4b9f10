"""The generated ctypes layouts and constants agree with the C compiler, for every header set.

One implementation of the comparison, :mod:`codegen.verify`, serves ``python -m codegen`` (which
checks what it just generated) and these tests.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

import codegen.verify
from codegen.__main__ import COMMAND, build, main
from codegen.verify import VerificationError, layout_facts, load_generated, verify

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_NEWER = ROOT / "tests" / "codegen" / "kernel-headers" / "synthetic-newer"
GENERATIONS = ("vendored", "6.1", "kernel-source-tree", "synthetic-newer")


def headers_of(generation: str, all_header_sets: dict[str, Path]) -> Path:
    return SYNTHETIC_NEWER if generation == "synthetic-newer" else all_header_sets[generation]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_layout_matches_the_compiler(generation: str, all_header_sets: dict[str, Path]) -> None:
    paths, models, files = build(headers_of(generation, all_header_sets), COMMAND)
    got, expected, _ = layout_facts(paths, models, files)
    assert got == expected, (
        f"only in ctypes: {sorted(got - expected)}\nonly in C: {sorted(expected - got)}"
    )
    # The comparison covered what matters: every event's fields, deep inside the union.
    assert any(f.startswith("F struct proc_event event_data.exit.exit_code ") for f in got)
    assert any(f.startswith("F struct proc_event event_data.id.r.ruid ") for f in got)
    assert any(f.startswith("F struct proc_event timestamp_ns ") for f in got)
    assert any(f.startswith("F struct cn_msg data ") and " - " in f for f in got)
    assert any(f.startswith("C PROC_EVENT_EXIT ") for f in got)
    assert not any("proc_event_event_data " in f for f in got)  # anonymous: no C tag


@pytest.mark.parametrize("stubs_first", [False, True])
def test_the_type_table_against_gcc_with_and_without_the_system_headers(stubs_first: bool) -> None:
    """With the stubs, gcc lays out the table's C spellings; without, the system's typedefs."""
    paths, models, files = build(ROOT / "headers", COMMAND)
    got, expected, kernel_types = layout_facts(paths, models, files, stubs_first)
    assert got == expected
    if stubs_first:
        assert kernel_types == "the generator's type table"
    else:  # the system's where linux-libc-dev is installed, else the stubs
        assert kernel_types in ("the system's <linux/types.h>", "the generator's type table")


def test_the_synthetic_newer_generation(tmp_path: Path) -> None:
    paths, models, files = build(SYNTHETIC_NEWER, COMMAND)
    got, _, _ = layout_facts(paths, models, files)
    assert "C PROC_EVENT_NEWTHING 1024" in got
    assert "C PROC_EVENT_ALL 3758098375" in got  # 0xE00007C7: NEWTHING OR-ed in
    assert "C PROC_EVENT_NEWTHING_DATA_SIZE 16" in got
    assert "S struct proc_event 48 8" in got
    assert "F struct proc_event event_data.exit.exit_flags 40 4 4" in got
    assert "F struct proc_event event_data.newthing.newthing_value 24 8 8" in got
    with load_generated(files) as modules:
        cn_proc = modules["cn_proc"]
        assert cn_proc.EVENT_DATA_MEMBERS[cn_proc.PROC_EVENT_NEWTHING] == "newthing"


def test_python_m_codegen_verifies_what_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--headers", str(SYNTHETIC_NEWER), "--output", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "codegen: layout verified against gcc: 307 facts" in out
    assert out.index("verified") < out.index("wrote")  # checked before anything is written


def _with(files: dict[str, str], module: str, old: str, new: str) -> dict[str, str]:
    assert old in files[module]
    return {**files, module: files[module].replace(old, new, 1)}


@pytest.mark.parametrize(
    ("old", "new", "fact"),
    [
        (  # a field one size too small: offsets after it, sizes around it all move
            '("exit_signal", ctypes.c_uint32)',
            '("exit_signal", ctypes.c_uint16)',
            "F struct exit_proc_event exit_signal 12 2 2",
        ),
        (
            "PROC_EVENT_COMM: Final = 0x200",
            "PROC_EVENT_COMM: Final = 0x400",
            "C PROC_EVENT_COMM 1024",
        ),
    ],
)
def test_a_wrong_generated_layout_is_caught(old: str, new: str, fact: str) -> None:
    paths, models, files = build(ROOT / "headers", COMMAND)
    with pytest.raises(VerificationError) as caught:
        verify(paths, models, _with(files, "cn_proc.py", old, new))
    assert f"ctypes: {fact}" in str(caught.value)


def test_generated_text_that_does_not_import_is_caught() -> None:
    paths, models, files = build(ROOT / "headers", COMMAND)
    broken = _with(files, "netlink.py", "import ctypes\n", "import ctypes\n\nraise RuntimeError\n")
    with pytest.raises(VerificationError, match=r"the generated netlink.py does not import"):
        verify(paths, models, broken)


def test_without_a_compiler_a_note_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codegen.verify, "COMPILER", "no-such-cc-for-pyprocconn")
    assert main(["--output", str(tmp_path / "k")]) == 0
    err = capsys.readouterr().err
    assert "layout NOT verified: no C compiler (no-such-cc-for-pyprocconn) on PATH" in err


def test_no_verify_skips_on_purpose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("verify ran")

    monkeypatch.setattr("codegen.__main__.verify", refuse)
    assert main(["--output", str(tmp_path / "k"), "--no-verify"]) == 0
    assert "verified" not in capsys.readouterr().out


def test_nested_paths_cover_every_event() -> None:
    _, _, files = build(ROOT / "headers", COMMAND)
    with load_generated(files) as modules:
        cn_proc = modules["cn_proc"]
        paths = {path for path, *_ in codegen.verify.field_paths(cn_proc.proc_event)}
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
