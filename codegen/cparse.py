"""Read one UAPI header with the C preprocessor and pycparser into a :class:`HeaderModule`.

The headers are read unmodified. Their ``#include <linux/...>`` lines resolve to stub headers
written from :data:`KERNEL_TYPES` (never the build machine's /usr/include), and two definitions
get GNU C through pycparser: ``__inline__`` and ``__attribute__((aligned(N)))``, which becomes
C11 ``_Alignas``. Any other construct stops the generator with an error naming file and line.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pycparser import c_ast, c_parser

from codegen.cexpr import INTEGER_TYPES, CInt, Evaluator, NotConstantError, enum_constant
from codegen.comments import CommentIndex
from codegen.events import event_members
from codegen.model import (
    AlignmentGuard,
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


class GeneratorError(Exception):
    """A header construct the generator does not translate; the message names file and line."""


# The kernel's own type names that the headers take from <linux/types.h> and <linux/socket.h>:
# C spelling for the stub typedef, ctypes type for the layout.
KERNEL_TYPES: dict[str, tuple[str, str]] = {
    "__u8": ("unsigned char", "c_uint8"),
    "__u16": ("unsigned short", "c_uint16"),
    "__u32": ("unsigned int", "c_uint32"),
    "__u64": ("unsigned long long", "c_uint64"),
    "__s8": ("signed char", "c_int8"),
    "__s16": ("short", "c_int16"),
    "__s32": ("int", "c_int32"),
    "__s64": ("long long", "c_int64"),
    "__le16": ("unsigned short", "c_uint16"),
    "__le32": ("unsigned int", "c_uint32"),
    "__le64": ("unsigned long long", "c_uint64"),
    "__be16": ("unsigned short", "c_uint16"),
    "__be32": ("unsigned int", "c_uint32"),
    "__be64": ("unsigned long long", "c_uint64"),
    "__kernel_pid_t": ("int", "c_int"),
    "__kernel_sa_family_t": ("unsigned short", "c_ushort"),
}

C_TYPES: dict[str, str] = {
    "char": "c_char",
    "signed char": "c_byte",
    "unsigned char": "c_ubyte",
    "short": "c_short",
    "short int": "c_short",
    "unsigned short": "c_ushort",
    "unsigned short int": "c_ushort",
    "int": "c_int",
    "signed": "c_int",
    "signed int": "c_int",
    "unsigned": "c_uint",
    "unsigned int": "c_uint",
    "long": "c_long",
    "long int": "c_long",
    "unsigned long": "c_ulong",
    "unsigned long int": "c_ulong",
    "long long": "c_longlong",
    "long long int": "c_longlong",
    "unsigned long long": "c_ulonglong",
    "unsigned long long int": "c_ulonglong",
}

STUB_HEADERS = ("linux/types.h", "linux/const.h", "linux/socket.h", "linux/posix_types.h")
STUB_GUARD = "_PYPROCCONN_CODEGEN_STUB_TYPES"
PREPROCESSOR_DEFINES = ("-D__inline__=inline", "-D__attribute__(x)=_Alignas x")
MACRO_PROBE = "__pyprocconn_macro__"


def typedefs() -> str:
    """C typedefs of the kernel's type names, from :data:`KERNEL_TYPES`."""
    return "".join(f"typedef {c} {name};\n" for name, (c, _) in KERNEL_TYPES.items())


def stub_source() -> str:
    return f"#ifndef {STUB_GUARD}\n#define {STUB_GUARD}\n{typedefs()}#endif\n"


