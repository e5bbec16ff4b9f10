"""The headers' ``#define``s: find them, expand them with the preprocessor, evaluate them.

The preprocessor drops ``#define``s, so ``gcc -E -dD`` lists them; a probe file then has the
preprocessor expand each object-like one, and :mod:`codegen.cexpr` evaluates the expansion
with the enum constants, the records' sizes and the other headers' constants known. A macro
that is not an integer constant expression is listed in the output with the reason, never
silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pycparser import c_ast, c_parser

from codegen.cexpr import CInt, Evaluator, NotConstantError
from codegen.comments import CommentIndex
from codegen.inttypes import stub_typedefs
from codegen.model import Constant, HeaderModule, Skipped

MACRO_PROBE = "__pyprocconn_macro__"
_DEFINE = re.compile(r"^#define\s+([A-Za-z_]\w*)(\(?)(.*)$")
_LITERAL = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")


@dataclass(frozen=True)
class Macro:
    """An object-like ``#define`` with a body (include guards and function-like ones are not)."""

    name: str
    line: int
    body: str  # as written, comments removed
    expansion: str | None = None  # fully expanded by the preprocessor; None if it did not expand


def read_defines(lines: Iterable[tuple[int, str]]) -> list[Macro]:
    """The object-like macros among the ``gcc -E -dD`` lines of the header itself."""
    found = []
    for line, text in lines:
        define = _DEFINE.match(text)
        if define and not define.group(2) and define.group(3).strip():
            found.append(Macro(define.group(1), line, define.group(3).strip()))
    return found


def expansion_probe(header: Path, macros: Sequence[Macro]) -> str:
    """A C file that includes ``header`` and then has the preprocessor expand each macro."""
    lines = [f'#include "{header}"'] + [f"{MACRO_PROBE}{m.name} = {m.name}" for m in macros]
    return "\n".join(lines) + "\n"


def split_expansions(preprocessed: str, macros: Sequence[Macro]) -> tuple[str, list[Macro]]:
    """The declarations (for pycparser), and ``macros`` with their expansions filled in."""
    declarations, expansions = [], {}
    for text in preprocessed.splitlines():
        if text.startswith(MACRO_PROBE):
            name, _, expansion = text[len(MACRO_PROBE) :].partition(" = ")
            expansions[name] = expansion
        else:
            declarations.append(text)
    filled = [Macro(m.name, m.line, m.body, expansions.get(m.name)) for m in macros]
    return "\n".join(declarations), filled


class MacroHeader(Protocol):
    """What evaluating a header's macros needs from its parser."""

    module: HeaderModule
    comments: CommentIndex
    macros: list[Macro]

    def define(self, name: str, value: CInt) -> None: ...

    @property
    def evaluator(self) -> Evaluator: ...


def _why_not(macro: Macro, error: NotConstantError) -> str:
    called = re.match(r"\s*\(*\s*([A-Za-z_]\w*)\s*\(", macro.expansion or "")
    if called and "sizeof" not in called.group(1):
        return (
            f"it calls {called.group(1)}(), which no given header defines "
            "(the included <linux/*.h> are stubs holding types only)"
        )
    return str(error)


def _evaluate(header: MacroHeader, macro: Macro, parser: c_parser.CParser) -> CInt:
    """The macro's value, or NotConstantError with the reason."""
    if macro.expansion is None:
        raise NotConstantError("it did not expand")
    try:
        ast = parser.parse(
            f"{stub_typedefs()}\nint {MACRO_PROBE}{macro.name} = ({macro.expansion});"
        )
    except c_parser.ParseError:
        raise NotConstantError("its expansion is not a C expression") from None
    init = ast.ext[-1].init
    assert isinstance(init, c_ast.Node)
    return header.evaluator.evaluate(init)


def _constant(header: MacroHeader, macro: Macro, value: CInt) -> Constant:
    literal = macro.body.split("/*")[0].strip()
    return Constant(
        name=macro.name,
        value=value.value,
        line=macro.line,
        hex=literal.lower().startswith("0x"),
        comment=header.comments.trailing(macro.line),
        leading=header.comments.leading(macro.line),
        expression=None if _LITERAL.fullmatch(literal) else " ".join(literal.split()),
    )


def translate_macros(headers: Sequence[MacroHeader]) -> None:
    """Evaluate every header's macros; add each as a constant, or list it as skipped.

    Rounds until nothing changes, so a macro may use another header's macro whatever the
    order. Deterministic: headers and macros are tried in the order given.
    """
    parser = c_parser.CParser()
    pending = [(header, macro) for header in headers for macro in header.macros]
    reasons: dict[tuple[int, str], str] = {}
    progress = True
    while pending and progress:
        progress, still = False, []
        for header, macro in pending:
            try:
                value = _evaluate(header, macro, parser)
            except NotConstantError as error:
                reasons[(id(header), macro.name)] = _why_not(macro, error)
                still.append((header, macro))
                continue
            header.define(macro.name, value)
            header.module.constants.append(_constant(header, macro, value))
            progress = True
        pending = still
    for header, macro in pending:
        reason = reasons[(id(header), macro.name)]
        header.module.skipped.append(Skipped(macro.name, macro.line, reason))
