"""Run the C preprocessor over one header, with stub ``<linux/...>`` headers, for the parser.

The headers are read unmodified. Their ``#include <linux/...>`` lines resolve to stub headers
whose typedefs come from :mod:`codegen.inttypes` (never the build machine's /usr/include), and
two definitions get GNU C through pycparser: ``__inline__`` and ``__attribute__((aligned(N)))``,
which becomes C11 ``_Alignas``. Every other ``__attribute__`` stops the generator here, with the
file and line where it is used.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import GeneratorError
from codegen.inttypes import KERNEL_TYPE_NAMES, stub_typedefs
from codegen.macros import Macro, expansion_probe, read_defines, split_expansions

STUB_HEADERS = ("linux/types.h", "linux/const.h", "linux/socket.h", "linux/posix_types.h")
STUB_GUARD = "_PYPROCCONN_CODEGEN_STUB_TYPES"
PREPROCESSOR_DEFINES = ("-D__inline__=inline", "-D__attribute__(x)=_Alignas x")
ALIGNED = ("aligned", "__aligned__")

LINE_MARKER = re.compile(r'^#\s*(\d+)\s+"((?:[^"\\]|\\.)*)"')


def stub_source() -> str:
    return f"#ifndef {STUB_GUARD}\n#define {STUB_GUARD}\n{stub_typedefs()}#endif\n"


@contextmanager
def stub_include_dir() -> Iterator[Path]:
    """A temporary folder holding the stub ``<linux/...>`` headers."""
    with tempfile.TemporaryDirectory(prefix="pyprocconn-codegen-") as scratch:
        include = Path(scratch)
        for stub in STUB_HEADERS:
            (include / stub).parent.mkdir(parents=True, exist_ok=True)
            (include / stub).write_text(stub_source())
        yield include


def _gcc(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["gcc", *arguments],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},  # messages in ASCII, quotes included
        )
    except FileNotFoundError:
        raise GeneratorError("the C preprocessor (gcc) is not installed") from None


def run_cpp(source_file: Path, include_dir: Path, *extra: str) -> str:
    done = _gcc(["-E", "-undef", "-nostdinc", f"-I{include_dir}", *extra, str(source_file)])
    if done.returncode != 0:
        raise GeneratorError(f"the C preprocessor failed on {source_file}:\n{done.stderr.strip()}")
    return done.stdout


def lines_of(preprocessed: str, header: Path) -> Iterator[tuple[int, str]]:
    """(line in ``header``, text) for the preprocessed lines that come from ``header`` itself."""
    current, line = "", 0
    for text in preprocessed.splitlines():
        marker = LINE_MARKER.match(text)
        if marker:
            current, line = marker.group(2), int(marker.group(1))
            continue
        if Path(current) == header:
            yield line, text
        line += 1


def _attribute_lists(text: str) -> Iterator[str]:
    """The text inside each ``__attribute__((...))`` of one line."""
    for start in (m.end() for m in re.finditer(r"__attribute__\s*\(", text)):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[start : i - 1].strip()


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def check_attributes(header: Path, include_dir: Path) -> None:
    """Stop on any attribute but ``aligned(N)``: e.g. ``packed`` would change the layout."""
    for line, text in lines_of(run_cpp(header, include_dir, "-D__inline__=inline"), header):
        for attributes in _attribute_lists(text):
            inner = attributes[1:-1] if attributes.startswith("(") else attributes
            for attribute in _split_top_level(inner):
                name = attribute.split("(")[0].strip()
                if name not in ALIGNED:
                    where = (
                        " on a whole struct or union"
                        if text.split("__attribute__")[0].rstrip().endswith("}")
                        else ""
                    )
                    raise GeneratorError(
                        f"{header.name}:{line}: __attribute__(({attribute})){where} is not "
                        "supported: the generator translates only aligned(N), on a member"
                    )


def explain_parse_error(header: Path, include_dir: Path, error: Exception) -> GeneratorError:
    """pycparser refused the text: say why, with gcc's help for what gcc also refuses."""
    where, _, what = str(error).replace(str(header), header.name).partition(": ")
    line = where.split(":")[1] if where.count(":") >= 1 else "?"
    if "_Alignas" in what:
        return GeneratorError(
            f"{header.name}:{line}: __attribute__((aligned(N))) after a member's name is not "
            "supported; the generator reads it before the name, as in "
            "__u64 __attribute__((aligned(8))) x;"
        )
    command = ["-fsyntax-only", "-std=gnu11", "-x", "c", "-nostdinc", f"-I{include_dir}"]
    done = _gcc([*command, str(header)])
    first = re.search(rf"^{re.escape(str(header))}:(\d+):\d+: error: (.*)$", done.stderr, re.M)
    if first is None:
        return GeneratorError(f"{where}: {what} (a construct pycparser does not know)")
    unknown = re.fullmatch(r"unknown type name '(\w+)'", first.group(2))
    if unknown:
        return GeneratorError(
            f"{header.name}:{first.group(1)}: unknown type name {unknown.group(1)} (known kernel "
            f"types, from codegen/inttypes.py: {', '.join(KERNEL_TYPE_NAMES)})"
        )
    return GeneratorError(f"{header.name}:{first.group(1)}: {first.group(2)}")


@dataclass(frozen=True)
class Preprocessed:
    declarations: str  # the preprocessed header, with line markers, for pycparser
    macros: list[Macro]  # the header's object-like #defines and what each expands to


def preprocess(header: Path, include_dir: Path) -> Preprocessed:
    check_attributes(header, include_dir)
    defines = read_defines(lines_of(run_cpp(header, include_dir, "-dD"), header))
    probe = include_dir / "probe.c"
    probe.write_text(expansion_probe(header, defines))
    declarations, macros = split_expansions(
        run_cpp(probe, include_dir, *PREPROCESSOR_DEFINES), defines
    )
    return Preprocessed(declarations, macros)
