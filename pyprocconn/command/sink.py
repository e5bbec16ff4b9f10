"""Where the command's lines go: held, then written whole, in one write."""

from __future__ import annotations

import signal
import time
from typing import TextIO

SHOW_WITHIN = 0.05  # seconds a line may wait before it is written
PENDING_MAX = 1 << 16  # characters of lines held at most before they are written
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class Sink:
    """Holds lines and writes them out at most ``SHOW_WITHIN`` seconds after the first of them
    (or once ``PENDING_MAX`` characters wait), in one write with the stop signals held off: never
    a line per write, whatever the stream's own buffering (``PYTHONUNBUFFERED`` makes it a
    syscall per line, and each write to a pipe wakes its reader, which takes the CPU from the
    reading of /proc: flushed per line, the command read as few as 6 of 300 short-lived command
    lines through a pipe), and never a line cut by Ctrl-C."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending: list[str] = []
        self._size = 0
        self._since = 0.0  # time.monotonic() of the first pending line

    def write(self, line: str) -> None:
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append(line)
        self._size += len(line) + 1
        if self._size >= PENDING_MAX:
            self.flush()

    def flush_in(self) -> float | None:
        """Seconds until the pending lines must be written (None: none pending)."""
        if not self._pending:
            return None
        return max(0.0, self._since + SHOW_WITHIN - time.monotonic())

    def batch_done(self) -> None:
        """Write the pending lines once they have waited ``SHOW_WITHIN``."""
        if self._pending and time.monotonic() - self._since >= SHOW_WITHIN:
            self.flush()

    def flush(self) -> None:
        """Write every pending line now, whole."""
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        self._size = 0
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self.stream.write(text)
            self.stream.flush()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
