"""The one table of C integer types is self-consistent; the evaluator and the stubs read it."""

from __future__ import annotations

import ctypes

import pytest
from pycparser import c_parser

from codegen.cexpr import Evaluator, NotConstantError
from codegen.inttypes import INTEGER_TYPES, KERNEL_TYPE_NAMES, stub_typedefs
from codegen.preprocess import stub_source


@pytest.mark.parametrize("name", sorted(INTEGER_TYPES))
def test_each_ctypes_type_has_the_width_and_signedness(name: str) -> None:
    entry = INTEGER_TYPES[name]
    cls = getattr(ctypes, entry.ctypes_name)
    assert ctypes.sizeof(cls) * 8 == entry.bits
    if entry.ctypes_name != "c_char":  # c_char reads as bytes: no sign to check
        assert (cls(-1).value < 0) == entry.signed
    if entry.typedef is not None:  # a kernel name: the same as the C type it stands for
        base = INTEGER_TYPES[entry.typedef]
        assert (base.bits, base.signed) == (entry.bits, entry.signed)


def test_the_stub_header_typedefs_every_kernel_name() -> None:
    assert set(KERNEL_TYPE_NAMES) == {n for n, t in INTEGER_TYPES.items() if t.typedef}
    for name in KERNEL_TYPE_NAMES:
        assert f"typedef {INTEGER_TYPES[name].typedef} {name};\n" in stub_source()


def _value(expression: str) -> int:
    ast = c_parser.CParser().parse(f"{stub_typedefs()}int x = ({expression});")
    init = ast.ext[-1].init

    def no_records(kind: str, tag: str) -> tuple[int, int]:
        raise NotConstantError(f"{kind} {tag}")

    return Evaluator({}, no_records).evaluate(init).value


def test_the_evaluator_reads_the_same_table() -> None:
    assert _value("sizeof(__u64)") == 8
    assert _value("(__s8)255") == -1
    assert _value("(__u16)-1") == 0xFFFF
    assert _value("(__kernel_pid_t)0xFFFFFFFF") == -1
    assert _value("sizeof(unsigned long)") == 8  # LP64
