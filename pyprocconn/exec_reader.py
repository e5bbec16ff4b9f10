"""A second listener for the race with short-lived processes: a child process that reads each
exec's command line, ``exe`` and ``cwd`` the moment it is woken, and hands them over a pipe.

The race is lost when the listener is woken late (on a busy CPU, the wake-up waits for the
running task; on a kernel built without preemption, for its system call to end), and two
listeners are seldom held up at once: in ``benchmarks.capture``'s exec storm the command's worst
round of ten went from 1974 to 1999 of 2000 command lines with this reader (JSON: 1982 to 1998),
for a quarter more CPU (the README's capture section). A process, not a thread: a thread shares
the interpreter lock, which a listener held up may be holding. It subscribes to execs only,
filtered by the kernel (6.6+; elsewhere it would wake for every event, and it ends at once).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import time
from typing import NamedTuple

from pyprocconn import procfs
from pyprocconn.connector import ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventType, ExecEvent
from pyprocconn.priority import shorten_slice, time_slice

_Sent = list[tuple[tuple[int, int], tuple[bytes | None, str | None, str | None, int]]]
_KEPT = 1024  # reads held for the table at most (most are never needed: it read them itself)


class EarlyRead(NamedTuple):
    """What the reader found for one exec, and when it was done reading (CLOCK_MONOTONIC)."""

    cmdline: bytes | None
    exe: str | None
    cwd: str | None
    done_ns: int


class ExecReader:
    """The reader process and the table's end of its pipe. ``max_argv``: bytes of a command
    line to read (the table's bound, plus one to see a longer one was cut)."""

    def __init__(self, max_argv: int) -> None:
        readable, writable = os.pipe()
        nice, slice_ = os.getpriority(os.PRIO_PROCESS, 0), time_slice()
        parent = os.getpid()
        try:
            pid = os.fork()  # refused to a SCHED_DEADLINE task (EAGAIN)
        except OSError:
            os.close(readable)
            os.close(writable)
            raise
        if pid == 0:  # the child: never returns
            code = 0
            try:
                os.closerange(3, writable)  # the table's socket too: only its parent reads it
                os.closerange(writable + 1, os.sysconf("SC_OPEN_MAX"))
                _run(writable, parent, max_argv, nice, slice_)
            except BaseException:  # the reader ends quietly, whatever happened
                code = 1
            finally:
                os._exit(code)
        os.close(writable)
        os.set_blocking(readable, False)
        self.pid = pid
        self._pipe: int | None = readable
        self._unread = b""
        self.reads: dict[tuple[int, int], EarlyRead] = {}  # (tgid, exec timestamp_ns) ->

    def take(self) -> dict[tuple[int, int], EarlyRead]:
        """What the reader has sent since the last call, added to :attr:`reads`."""
        if self._pipe is None:
            return self.reads
        chunks = [self._unread]
        while True:
            try:
                chunk = os.read(self._pipe, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:  # the reader has ended
                os.close(self._pipe)
                self._pipe = None
                break
            chunks.append(chunk)
        data, at = b"".join(chunks), 0
        if len(self.reads) > _KEPT:
            self.reads.clear()
        while len(data) - at >= 4:
            size = int.from_bytes(data[at : at + 4], "little")
            if len(data) - at - 4 < size:
                break
            for key, read in pickle.loads(data[at + 4 : at + 4 + size]):  # our own child's
                self.reads[key] = EarlyRead(*read)
            at += 4 + size
        self._unread = data[at:]
        return self.reads

    def close(self) -> None:
        """End the reader (it unsubscribes) and wait for it."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)


class _StopError(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _StopError


def _run(pipe: int, parent: int, max_argv: int, nice: int, slice_: float | None) -> None:
    """The reader's life: subscribe, read each batch's execs, send; end when told (SIGTERM),
    when the table's end of the pipe closes, or when the parent is gone."""
    gc.freeze()  # the parent's objects stay shared: the collector never touches them
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the table, which ends it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if slice_ is not None:
        with contextlib.suppress(OSError):
            shorten_slice(slice_)
    with (
        contextlib.suppress(_StopError, BrokenPipeError),
        ProcConnector(EventType.EXEC, linger=0.0) as conn,
    ):
        if conn.filter_mode != "kernel":
            return
        while os.getppid() == parent:
            try:
                batch = conn.recv_batch(1.0)
            except OverrunError:
                continue
            last = {e.process_tgid: e for e in batch if type(e) is ExecEvent}
            if last:
                _send(pipe, _read(last, max_argv))


def _read(last: dict[int, ExecEvent], max_argv: int) -> _Sent:
    pids = list(last)
    cmdlines = [procfs.read(f"/proc/{pid}/cmdline", max_argv + 1) for pid in pids]
    places = [(procfs.link(f"/proc/{pid}/exe"), procfs.link(f"/proc/{pid}/cwd")) for pid in pids]
    done_ns = time.monotonic_ns()
    return [
        ((pid, last[pid].timestamp_ns), (cmdline, exe, cwd, done_ns))
        for pid, cmdline, (exe, cwd) in zip(pids, cmdlines, places, strict=True)
    ]


def _send(pipe: int, reads: _Sent) -> None:
    data = pickle.dumps(reads)
    os.write(pipe, len(data).to_bytes(4, "little") + data)
