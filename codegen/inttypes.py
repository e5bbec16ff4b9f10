"""The one table of C integer types: what the stub headers, the evaluator and the model read.

Each type name the headers may use, standard C spellings and the kernel's own names, maps to
its width and signedness on the LP64 Linux ABI (what the expression evaluator needs) and the
ctypes type with its layout (what the model, and so the renderer, uses). The kernel's names
also carry the C type the stub ``<linux/types.h>`` typedefs them to, so the preprocessed
header and this table cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntegerType:
    bits: int
    signed: bool
    ctypes_name: str  # attribute of the ctypes module: "c_uint32"
    typedef: str | None = None  # a kernel name: the C type the stub header typedefs it to


def _c(bits: int, signed: bool, ctypes_name: str) -> IntegerType:
    return IntegerType(bits, signed, ctypes_name)


_CHAR = _c(8, True, "c_char")  # read as bytes; char is signed on x86-64 (and unsigned on arm64,
# where the width, all that the layout depends on, is the same)
_SCHAR, _UCHAR = _c(8, True, "c_byte"), _c(8, False, "c_ubyte")
_SHORT, _USHORT = _c(16, True, "c_short"), _c(16, False, "c_ushort")
_INT, _UINT = _c(32, True, "c_int"), _c(32, False, "c_uint")
_LONG, _ULONG = _c(64, True, "c_long"), _c(64, False, "c_ulong")
_LLONG, _ULLONG = _c(64, True, "c_longlong"), _c(64, False, "c_ulonglong")

_STANDARD: dict[str, IntegerType] = {
    "char": _CHAR,
    "signed char": _SCHAR,
    "unsigned char": _UCHAR,
    "short": _SHORT,
    "short int": _SHORT,
    "signed short": _SHORT,
    "unsigned short": _USHORT,
    "unsigned short int": _USHORT,
    "int": _INT,
    "signed": _INT,
    "signed int": _INT,
    "unsigned": _UINT,
    "unsigned int": _UINT,
    "long": _LONG,
    "long int": _LONG,
    "unsigned long": _ULONG,
    "unsigned long int": _ULONG,
    "long long": _LLONG,
    "long long int": _LLONG,
    "unsigned long long": _ULLONG,
    "unsigned long long int": _ULLONG,
}


def _kernel(typedef: str, ctypes_name: str) -> IntegerType:
    base = _STANDARD[typedef]
    return IntegerType(base.bits, base.signed, ctypes_name, typedef)


# The kernel's names from <linux/types.h>, <linux/posix_types.h> and <linux/socket.h>.
_KERNEL: dict[str, IntegerType] = {
    "__u8": _kernel("unsigned char", "c_uint8"),
    "__u16": _kernel("unsigned short", "c_uint16"),
    "__u32": _kernel("unsigned int", "c_uint32"),
    "__u64": _kernel("unsigned long long", "c_uint64"),
    "__s8": _kernel("signed char", "c_int8"),
    "__s16": _kernel("short", "c_int16"),
    "__s32": _kernel("int", "c_int32"),
    "__s64": _kernel("long long", "c_int64"),
    "__le16": _kernel("unsigned short", "c_uint16"),
    "__le32": _kernel("unsigned int", "c_uint32"),
    "__le64": _kernel("unsigned long long", "c_uint64"),
    "__be16": _kernel("unsigned short", "c_uint16"),
    "__be32": _kernel("unsigned int", "c_uint32"),
    "__be64": _kernel("unsigned long long", "c_uint64"),
    "__kernel_pid_t": _kernel("int", "c_int"),
    "__kernel_sa_family_t": _kernel("unsigned short", "c_ushort"),
}

INTEGER_TYPES: dict[str, IntegerType] = {**_STANDARD, **_KERNEL}
KERNEL_TYPE_NAMES: tuple[str, ...] = tuple(_KERNEL)


def stub_typedefs() -> str:
    """The C typedefs of the kernel's type names, for the stub headers."""
    return "".join(f"typedef {INTEGER_TYPES[n].typedef} {n};\n" for n in KERNEL_TYPE_NAMES)
