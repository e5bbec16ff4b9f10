"""Quoting what processes chose (pyprocconn.command.quoting): read back by bash, safe to show."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import unicodedata
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyprocconn.command.quoting import escape_name, shell_join, shell_quote

HOSTILE = [
    "ls\n12:00:00.000000 exec           1  FORGED",
    "\x1b]0;PWNED\x07",
    "\x1b[31mred",
    "over\rwrite",
    "del\x7f",
    "csi\x9b31m",
    "\u202eevil",
    os.fsdecode(b"a\xffb"),
    "it's",
    '"',
    "$HOME",
    "`id`",
    "*",
    "two words",
    " ",
    "",
    "trailing\\",
    "\x011f",
    "\u202e1f",
    "\U000e0001ff",
    "é",
    "日本",
    "zero\u200bwidth",
    "line\u2028sep",
    "nbsp\xa0",
    "#x",
    "~root",
    "{a,b}",
    "!!",
]
UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Arguments as os.fsdecode gives them: any character, raw bytes as U+DC80-U+DCFF, all C0 and C1.
ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
    st.characters(max_codepoint=0x9F),
)
ANY_TEXT = st.text(ANY_CHAR)
# Arguments as the kernel gives them: any bytes but NUL, random or the UTF-8 of any code point.
FS_CHAR = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
)
ANY_BYTES = st.one_of(st.binary(), st.text(FS_CHAR).map(os.fsencode)).map(
    lambda raw: raw.replace(b"\0", b"")
)


def bash(script: str) -> bytes:
    """What bash -c SCRIPT writes, in a UTF-8 locale."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": "/h"}
    run = subprocess.run(
        ["bash", "-c", os.fsencode(script)], env=env, capture_output=True, check=True, timeout=10
    )
    return run.stdout


def read_back(argv: Sequence[str]) -> bytes:
    return bash('printf "%s\\0" ' + shell_join(argv))


def nul_ended(argv: Sequence[str]) -> bytes:
    return b"".join(os.fsencode(arg) + b"\0" for arg in argv)


def assert_safe(shown: str) -> None:
    assert not [c for c in shown if unicodedata.category(c) in UNSAFE], ascii(shown)
    assert shown.isprintable(), ascii(shown)
    shown.encode("utf-8")  # strict


def test_hostile_arguments_read_back_by_bash() -> None:
    assert read_back(HOSTILE) == nul_ended(HOSTILE)
    for arg in HOSTILE:
        assert_safe(shell_quote(arg))


def test_shown_forms() -> None:
    assert shell_quote("") == "''"
    assert shell_quote("--color=auto") == "--color=auto"
    assert shell_quote("two words") == "'two words'"
    assert shell_quote("it's") == "'it'\\''s'"
    assert shell_quote("日本") == "'日本'"
    assert shell_quote("a\nb") == "$'a\\nb'"
    assert shell_quote("\x1b]0;PWNED\x07") == "$'\\e]0;PWNED\\a'"
    assert shell_quote(os.fsdecode(b"a\xffb")) == "$'a\\xffb'"
    assert shell_quote("\x011f") == "$'\\x011f'"  # bash's \xHH takes at most two digits
    assert shell_quote("csi\x9b") == "$'csi\\u009b'"  # U+009B, not the byte 0x9b
    assert shell_quote("\u202eé") == "$'\\u202eé'"
    assert shell_join(["echo", "", "a b"]) == "echo '' 'a b'"


def test_first_word_is_never_an_assignment() -> None:
    # bash hands a command it cannot find in PATH, with its arguments, to command_not_found_handle.
    handler = 'command_not_found_handle() { printf "%s\\0" "$@"; }; '
    for argv in (["A=b", "x"], ["LD_PRELOAD=x.so", *HOSTILE]):
        assert shell_join(argv).startswith("'")
        assert bash(handler + shell_join(argv)) == nul_ended(argv)
    assert shell_join(["x", "A=b"]) == "x A=b"


