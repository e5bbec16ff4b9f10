"""Read UAPI headers with the C preprocessor and pycparser into :class:`HeaderModule` models.

:mod:`codegen.preprocess` gets each header through gcc's preprocessor; this module walks the
declarations (enums, structs, unions, their members); :mod:`codegen.macros` evaluates the
``#define``s once every header's declarations are known, so a macro may take ``sizeof`` of a
struct from another header. Any construct the generator does not translate stops it with an
error naming file and line.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import keyword
from collections import ChainMap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycparser import c_ast, c_generator, c_parser

from codegen.cexpr import CInt, Evaluator, NotConstantError, enum_constant
from codegen.comments import CommentIndex, kernel_doc_members
from codegen.errors import GeneratorError
from codegen.events import event_members
from codegen.inttypes import INTEGER_TYPES
from codegen.macros import Macro, translate_macros
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
)
from codegen.preprocess import explain_parse_error, preprocess, stub_include_dir

__all__ = ["GeneratorError", "parse_header", "parse_headers"]

LiveRecord = type[ctypes.Structure] | type[ctypes.Union]


class _Builder:
    """The model of one header: declarations first, then (with the others known) macros."""

    def __init__(self, header: Path, source: str, macros: list[Macro]) -> None:
        self.header = header
        self.comments = CommentIndex(source)
        self.macros = macros
        self.module = HeaderModule(
            header=header.name,
            module=header.stem.replace("-", "_"),
            sha256=hashlib.sha256(source.encode()).hexdigest(),
            comment=None,
        )
        self.names: dict[str, CInt] = {}
        self.records: dict[tuple[str, str], Record] = {}  # (kind, C tag) -> record
        self.live: dict[str, LiveRecord] = {}
        self.field_enums: dict[tuple[str, str], EnumBlock] = {}  # (record, field) -> its enum
        self.others: Sequence[_Builder] = ()
        self._evaluator = Evaluator(self.names, self._sizeof_record)

    # -- errors and helpers -------------------------------------------------------------
    def fail(self, node: c_ast.Node | None, message: str) -> GeneratorError:
        where = f"{self.header.name}:{node.coord.line}" if node and node.coord else self.header.name
        return GeneratorError(f"{where}: {message}")

    def mine(self, node: c_ast.Node) -> bool:
        return node.coord is not None and Path(str(node.coord.file)) == self.header

    def _sizeof_record(self, kind: str, tag: str) -> tuple[int, int]:
        for builder in (self, *self.others):
            record = builder.records.get((kind, tag))
            if record is not None:
                cls = builder.live[record.name]
                return ctypes.sizeof(cls), ctypes.alignment(cls)
        raise NotConstantError(f"sizeof({kind} {tag}): no header given to the generator defines it")

    def link(self, others: Sequence[_Builder]) -> None:
        """Let this header's macros use the other headers' constants and records."""
        self.others = [b for b in others if b is not self]
        names = ChainMap(self.names, *(b.names for b in self.others))
        self._evaluator = Evaluator(names, self._sizeof_record)

    @property
    def evaluator(self) -> Evaluator:
        return self._evaluator

    def define(self, name: str, value: CInt) -> None:
        self.names.setdefault(name, value)

    def constant(self, node: c_ast.Node) -> int:
        try:
            return self._evaluator.evaluate(node).value
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
            kind = type(node).__name__.lower()
            tag = getattr(node, "name", None) or "(anonymous)"
            raise self.fail(
                decl,
                f"__attribute__(({_c_text(decl.align[0].alignment)})) on a whole {kind} {tag} "
                "is not supported (only on a member)",
            )
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
            literal = str(item.value.value) if isinstance(item.value, c_ast.Constant) else None
            leading = self.comments.leading(line)
            block.constants.append(
                Constant(
                    name=item.name,
                    value=value,
                    line=line,
                    hex=literal.lower().startswith("0x") if literal else False,
                    comment=self.comments.trailing(line),
                    leading=None if leading == block.comment else leading,
                    expression=None
                    if literal is not None or item.value is None
                    else _c_text(item.value),
                )
            )
        self.module.constants.append(block)

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
        described = kernel_doc_members(record.comment)  # "@nlmsg_len: Length of message"
        for decl in node.decls or []:
            fld = self.field(decl, record)
            if fld.comment is None and fld.name in described:
                fld = dataclasses.replace(fld, comment=described[fld.name])
            record.fields.append(fld)
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
                self._guard(record, fld, fld.align)
        return record

    def _check_flexible(self, record: Record, node: c_ast.Node) -> None:
        for fld in record.fields[:-1]:
            if isinstance(fld.ctype, Array) and fld.ctype.length == 0 and record.kind == "struct":
                raise self.fail(node, f"flexible array {fld.name} is not the last member")

    def _guard(self, record: Record, fld: Field, align: int) -> None:
        where = f"{self.header.name}:{fld.line}"
        if not isinstance(fld.ctype, Scalar):
            raise GeneratorError(f"{where}: aligned() on the non-scalar field {fld.name}")
        if align < ctypes.alignment(getattr(ctypes, fld.ctype.ctypes_name)):
            raise GeneratorError(
                f"{where}: aligned({align}) below the natural alignment of "
                f"{record.name}.{fld.name} is not supported"
            )
        self.module.guards.append(
            AlignmentGuard(record.name, fld.name, fld.ctype.ctypes_name, align)
        )

    def _check_name(self, decl: c_ast.Decl) -> None:
        if decl.bitsize is not None:
            raise self.fail(decl, f"bit-field {decl.name} is not supported")
        if decl.name is None:
            raise self.fail(decl, "unnamed (C11 anonymous) members are not supported")
        if keyword.iskeyword(decl.name):
            raise self.fail(decl, f"member {decl.name} is a Python keyword: no attribute name")
        if decl.name.startswith("_") and decl.name.endswith("_"):
            raise self.fail(
                decl, f"member {decl.name}: _name_ is ctypes' namespace (_fields_, _docs_, ...)"
            )

    def field(self, decl: c_ast.Node, outer: Record) -> Field:
        if not isinstance(decl, c_ast.Decl):
            raise self.fail(decl, f"unsupported member: {type(decl).__name__}")
        self._check_name(decl)
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
        return Field(
            name=decl.name,
            ctype=ctype,
            line=line,
            comment=self.comments.trailing(line) or self.comments.leading(line),
            align=self.alignment(decl),
        )

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
            return self.array(node, anonymous_name, path)
        if isinstance(node, c_ast.PtrDecl):
            raise self.fail(node, "pointer members are not supported (not part of a wire layout)")
        if not isinstance(node, c_ast.TypeDecl):
            raise self.fail(node, f"unsupported declarator: {type(node).__name__}")
        if node.quals:
            raise self.fail(node, f"qualifiers {' '.join(node.quals)} are not supported")
        inner = node.type
        if isinstance(inner, c_ast.IdentifierType):
            return self.scalar(node, " ".join(inner.names))
        if isinstance(inner, c_ast.Enum):
            if inner.values is not None:
                self.enum(inner)
            return self.enum_type(inner)
        if isinstance(inner, (c_ast.Struct, c_ast.Union)):
            return self.record_ref(node, inner, anonymous_name, path)
        raise self.fail(node, f"unsupported type {type(inner).__name__}")

    def array(self, node: c_ast.ArrayDecl, anonymous_name: str, path: str) -> Array:
        if node.dim_quals:
            raise self.fail(node, "qualified array dimensions are not supported")
        length = 0 if node.dim is None else self.constant(node.dim)
        if length < 0:
            raise self.fail(node, f"negative array length {length}")
        return Array(self.ctype(node.type, anonymous_name, path), length)

    def scalar(self, node: c_ast.Node, spelled: str) -> Scalar:
        known = INTEGER_TYPES.get(spelled)
        if known is None:
            raise self.fail(node, f"unknown type {spelled}")
        annotation = "bytes" if known.ctypes_name == "c_char" else "int"
        return Scalar(spelled, known.ctypes_name, annotation)

    def record_ref(
        self, node: c_ast.Node, inner: c_ast.Struct | c_ast.Union, anonymous_name: str, path: str
    ) -> RecordRef:
        kind = "struct" if isinstance(inner, c_ast.Struct) else "union"
        record = (
            self.record(inner, anonymous_name, path)
            if inner.decls is not None
            else self.records.get((kind, inner.name or ""))
        )
        if record is None:
            raise self.fail(node, f"{kind} {inner.name} is used before it is defined")
        spelled = f"anonymous {kind}" if record.anonymous else record.c_name
        return RecordRef(record.name, spelled)

    def enum_type(self, node: c_ast.Enum) -> Scalar:
        """GCC's enum layout: 4 bytes, unsigned unless some enumerator is negative."""
        block = self._enum_block(node)
        if block is None:
            raise self.fail(node, f"enum {node.name} is used before it is defined")
        values = [c.value for c in block.constants]
        spelled = f"enum {node.name}" if node.name else "enum"
        low, high = min(values, default=0), max(values, default=0)
        signed = low < 0
        if (signed and (low < -(1 << 31) or high >= 1 << 31)) or high >= 1 << 32:
            raise self.fail(node, f"{spelled} does not fit in 32 bits")
        return Scalar(spelled, INTEGER_TYPES["__s32" if signed else "__u32"].ctypes_name, "int")

    def _enum_block(self, node: c_ast.Enum) -> EnumBlock | None:
        for entry in self.module.constants:
            if not isinstance(entry, EnumBlock):
                continue
            if node.name and entry.name == node.name:
                return entry
            if node.values is not None and entry.line == node.coord.line:
                return entry
        return None

    def finish(self) -> HeaderModule:
        self.module.constants.sort(key=lambda entry: entry.line)
        self.module.event_members = event_members(self.module.records, self.field_enums)
        return self.module


