"""Strings a process chose (arguments, names) made safe for a text column.

Any local user picks these: they may hold control characters (ESC, CR, LF, C1 such as U+009B),
format characters (bidi overrides, zero-width), line separators, and bytes that are not UTF-8
(lone surrogates U+DC80-U+DCFF, as :func:`os.fsdecode` gives them). What these functions return
holds none of that: only printable characters (:meth:`str.isprintable`), so it cannot drive a
terminal, always encodes as strict UTF-8, and reads back to exactly what was given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BARE = re.compile(r"[A-Za-z0-9@%+=:,./_-]+")
_SHELL_ESCAPES = {
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x1b": "\\e",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
    "\\": "\\\\",
    "'": "\\'",
}
_NAME_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _code(char: str) -> str:
    r"""A character not to show raw, as bash's ``$'...'`` reads it: a raw byte (U+DC80-U+DCFF) or
    an ASCII control as ``\xHH``; any other code point as ``\uHHHH`` or ``\UHHHHHHHH`` (so U+009B,
    two bytes in UTF-8, never reads as the byte 0x9b). Full width: a hex digit after stays apart."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _shown(text: str, ascii_only: bool) -> bool:
    """Whether every character may be shown as it is."""
    return text.isprintable() and (not ascii_only or text.isascii())


def _escape(text: str, escapes: dict[str, str], ascii_only: bool) -> str:
    return "".join(
        escapes.get(char) or (char if _shown(char, ascii_only) else _code(char)) for char in text
    )


def shell_quote(arg: str, *, ascii_only: bool = False) -> str:
    r"""One argument (as :func:`os.fsdecode` gives it) written so that bash reads it back as exactly
    its bytes, like ``printf %q``: bare when only ``A-Za-z0-9@%+=:,./_-``; ``'...'`` when every
    character is printable (``'`` as ``'\''``, which :func:`shlex.split` reads too); otherwise
    ``$'...'`` with ``\n \t \r \e \a \b \f \v \\ \'``, ``\xHH`` for other ASCII controls and raw
    bytes, ``\uHHHH``/``\UHHHHHHHH`` for other non-printable characters (bidi overrides, U+2028,
    C1 controls: these need a UTF-8 locale in the bash that reads them). ``''`` when empty.
    ``ascii_only``: for an output that cannot encode more, every other character as ``\uHHHH``."""
    if _BARE.fullmatch(arg):
        return arg
    if _shown(arg, ascii_only):
        return "'" + arg.replace("'", "'\\''") + "'"
    return "$'" + _escape(arg, _SHELL_ESCAPES, ascii_only) + "'"


def shell_join(argv: Sequence[str], *, ascii_only: bool = False) -> str:
    """A command line as one line of shell words: each argument :func:`shell_quote`-d, joined by
    one space. A first word holding ``=`` is quoted, so bash does not read it as an assignment
    (``'A=b' cmd`` runs ``A=b``; ``A=b cmd`` would run ``cmd``)."""
    words = [shell_quote(arg, ascii_only=ascii_only) for arg in argv]
    if words and words[0] == argv[0] and "=" in argv[0]:
        words[0] = f"'{argv[0]}'"
    return " ".join(words)


def escape_name(name: str, *, ascii_only: bool = False) -> str:
    r"""One name (comm, exe, cwd, cgroup, user name) for a text column: printable characters as
    they are, a backslash doubled, ``\n \t \r``, a raw byte (U+DC80-U+DCFF) or other ASCII control
    as ``\xHH`` (``lit\xff`` is ``lit`` and the byte 0xff, ``lit\\xff`` the text ``lit\xff``), any
    other non-printable character as ``\uHHHH``/``\UHHHHHHHH``. Distinct names stay distinct.
    ``ascii_only``: for an output that cannot encode more, every other character as ``\uHHHH``."""
    if _shown(name, ascii_only) and "\\" not in name:
        return name
    return _escape(name, _NAME_ESCAPES, ascii_only)