def test_matches_printf_q_where_it_matters() -> None:
    """Same bare words as bash's printf %q, the same bytes read back, and never a raw control.

    bash writes ``,`` as ``\\,`` (for a word inside braces); alone it needs no quoting."""
    words = [
        "/usr/bin/x",
        "--c=auto",
        "a@b:1+3%",
        "1,2",
        "a b",
        "it's",
        "a\nb",
        "\x1b[31m",
        "\u202e",
    ]
    theirs = bash("printf '%q\\0' " + shell_join(words)).decode().split("\0")[:-1]
    for word, their in zip(words, theirs, strict=True):
        if re.fullmatch(r"[\w@%+=:./-]+", word, re.ASCII):
            assert shell_quote(word) == their
        assert bash(f"printf '%s\\0' {their}") == bash(f"printf '%s\\0' {shell_quote(word)}")
    assert theirs[3] == "1\\,2"
    assert theirs[-1] == "\u202e"  # bash shows a bidi override raw; shell_quote does not
    assert shell_quote("\u202e") == "$'\\u202e'"


@settings(max_examples=200, deadline=None)
@given(st.lists(ANY_BYTES, min_size=1, max_size=4))
def test_any_bytes_read_back_by_bash(args: list[bytes]) -> None:
    argv = [os.fsdecode(raw) for raw in args]
    assert read_back(argv) == b"".join(raw + b"\0" for raw in args)


@settings(max_examples=500)
@given(st.lists(ANY_TEXT, max_size=4))
def test_any_text_shown_safely(argv: list[str]) -> None:
    assert_safe(shell_join(argv))
    for arg in argv:
        assert_safe(escape_name(arg))


@given(st.lists(st.text(st.characters(exclude_categories=("Cc", "Cs"))), max_size=4))
def test_printable_arguments_split_by_shlex(argv: list[str]) -> None:
    argv = [arg for arg in argv if arg.isprintable()]
    assert shlex.split(shell_join(argv)) == argv


_NAME_ESCAPE = re.compile(r"\\(?:(\\)|([ntr])|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))")


def unescape_name(shown: str) -> str:
    """The inverse of escape_name: what a reader of the text column can recover."""

    def one(match: re.Match[str]) -> str:
        backslash, letter, byte, *wide = match.groups()
        if backslash:
            return "\\"
        if letter:
            return {"n": "\n", "t": "\t", "r": "\r"}[letter]
        if byte:
            code = int(byte, 16)
            return chr(code if code < 0x80 else 0xDC00 + code)
        return chr(int(next(w for w in wide if w), 16))

    return _NAME_ESCAPE.sub(one, shown)


@settings(max_examples=500)
@given(ANY_TEXT)
def test_escape_name_is_reversible(name: str) -> None:
    assert unescape_name(escape_name(name)) == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("bash", "bash"),
        ("日本", "日本"),
        (os.fsdecode(b"lit\xff"), "lit\\xff"),  # the byte 0xff, as the README shows it
        ("lit\\xff", "lit\\\\xff"),  # the characters
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\x1b[31m\x7f", "\\x1b[31m\\x7f"),
        ("\x9b", "\\u009b"),  # the character U+009B, not the byte 0x9b
        ("\u202e\u2028\U000e0001", "\\u202e\\u2028\\U000e0001"),
    ],
)
def test_escape_name_forms(name: str, shown: str) -> None:
    assert escape_name(name) == shown
    assert unescape_name(shown) == name


def test_ascii_only_outputs_read_back_the_same() -> None:
    """For a stream that encodes only ASCII: nothing else is written, bash reads back the same
    bytes, and a name still unescapes to itself."""
    argv = [*HOSTILE, "café", "日本", os.fsdecode(b"caf\xc3\xa9")]
    shown = shell_join(argv, ascii_only=True)
    assert shown.isascii() and shown.isprintable()
    assert bash('printf "%s\\0" ' + shown) == nul_ended(argv)
    for name in argv:
        escaped = escape_name(name, ascii_only=True)
        assert escaped.isascii() and unescape_name(escaped) == name
