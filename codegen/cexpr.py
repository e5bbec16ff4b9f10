"""Evaluate C integer constant expressions (pycparser AST) with C's types and wrap-around.

Types follow the LP64 Linux ABI: int 32, long 64. Anything that is not an integer constant
expression raises :class:`NotConstantError` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pycparser import c_ast

from codegen.inttypes import INTEGER_TYPES


class NotConstantError(Exception):
    """The expression is not an integer constant expression this evaluator understands."""


@dataclass(frozen=True)
class CInt:
    value: int
    bits: int
    signed: bool

    @staticmethod
    def make(value: int, bits: int, signed: bool) -> CInt:
        value &= (1 << bits) - 1
        if signed and value >= 1 << (bits - 1):
            value -= 1 << bits
        return CInt(value, bits, signed)


INT = (32, True)
UINT = (32, False)
LONG = (64, True)
ULONG = (64, False)


def _literal(text: str) -> CInt:
    body = text.lower().rstrip("ul")
    suffix = text[len(body) :].lower()
    try:
        value = int(body, 0) if not (body.startswith("0") and body[1:].isdigit()) else int(body, 8)
    except ValueError:
        raise NotConstantError(f"not an integer literal: {text}") from None
    decimal = not body.startswith("0") or body == "0"
    candidates: list[tuple[int, bool]]
    if "u" in suffix:
        candidates = [UINT, ULONG] if "l" not in suffix else [ULONG]
    elif "l" in suffix:
        candidates = [LONG] if decimal else [LONG, ULONG]
    else:
        candidates = [INT, LONG] if decimal else [INT, UINT, LONG, ULONG]
    for bits, signed in candidates:
        limit = 1 << (bits - 1 if signed else bits)
        if value < limit:
            return CInt(value, bits, signed)
    raise NotConstantError(f"integer literal too large: {text}")


def enum_constant(value: int) -> CInt:
    """The type GCC gives an enumerator: int when it fits, else the first wider type."""
    for bits, signed in (INT, UINT, LONG, ULONG):
        low = -(1 << (bits - 1)) if signed else 0
        high = (1 << (bits - 1 if signed else bits)) - 1
        if low <= value <= high:
            return CInt(value, bits, signed)
    raise NotConstantError(f"enumerator out of range: {value}")


def _promote(a: CInt) -> CInt:
    return CInt(a.value, 32, True) if a.bits < 32 else a


def _common(a: CInt, b: CInt) -> tuple[int, bool]:
    a, b = _promote(a), _promote(b)
    if a.bits != b.bits:
        wide = a if a.bits > b.bits else b
        return wide.bits, wide.signed
    return a.bits, a.signed and b.signed


class Evaluator:
    def __init__(
        self,
        names: Mapping[str, CInt],
        sizeof_record: Callable[[str, str], tuple[int, int]],
    ) -> None:
        self._names = names
        self._sizeof_record = sizeof_record  # (kind, tag) -> (size, align)

    def evaluate(self, node: c_ast.Node) -> CInt:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise NotConstantError(f"{type(node).__name__} is not an integer constant expression")
        result: CInt = method(node)
        return result

    def _Constant(self, node: c_ast.Constant) -> CInt:
        if node.type == "char":
            text = node.value[1:-1]
            if len(text) == 1:
                return CInt(ord(text), 32, True)
            raise NotConstantError(f"character constant {node.value}")
        if node.type not in (
            "int",
            "unsigned int",
            "long int",
            "unsigned long int",
            "long long int",
            "unsigned long long int",
        ):
            raise NotConstantError(f"{node.type} constant {node.value}")
        return _literal(node.value)

    def _ID(self, node: c_ast.ID) -> CInt:
        if node.name in self._names:
            return self._names[node.name]
        raise NotConstantError(f"unknown name {node.name}: no given header defines it")

    def _type_of(self, node: c_ast.Node) -> tuple[int, bool]:
        if isinstance(node, c_ast.Typename):
            node = node.type
        if isinstance(node, c_ast.TypeDecl):
            inner = node.type
            if isinstance(inner, c_ast.IdentifierType):
                spelled = " ".join(inner.names)
                if spelled in INTEGER_TYPES:
                    known = INTEGER_TYPES[spelled]
                    return known.bits, known.signed
                raise NotConstantError(f"cast or sizeof of the unknown type {spelled}")
        raise NotConstantError("cast or sizeof of a type other than an integer type")

    def _Cast(self, node: c_ast.Cast) -> CInt:
        bits, signed = self._type_of(node.to_type)
        return CInt.make(self.evaluate(node.expr).value, bits, signed)

    def _sizeof(self, operand: c_ast.Node) -> int:
        if isinstance(operand, c_ast.Typename) and isinstance(operand.type, c_ast.TypeDecl):
            inner = operand.type.type
            if isinstance(inner, (c_ast.Struct, c_ast.Union)) and inner.name:
                kind = "struct" if isinstance(inner, c_ast.Struct) else "union"
                return self._sizeof_record(kind, inner.name)[0]
        return self._type_of(operand)[0] // 8

    def _UnaryOp(self, node: c_ast.UnaryOp) -> CInt:
        if node.op == "sizeof":
            return CInt(self._sizeof(node.expr), *ULONG)
        a = _promote(self.evaluate(node.expr))
        if node.op == "-":
            return CInt.make(-a.value, a.bits, a.signed)
        if node.op == "+":
            return a
        if node.op == "~":
            return CInt.make(~a.value, a.bits, a.signed)
        if node.op == "!":
            return CInt(int(a.value == 0), *INT)
        raise NotConstantError(f"unary operator {node.op}")

    def _BinaryOp(self, node: c_ast.BinaryOp) -> CInt:
        a, b = self.evaluate(node.left), self.evaluate(node.right)
        op = node.op
        if op in ("&&", "||"):
            truth = (a.value != 0 and b.value != 0) if op == "&&" else (a.value or b.value)
            return CInt(int(bool(truth)), *INT)
        if op in ("<<", ">>"):
            a = _promote(a)
            if b.value < 0 or b.value >= a.bits:
                raise NotConstantError(f"shift by {b.value}")
            shifted = a.value << b.value if op == "<<" else a.value >> b.value
            return CInt.make(shifted, a.bits, a.signed)
        bits, signed = _common(a, b)
        x = CInt.make(a.value, bits, signed).value
        y = CInt.make(b.value, bits, signed).value
        compare = {"==": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}
        if op in compare:
            return CInt(int(compare[op]), *INT)
        if op in ("/", "%"):
            if y == 0:
                raise NotConstantError("division by zero")
            quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
            return CInt.make(quotient if op == "/" else x - quotient * y, bits, signed)
        arithmetic = {"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y, "^": x ^ y}
        if op not in arithmetic:
            raise NotConstantError(f"binary operator {op}")
        return CInt.make(arithmetic[op], bits, signed)

    def _TernaryOp(self, node: c_ast.TernaryOp) -> CInt:
        chosen = node.iftrue if self.evaluate(node.cond).value else node.iffalse
        return self.evaluate(chosen)