def _c_text(node: c_ast.Node) -> str:
    return str(c_generator.CGenerator().visit(node))


def _ctypes_object(ctype: CType, live: dict[str, LiveRecord]) -> Any:
    if isinstance(ctype, Scalar):
        return getattr(ctypes, ctype.ctypes_name)
    if isinstance(ctype, RecordRef):
        return live[ctype.name]
    return _ctypes_object(ctype.element, live) * ctype.length


def _live_class(record: Record, live: dict[str, LiveRecord]) -> LiveRecord:
    """The ctypes class the generated code will define, built now for sizeof()."""
    base: LiveRecord = ctypes.Structure if record.kind == "struct" else ctypes.Union
    fields = [(f.name, _ctypes_object(f.ctype, live)) for f in record.fields]
    return type(record.name, (base,), {"_fields_": fields})


def _declarations(header: Path, include_dir: Path) -> _Builder:
    source = header.read_text()
    preprocessed = preprocess(header, include_dir)
    builder = _Builder(header, source, preprocessed.macros)
    try:
        ast = c_parser.CParser().parse(preprocessed.declarations, str(header))
    except c_parser.ParseError as error:
        raise explain_parse_error(header, include_dir, error) from None
    builder.translation_unit(ast)
    return builder


def parse_headers(headers: Sequence[Path]) -> list[HeaderModule]:
    """Parse header files into the model, one module each. Raises :class:`GeneratorError`.

    Declarations are read header by header; macros are evaluated afterwards with every
    header's constants and records known (``sizeof(struct cn_msg)`` in another header works).
    """
    with stub_include_dir() as include:
        builders = [_declarations(header.resolve(), include) for header in headers]
    for builder in builders:
        builder.link(builders)
    translate_macros(builders)
    return [builder.finish() for builder in builders]


def parse_header(header: Path) -> HeaderModule:
    """Parse one header file into the model. Raises :class:`GeneratorError`."""
    return parse_headers([header])[0]