def _run_cpp(source_file: Path, include_dir: Path, *extra: str) -> str:
    command = ["gcc", "-E", "-undef", "-nostdinc", f"-I{include_dir}", *PREPROCESSOR_DEFINES]
    command += [*extra, str(source_file)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GeneratorError("the C preprocessor (gcc) is not installed") from None
    if done.returncode != 0:
        raise GeneratorError(f"the C preprocessor failed on {source_file}:\n{done.stderr.strip()}")
    return done.stdout


_LINE_MARKER = re.compile(r'^#\s*(\d+)\s+"((?:[^"\\]|\\.)*)"')
_DEFINE = re.compile(r"^#define\s+([A-Za-z_]\w*)(\(?)(.*)$")


def _macros_of(cpp_dd_output: str, header: Path) -> list[tuple[str, int, bool, str]]:
    """(name, line, function_like, body) for each #define the header itself makes."""
    found: list[tuple[str, int, bool, str]] = []
    current, line = "", 0
    for text in cpp_dd_output.splitlines():
        marker = _LINE_MARKER.match(text)
        if marker:
            current, line = marker.group(2), int(marker.group(1))
            continue
        define = _DEFINE.match(text)
        if define and Path(current) == header:
            found.append((define.group(1), line, bool(define.group(2)), define.group(3).strip()))
        line += 1
    return found


class _Builder:
    def __init__(self, header: Path, source: str) -> None:
        self.header = header
        self.comments = CommentIndex(source)
        self.module = HeaderModule(
            header=header.name,
            module=header.stem.replace("-", "_"),
            sha256=hashlib.sha256(source.encode()).hexdigest(),
            comment=None,
        )
        self.names: dict[str, CInt] = {}
        self.records: dict[tuple[str, str], Record] = {}  # (kind, C tag) -> record
        self.live: dict[str, type[ctypes.Structure] | type[ctypes.Union]] = {}
        self.field_enums: dict[tuple[str, str], EnumBlock] = {}  # (record, field) -> its enum
        typedefs = {name: INTEGER_TYPES[c] for name, (c, _) in KERNEL_TYPES.items()}
        self.evaluator = Evaluator(self.names, self._sizeof_record, typedefs)

    # -- errors and helpers -------------------------------------------------------------
    def fail(self, node: c_ast.Node | None, message: str) -> GeneratorError:
        where = f"{self.header.name}:{node.coord.line}" if node and node.coord else self.header.name
        return GeneratorError(f"{where}: {message}")

    def mine(self, node: c_ast.Node) -> bool:
        return node.coord is not None and Path(str(node.coord.file)) == self.header

    def _sizeof_record(self, kind: str, tag: str) -> tuple[int, int]:
        record = self.records.get((kind, tag))
        if record is None:
            raise NotConstantError(f"sizeof of undefined {kind} {tag}")
        cls = self.live[record.name]
        return ctypes.sizeof(cls), ctypes.alignment(cls)

    def constant(self, node: c_ast.Node) -> int:
        try:
            return self.evaluator.evaluate(node).value
        except NotConstantError as error:
            raise self.fail(node, f"expected an integer constant expression: {error}") from None

    # -- declarations -------------------------------------------------------------------
    def translation_unit(self, ast: c_ast.FileAST) -> None:
        for node in ast.ext:
            if not self.mine(node):
                continue
            if isinstance(node, c_ast.FuncDef):
                continue  # static inline helpers: code, not layout
            if isinstance(node, c_ast.Decl) and node.name is None:
                self.top_level_type(node, node.type)
            elif isinstance(node, c_ast.Typedef):
                raise self.fail(node, f"typedef {node.name} is not supported by the generator")
            else:
                what = getattr(node, "name", None) or type(node).__name__
                raise self.fail(node, f"unsupported top-level declaration: {what}")

    def top_level_type(self, decl: c_ast.Decl, node: c_ast.Node) -> None:
        if decl.align:
            raise self.fail(decl, "an attribute outside a field declaration is not supported")
        if isinstance(node, c_ast.Enum):
            self.enum(node)
        elif isinstance(node, (c_ast.Struct, c_ast.Union)):
            if node.decls is not None:
                self.record(node, anonymous_name=None)
        else:
            raise self.fail(decl, f"unsupported top-level declaration: {type(node).__name__}")

    def enum(self, node: c_ast.Enum) -> None:
        block = EnumBlock(name=node.name, line=node.coord.line, comment=None)
        block.comment = self.comments.leading(node.coord.line)
        following = 0
        for item in node.values.enumerators if node.values else []:
            line = item.coord.line
            value = following if item.value is None else self.constant(item.value)
            self.names[item.name] = enum_constant(value)
            following = value + 1
            literal = self._literal_text(item.value)
            block.constants.append(
                Constant(
                    name=item.name,
                    value=value,
                    line=line,
                    hex=literal.lower().startswith("0x") if literal else False,
                    comment=self.comments.trailing(line),
                    leading=self._inner_leading(line, block),
                    expression=None
                    if literal is not None or item.value is None
                    else _c_text(item.value),
                )
            )
        self.module.constants.append(block)

    def _inner_leading(self, line: int, block: EnumBlock) -> str | None:
        leading = self.comments.leading(line)
        return None if leading == block.comment else leading

    @staticmethod
    def _literal_text(node: c_ast.Node | None) -> str | None:
        if isinstance(node, c_ast.Constant):
            return str(node.value)
        return None

    def record(
        self, node: c_ast.Struct | c_ast.Union, anonymous_name: str | None, where: str = ""
    ) -> Record:
        kind = "struct" if isinstance(node, c_ast.Struct) else "union"
        name = node.name or anonymous_name
        assert name is not None
        if node.name and (kind, node.name) in self.records:
            raise self.fail(node, f"{kind} {node.name} is defined twice")
        if name in self.live:
            raise self.fail(node, f"the class name {name} is taken twice")
        record = Record(
            name=name,
            kind=kind,
            line=node.coord.line,
            anonymous=node.name is None,
            c_name=f"{kind} {node.name}" if node.name else f"the anonymous {kind} {where}",
            comment=self.comments.leading(node.coord.line) if node.name else None,
        )
        for decl in node.decls or []:
            record.fields.extend(self.fields(decl, record))
        if not record.fields:
            raise self.fail(node, f"empty {kind} {name}")
        self._check_flexible(record, node)
        cls = _live_class(record, self.live)
        self.live[name] = cls
        if node.name:
            self.records[(kind, node.name)] = record
        self.module.records.append(record)
        for fld in record.fields:
            if fld.align is not None:
                self._guard(record, fld, cls)
        return record

    def _check_flexible(self, record: Record, node: c_ast.Node) -> None:
        for fld in record.fields[:-1]:
            if isinstance(fld.ctype, Array) and fld.ctype.length == 0 and record.kind == "struct":
                raise self.fail(node, f"flexible array {fld.name} is not the last member")

    def _guard(
        self, record: Record, fld: Field, cls: type[ctypes.Structure] | type[ctypes.Union]
    ) -> None:
        if not isinstance(fld.ctype, Scalar):
            raise self.fail(None, f"aligned() on the non-scalar field {record.name}.{fld.name}")
        natural = ctypes.alignment(getattr(ctypes, fld.ctype.ctypes_name))
        if fld.align is not None and fld.align < natural:
            raise self.fail(
                None,
                f"aligned({fld.align}) below the natural alignment of "
                f"{record.name}.{fld.name} is not supported",
            )
        assert fld.align is not None
        self.module.guards.append(
            AlignmentGuard(record.name, fld.name, fld.ctype.ctypes_name, fld.align)
        )

    def fields(self, decl: c_ast.Node, outer: Record) -> list[Field]:
        if not isinstance(decl, c_ast.Decl):
            raise self.fail(decl, f"unsupported member: {type(decl).__name__}")
        if decl.bitsize is not None:
            raise self.fail(decl, f"bit-field {decl.name} is not supported")
        if decl.name is None:
            raise self.fail(decl, "unnamed (C11 anonymous) members are not supported")
        line = decl.coord.line
        inline_record = getattr(decl.type, "type", None)
        if isinstance(inline_record, (c_ast.Struct, c_ast.Union)) and inline_record.decls:
            line = inline_record.coord.line  # the comment sits where the member's type opens
        path = f"{outer.c_name.split()[-1]}.{decl.name}"
        ctype = self.ctype(decl.type, f"{outer.name}_{decl.name}", path)
        if isinstance(decl.type, c_ast.TypeDecl) and isinstance(decl.type.type, c_ast.Enum):
            block = self._enum_block(decl.type.type)
            if block is not None:
                self.field_enums[(outer.name, decl.name)] = block
        return [
            Field(
                name=decl.name,
                ctype=ctype,
                line=line,
                comment=self.comments.trailing(line) or self.comments.leading(line),
                align=self.alignment(decl),
            )
        ]

    def alignment(self, decl: c_ast.Decl) -> int | None:
        if not decl.align:
            return None
        if len(decl.align) != 1:
            raise self.fail(decl, "more than one attribute on one declaration")
        attribute = decl.align[0].alignment
        if (
            isinstance(attribute, c_ast.FuncCall)
            and isinstance(attribute.name, c_ast.ID)
            and attribute.name.name in ("aligned", "__aligned__")
            and attribute.args is not None
            and len(attribute.args.exprs) == 1
        ):
            value = self.constant(attribute.args.exprs[0])
            if value <= 0 or value & (value - 1):
                raise self.fail(decl, f"aligned({value}) is not a power of two")
            return value
        raise self.fail(decl, f"unsupported attribute __attribute__(({_c_text(attribute)}))")

    def ctype(self, node: c_ast.Node, anonymous_name: str, path: str) -> CType:
        if isinstance(node, c_ast.ArrayDecl):
            if node.dim_quals:
                raise self.fail(node, "qualified array dimensions are not supported")
            length = 0 if node.dim is None else self.constant(node.dim)
            if length < 0:
                raise self.fail(node, f"negative array length {length}")
            return Array(self.ctype(node.type, anonymous_name, path), length)
        if isinstance(node, c_ast.PtrDecl):
            raise self.fail(node, "pointer members are not supported (not part of a wire layout)")
        if not isinstance(node, c_ast.TypeDecl):
            raise self.fail(node, f"unsupported declarator: {type(node).__name__}")
        if node.quals:
            raise self.fail(node, f"qualifiers {' '.join(node.quals)} are not supported")
        inner = node.type
        if isinstance(inner, c_ast.IdentifierType):
            spelled = " ".join(inner.names)
            if spelled in KERNEL_TYPES:
                ctypes_name = KERNEL_TYPES[spelled][1]
            elif spelled in C_TYPES:
                ctypes_name = C_TYPES[spelled]
            else:
                raise self.fail(node, f"unknown type {spelled}")
            annotation = "bytes" if ctypes_name == "c_char" else "int"
            return Scalar(spelled, ctypes_name, annotation)
        if isinstance(inner, c_ast.Enum):
            if inner.values is not None:
                self.enum(inner)
            return self.enum_type(inner)
        if isinstance(inner, (c_ast.Struct, c_ast.Union)):
            kind = "struct" if isinstance(inner, c_ast.Struct) else "union"
            if inner.decls is not None:
                return RecordRef(self.record(inner, anonymous_name, path).name)
            known = self.records.get((kind, inner.name or ""))
            if known is None:
                raise self.fail(node, f"{kind} {inner.name} is used before it is defined")
            return RecordRef(known.name)
        raise self.fail(node, f"unsupported type {type(inner).__name__}")

    def enum_type(self, node: c_ast.Enum) -> Scalar:
        """GCC's enum layout: 4 bytes, unsigned unless some enumerator is negative."""
        block = self._enum_block(node)
        if block is None:
            raise self.fail(node, f"enum {node.name} is used before it is defined")
        values = [c.value for c in block.constants]
        spelled = f"enum {node.name}" if node.name else "enum"
        if min(values, default=0) < 0:
            if min(values) < -(1 << 31) or max(values) >= 1 << 31:
                raise self.fail(node, f"{spelled} does not fit in 32 bits")
            return Scalar(spelled, "c_int32", "int")
        if max(values, default=0) >= 1 << 32:
            raise self.fail(node, f"{spelled} does not fit in 32 bits")
        return Scalar(spelled, "c_uint32", "int")

    def _enum_block(self, node: c_ast.Enum) -> EnumBlock | None:
        for entry in self.module.constants:
            if not isinstance(entry, EnumBlock):
                continue
            if node.name and entry.name == node.name:
                return entry
            if node.values is not None and entry.line == node.coord.line:
                return entry
        return None

    # -- #defines -----------------------------------------------------------------------
    def defines(self, macros: list[tuple[str, int, bool, str]], expansions: dict[str, str]) -> None:
        typedef_preamble = typedefs()
        parser = c_parser.CParser()
        for name, line, function_like, body in macros:
            if function_like or not body:
                continue  # function-like macros and include guards carry no value
            expansion = expansions.get(name)
            reason = None
            value: CInt | None = None
            try:
                if expansion is None:
                    raise NotConstantError("it did not expand")
                ast = parser.parse(f"{typedef_preamble}\nint {MACRO_PROBE}{name} = ({expansion});")
                value = self.evaluator.evaluate(ast.ext[-1].init)
            except NotConstantError as error:
                reason = str(error)
                called = re.match(r"\s*\(*\s*([A-Za-z_]\w*)\s*\(", expansion or "")
                if called:
                    reason = f"it calls {called.group(1)}(), which no vendored header defines"
            except c_parser.ParseError:
                reason = "its expansion is not a C expression"
            if value is None:
                self.module.skipped.append(Skipped(name, line, reason or "unknown"))
                continue
            self.names.setdefault(name, value)
            literal = body.split("/*")[0].strip()
            is_literal = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", literal) is not None
            self.module.constants.append(
                Constant(
                    name=name,
                    value=value.value,
                    line=line,
                    hex=literal.lower().startswith("0x"),
                    comment=self.comments.trailing(line),
                    leading=self.comments.leading(line),
                    expression=None if is_literal else " ".join(literal.split()),
                )
            )

    def finish(self) -> HeaderModule:
        self.module.constants.sort(key=lambda entry: entry.line)
        self.module.event_members = event_members(self.module.records, self.field_enums)
        return self.module


def _c_text(node: c_ast.Node) -> str:
    from pycparser import c_generator

    return str(c_generator.CGenerator().visit(node))


def _ctypes_object(
    ctype: CType, live: dict[str, type[ctypes.Structure] | type[ctypes.Union]]
) -> Any:
    if isinstance(ctype, Scalar):
        return getattr(ctypes, ctype.ctypes_name)
    if isinstance(ctype, RecordRef):
        return live[ctype.name]
    return _ctypes_object(ctype.element, live) * ctype.length


def _live_class(
    record: Record, live: dict[str, type[ctypes.Structure] | type[ctypes.Union]]
) -> type[ctypes.Structure] | type[ctypes.Union]:
    """The ctypes class the generated code will define, built now for sizeof()."""
    base: type[ctypes.Structure] | type[ctypes.Union] = (
        ctypes.Structure if record.kind == "struct" else ctypes.Union
    )
    fields = [(f.name, _ctypes_object(f.ctype, live)) for f in record.fields]
    return type(record.name, (base,), {"_fields_": fields})


def parse_header(header: Path) -> HeaderModule:
    """Parse one header file into the model. Raises :class:`GeneratorError`."""
    header = header.resolve()
    source = header.read_text()
    builder = _Builder(header, source)
    with tempfile.TemporaryDirectory(prefix="pyprocconn-codegen-") as scratch:
        include = Path(scratch)
        for stub in STUB_HEADERS:
            (include / stub).parent.mkdir(parents=True, exist_ok=True)
            (include / stub).write_text(stub_source())
        macros = _macros_of(_run_cpp(header, include, "-dD"), header)
        probe = include / "probe.c"
        probe_lines = [f'#include "{header}"']
        probe_lines += [
            f"{MACRO_PROBE}{name} = {name}"
            for name, _, function_like, body in macros
            if not function_like and body
        ]
        probe.write_text("\n".join(probe_lines) + "\n")
        preprocessed = _run_cpp(probe, include)
    declarations, expansions = [], {}
    for text in preprocessed.splitlines():
        if text.startswith(MACRO_PROBE):
            name, _, expansion = text[len(MACRO_PROBE) :].partition(" = ")
            expansions[name] = expansion
        else:
            declarations.append(text)
    try:
        ast = c_parser.CParser().parse("\n".join(declarations), str(header))
    except c_parser.ParseError as error:
        known = ", ".join(KERNEL_TYPES)
        raise GeneratorError(
            f"cannot parse {error}: a construct pycparser does not know "
            f"(unknown type names are one cause: known are {known})"
        ) from None
    builder.translation_unit(ast)
    builder.defines(macros, expansions)
    return builder.finish()
