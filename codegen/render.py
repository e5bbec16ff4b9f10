"""Render the model with the Jinja2 templates into the text of ``pyprocconn/kernel/``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import jinja2

from codegen.model import (
    Array,
    Constant,
    CType,
    EnumBlock,
    Field,
    HeaderModule,
    Record,
    RecordRef,
    Scalar,
    Skipped,
)

TEMPLATES = Path(__file__).parent / "templates"
# Where a vendored header lives under /usr/include, when not <linux/NAME> (vendored flat).
INCLUDE_PATHS = {"sched_types.h": "linux/sched/types.h", "unistd_64.h": "asm/unistd_64.h"}
LINE_LENGTH = 100


def ctype_expression(ctype: CType) -> str:
    if isinstance(ctype, Scalar):
        return f"ctypes.{ctype.ctypes_name}"
    if isinstance(ctype, RecordRef):
        return ctype.name
    return f"{ctype_expression(ctype.element)} * {ctype.length}"


def annotation(ctype: CType) -> str:
    if isinstance(ctype, Scalar):
        return ctype.annotation
    if isinstance(ctype, RecordRef):
        return ctype.name
    if isinstance(ctype.element, Scalar) and ctype.element.ctypes_name == "c_char":
        return "bytes"  # ctypes reads a char array as bytes, up to the first NUL
    return f"ctypes.Array[{ctype_expression(ctype.element)}]"


def c_spelling(ctype: CType, records: bool = False) -> str:
    """The C type as written; for a struct or union only when ``records`` (the class says it)."""
    if isinstance(ctype, Scalar):
        return ctype.c_spelling
    if isinstance(ctype, RecordRef):
        return ctype.c_spelling if records else ""
    inner = c_spelling(ctype.element, records)
    return f"{inner}[{ctype.length or ''}]" if inner else ""


def comment_block(text: str | None, indent: int = 0) -> str:
    """``text`` as ``#`` lines, wrapped; blank lines kept as ``#``."""
    if not text:
        return ""
    pad = " " * indent
    out: list[str] = []
    width = LINE_LENGTH - indent - 2
    for raw_line in text.splitlines():
        line = raw_line.replace("\t", " ").rstrip()
        if not line:
            out.append(f"{pad}#")
            continue
        lead = len(line) - len(line.lstrip())  # keep the header's ASCII-art indentation
        wrapped = textwrap.wrap(
            line,
            width=width,
            subsequent_indent=" " * lead,
            drop_whitespace=True,
            break_on_hyphens=False,
        ) or [""]
        if lead:
            wrapped[0] = " " * lead + wrapped[0]
        out.extend(f"{pad}# {part}".rstrip() for part in wrapped)
    return "\n".join(out) + "\n"


def with_comment(code: str, text: str | None, indent: int) -> str:
    """One line of code with its comment after it, or above it when it would not fit."""
    pad = " " * indent
    if not text:
        return f"{pad}{code}\n"
    single = " ".join(text.split())
    inline = f"{pad}{code}  # {single}"
    if "\n" not in text and len(inline) <= LINE_LENGTH:
        return inline + "\n"
    return comment_block(text, indent) + f"{pad}{code}\n"


def field_comment(field: Field, records: bool = False) -> str | None:
    """C type, attribute and the header's comment: the ``#`` comment of a field."""
    spelled = c_spelling(field.ctype, records)
    parts = [p for p in (spelled, field.comment) if p]
    if field.align is not None:
        parts.insert(1 if spelled else 0, f"__attribute__((aligned({field.align})))")
    return "; ".join(" ".join(p.split()) for p in parts) or None


def py_string(text: str) -> str:
    """A one-line Python string literal, quoted the way ruff format quotes it."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + escaped.replace("\n", "\\n").replace("\t", "\\t") + quote


def field_docs(record: Record) -> list[tuple[str, str]]:
    """(field name, string literal) for ``_docs_``: each field's C type and comment."""
    return [(f.name, py_string(field_comment(f, records=True) or "")) for f in record.fields]


def _docstring_lines(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines():
        line = raw.replace("\t", " ").rstrip()
        lead = len(line) - len(line.lstrip())
        wrapped = textwrap.wrap(line, width=width, subsequent_indent=" " * lead) or [""]
        lines += [" " * lead + wrapped[0].lstrip(), *wrapped[1:]]
    return lines


def docstring(record: Record) -> str:
    """The class docstring, indented, quotes included: C name, then the header's comment."""
    if record.anonymous:
        _, _, kind, path = record.c_name.split()
        first = f"The anonymous {kind} ``{path}``."
        text = "Named after its path: the enclosing class's name and the member's, joined by ``_``."
    else:
        first, text = f"``{record.c_name}``.", record.comment or ""
    if not text:
        return f'    """{first}"""\n'
    body = "".join(
        f"    {line}".rstrip() + "\n" for line in _docstring_lines(text, LINE_LENGTH - 4)
    )
    return f'    """{first}\n\n{body}    """\n'


def skipped_line(skipped: Skipped) -> str:
    """One untranslated macro as ``#`` lines: name, line, reason; continuation indented."""
    text = f"{skipped.name} (line {skipped.line}): {skipped.reason}"
    wrapped = textwrap.wrap(text, width=LINE_LENGTH - 4, subsequent_indent="    ")
    return "".join(f"#   {part}\n" for part in wrapped)


def value_literal(constant: Constant) -> str:
    flag_like = constant.expression is not None and re.search(r"0[xX]|<<|\|", constant.expression)
    if constant.value >= 0 and (constant.hex or flag_like):
        digits = max(1, (constant.value.bit_length() + 3) // 4)
        width = 8 if constant.hex and digits <= 8 and constant.value > 0xFFFF else digits
        return f"0x{constant.value:0{width}X}"
    return str(constant.value)


def constant_line(constant: Constant) -> str:
    parts = [p for p in (constant.comment,) if p]
    if constant.expression is not None:
        parts.append(f"C: {' '.join(constant.expression.split())}")
    code = f"{constant.name}: Final = {value_literal(constant)}"
    return comment_block(constant.leading) + with_comment(code, "; ".join(parts) or None, 0)


def public_names(module: HeaderModule) -> list[str]:
    """What the module defines for its users (``__all__``): constants, records, the members map."""
    names = []
    for entry in module.constants:
        names += [c.name for c in entry.constants] if isinstance(entry, EnumBlock) else [entry.name]
    names += [record.name for record in module.records]
    if module.event_members:
        names.append("EVENT_DATA_MEMBERS")
    return names


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        comment_block=comment_block,
        ctype_expression=ctype_expression,
        annotation=annotation,
        field_comment=field_comment,
        constant_line=constant_line,
        with_comment=with_comment,
        docstring=docstring,
        field_docs=field_docs,
        skipped_line=skipped_line,
        public_names=public_names,
    )
    env.tests["enum_block"] = lambda entry: isinstance(entry, EnumBlock)
    env.tests["flexible"] = lambda ctype: isinstance(ctype, Array) and ctype.length == 0
    return env


def render(modules: list[HeaderModule], command: str) -> dict[str, str]:
    """File name -> text for every generated file."""
    env = _environment()
    files = {
        f"{m.module}.py": env.get_template("module.py.jinja").render(
            module=m,
            command=command,
            include=INCLUDE_PATHS.get(m.header, f"linux/{m.header}"),
        )
        for m in modules
    }
    files["__init__.py"] = env.get_template("init.py.jinja").render(
        modules=modules, command=command
    )
    return files
