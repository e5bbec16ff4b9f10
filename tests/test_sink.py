"""The command's line sink: lines leave whole, in few writes, whatever PYTHONUNBUFFERED says."""

from __future__ import annotations

import io
import signal
import threading

import pytest

from pyprocconn.command.sink import PENDING_MAX, Sink


class Writes(io.StringIO):
    """A text stream that remembers each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_lines_are_held_and_written_in_one_write() -> None:
    stream = Writes()
    sink = Sink(stream)
    for i in range(1000):
        sink.write(f"line {i}")
    assert stream.calls == []  # held: not one write per line
    assert sink.flush_in() is not None
    sink.flush()
    assert len(stream.calls) == 1
    assert stream.getvalue() == "".join(f"line {i}\n" for i in range(1000))
    assert sink.flush_in() is None


def test_a_full_buffer_is_written_at_once() -> None:
    stream = Writes()
    sink = Sink(stream)
    line = "x" * 999
    for _ in range(PENDING_MAX // 1000 + 1):
        sink.write(line)
    assert len(stream.calls) == 1


def test_ctrl_c_during_a_write_never_cuts_a_line() -> None:
    class Interrupted(Writes):
        def write(self, text: str) -> int:
            # Ctrl-C while the text is being written, to this thread (the command has no other;
            # pytest-timeout's watchdog thread would take a signal sent to the process).
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            half = len(text) // 2
            return super().write(text[:half]) + super().write(text[half:])

    stream = Interrupted()
    sink = Sink(stream)
    for i in range(100):
        sink.write(f"line {i}")
    with pytest.raises(KeyboardInterrupt):
        sink.flush()
    assert stream.getvalue() == "".join(f"line {i}\n" for i in range(100))
