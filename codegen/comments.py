"""Find the C comments of a header so the generated code can carry them along.

The preprocessor drops comments, so they are read from the raw text and attached by line:
a comment on a declaration's own line, or a block of comment-only lines right above it.
A comment-only line indented deeper than the complete declaration just above it continues
that declaration's comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Comment:
    first_line: int  # 1-based
    last_line: int
    text: str
    alone: bool  # nothing but whitespace before it on its first line
    indent: int  # column where the comment starts (tabs of 8)


def _clean(raw: str) -> str:
    if raw.startswith("//"):
        return raw[2:].strip()
    body = raw[2:-2]
    lines = [re.sub(r"^\s*\*+ ?", "", line).rstrip() for line in body.splitlines()]
    return "\n".join(lines).strip("\n").strip()


def scan_comments(source: str) -> list[Comment]:
    comments: list[Comment] = []
    i, line, n = 0, 1, len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in "\"'":  # skip string and character literals
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            i = j + 1
        elif source.startswith("/*", i) or source.startswith("//", i):
            if source[i + 1] == "*":
                end = source.find("*/", i + 2)
                end = n if end < 0 else end + 2
            else:
                end = source.find("\n", i)
                end = n if end < 0 else end
            raw = source[i:end]
            line_start = source.rfind("\n", 0, i) + 1
            before = source[line_start:i]
            text = _clean(raw)
            if text:
                comments.append(
                    Comment(
                        first_line=line,
                        last_line=line + raw.count("\n"),
                        text=text,
                        alone=not before.strip(),
                        indent=len(before.expandtabs(8)),
                    )
                )
            line += raw.count("\n")
            i = end
        else:
            i += 1
    return comments


class CommentIndex:
    """Answers "which comment belongs to the declaration on line N"."""

    def __init__(self, source: str) -> None:
        self._lines = source.splitlines()
        comments = scan_comments(source)
        self._trailing = {c.first_line: c for c in comments if not c.alone}
        self._by_last_line = {c.last_line: c for c in comments if c.alone}
        self._by_first_line = {c.first_line: c for c in comments if c.alone}

    def _indent(self, line: int) -> int:
        text = self._lines[line - 1].expandtabs(8)
        return len(text) - len(text.lstrip())

    def _continues_above(self, comment: Comment) -> bool:
        above = comment.first_line - 1
        if above < 1 or above in self._by_last_line:
            return False
        code = self._lines[above - 1].rstrip()
        return code.endswith(";") and comment.indent > self._indent(above)

    def leading(self, line: int) -> str | None:
        """The comment block ending right above ``line`` (a blank line ends the block)."""
        parts: list[str] = []
        cursor = line - 1
        while cursor in self._by_last_line:
            comment = self._by_last_line[cursor]
            if self._continues_above(comment):
                break
            parts.insert(0, comment.text)
            cursor = comment.first_line - 1
        return "\n".join(parts) or None

    def trailing(self, line: int) -> str | None:
        """The comment after code on ``line``, and comment-only lines below that continue it."""
        parts: list[str] = []
        if line in self._trailing:
            parts.append(self._trailing[line].text)
        below = line + 1
        while below in self._by_first_line and self._continues_above(self._by_first_line[below]):
            comment = self._by_first_line[below]
            parts.append(comment.text)
            below = comment.last_line + 1
        return " ".join(parts) or None


_KERNEL_DOC_MEMBER = re.compile(r"^@(\w+):\s*(.*)$")


def kernel_doc_members(comment: str | None) -> dict[str, str]:
    """``@name: text`` entries of a kernel-doc comment, continuation lines joined."""
    found: dict[str, str] = {}
    current = None
    for line in (comment or "").splitlines():
        entry = _KERNEL_DOC_MEMBER.match(line.strip())
        if entry:
            current = entry.group(1)
            found[current] = entry.group(2).strip()
        elif current and line.strip():
            found[current] = f"{found[current]} {line.strip()}".strip()
        else:
            current = None
    return found
