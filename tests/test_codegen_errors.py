"""Constructs the generator does not translate stop it with file:line and the reason; macros it
cannot evaluate are listed with the true reason; a sizeof across headers is translated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen.__main__ import main
from codegen.cparse import GeneratorError, parse_header, parse_headers

ROOT = Path(__file__).resolve().parent.parent
KNOWN = "(known kernel types, from codegen/inttypes.py: __u8, __u16, __u32, __u64"


def _error_for(tmp_path: Path, body: str) -> str:
    header = tmp_path / "bad.h"
    header.write_text("#include <linux/types.h>\n" + body)
    with pytest.raises(GeneratorError) as caught:
        parse_header(header)
    return str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "struct s {\n\t__aligned_u64 ts;\n};\n",
            f"bad.h:3: unknown type name __aligned_u64 {KNOWN}",
        ),
        (
            "struct s {\n\t__kernel_uid32_t uid;\n};\n",
            "bad.h:3: unknown type name __kernel_uid32_t",
        ),
        ("struct s {\n\t__u128 big;\n};\n", "bad.h:3: unknown type name __u128"),
        ("struct s {\n\tunsigned __int128 big;\n};\n", "bad.h:3: unknown type unsigned __int128"),
        ("struct s {\n\tfloat f;\n};\n", "bad.h:3: unknown type float"),
        (
            "struct s {\n\t__u32 a;\n} __attribute__((packed));\n",
            "bad.h:4: __attribute__((packed)) on a whole struct or union is not supported",
        ),
        (
            "struct __attribute__((packed)) s {\n\t__u32 a;\n};\n",
            "bad.h:2: __attribute__((packed)) is not supported: the generator translates only "
            "aligned(N), on a member",
        ),
        (
            "struct s {\n\t__u32 a;\n\t__u64 __attribute__((packed)) b;\n};\n",
            "bad.h:4: __attribute__((packed)) is not supported",
        ),
        (
            "struct s {\n\t__u32 a __attribute__((aligned(8), packed));\n};\n",
            "bad.h:3: __attribute__((packed)) is not supported",
        ),
        (
            "struct s {\n\t__u32 a;\n} __attribute__((aligned(8)));\n",
            "bad.h:2: __attribute__((aligned(8))) on a whole struct s is not supported",
        ),
        (
            "struct s {\n\t__u64 a __attribute__((aligned(8)));\n};\n",
            "bad.h:3: __attribute__((aligned(N))) after a member's name is not supported",
        ),
        (
            "struct s {\n\t__u64 __attribute__((aligned(2))) a;\n};\n",
            "bad.h:3: aligned(2) below the natural alignment of s.a",
        ),
        ("struct s {\n\t__u32 flag : 1;\n};\n", "bad.h:3: bit-field flag"),
        ("struct s {\n\tvoid *p;\n};\n", "bad.h:3: pointer members"),
        ("struct s {\n\tconst __u32 a;\n};\n", "bad.h:3: qualifiers const"),
        ("struct s {\n\tunion { __u32 a; };\n};\n", "bad.h:3: unnamed (C11 anonymous) members"),
        ("struct s {\n\t__u32 from;\n};\n", "bad.h:3: member from is a Python keyword"),
        ("struct s {\n\t__u32 _docs_;\n};\n", "bad.h:3: member _docs_: _name_ is ctypes'"),
        ("struct s {\n\t__u8 d[];\n\t__u32 a;\n};\n", "bad.h:2: flexible array d is not the last"),
        ("struct s {\n\t__u32 a[1.5];\n};\n", "bad.h:3: expected an integer constant expression"),
        ("struct s { };\n", "bad.h:2: empty struct s"),
        ("typedef __u32 my_t;\n", "bad.h:2: typedef my_t"),
        ("int x;\n", "bad.h:2: unsupported top-level declaration: x"),
        ("struct s {\n\tstruct other o;\n};\n", "bad.h:3: struct other is used before"),
        (
            "struct s {\n\t__u32 a;\n};\nstruct s {\n\t__u32 b;\n};\n",
            "bad.h:5: struct s is defined twice",
        ),
    ],
)
def test_unknown_constructs_stop_with_file_and_line(
    tmp_path: Path, body: str, message: str
) -> None:
    assert message in _error_for(tmp_path, body)


@pytest.mark.parametrize(
    ("define", "reason"),
    [
        (
            "sizeof(struct cn_msg)",
            "sizeof(struct cn_msg): no header given to the generator defines it",
        ),
        ("CN_IDX_PROC", "unknown name CN_IDX_PROC: no given header defines it"),
        ("foo(3)", "it calls foo(), which no given header defines"),
        ('"text"', 'string constant "text"'),
        ("1.5", "double constant 1.5"),
    ],
)
def test_macros_that_are_not_constants_are_listed_with_the_reason(
    tmp_path: Path, define: str, reason: str
) -> None:
    header = tmp_path / "one.h"
    header.write_text(f"#include <linux/types.h>\n#define ONE {define}\n")
    module = parse_header(header)
    assert [(s.name, s.line) for s in module.skipped] == [("ONE", 2)]
    assert module.skipped[0].reason.startswith(reason)


def _headers_with(tmp_path: Path, extra: str) -> Path:
    headers = tmp_path / "headers"
    shutil.copytree(ROOT / "headers", headers)
    cn_proc = headers / "cn_proc.h"
    cn_proc.write_text(cn_proc.read_text().replace("#endif /* CN_PROC_H */", extra + "#endif"))
    return headers


def test_sizeof_of_a_struct_from_another_header_is_translated_and_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = _headers_with(
        tmp_path,
        "#define PROC_CN_MSG_SIZE (sizeof(struct cn_msg) + sizeof(struct proc_event))\n"
        "#define PROC_CN_IDX CN_IDX_PROC\n",
    )
    models = parse_headers([headers / n for n in ("cn_proc.h", "connector.h", "netlink.h")])
    values = {c.name: c.value for c in models[0].constants if not hasattr(c, "constants")}
    assert values["PROC_CN_MSG_SIZE"] == 20 + 40
    assert values["PROC_CN_IDX"] == 1  # a macro of connector.h, evaluated after cn_proc.h's
    assert models[0].skipped == []
    out = tmp_path / "kernel"
    assert main(["--headers", str(headers), "--output", str(out)]) == 0
    assert "layout verified against gcc" in capsys.readouterr().out  # gcc agrees on the value
    text = (out / "cn_proc.py").read_text()
    assert (
        "PROC_CN_MSG_SIZE: Final = 60  # C: (sizeof(struct cn_msg) + sizeof(struct proc_event))"
        in text
    )


def test_a_generation_error_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = _headers_with(
        tmp_path, "struct bad {\n\t__aligned_u64 x;\n} __attribute__((packed));\n"
    )
    assert main(["--headers", str(headers), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("codegen: error: cn_proc.h:")
    assert not (tmp_path / "out").exists()
