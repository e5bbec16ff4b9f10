"""A second listener for the race with short-lived processes: a child process that reads each
exec's command line, ``exe`` and ``cwd`` the moment it is woken, and hands them over a pipe.

The race is lost when the listener is woken late (on a busy CPU, the wake-up waits for the
running task; on a kernel built without preemption, for its system call to end), and two
listeners are seldom held up at once: in ``benchmarks.capture``'s exec storm the command's worst
round of ten went from 1974 to 1999 of 2000 command lines with this reader (JSON: 1982 to 1998),
for a quarter to two fifths more CPU (the README's capture section). A process, not a thread:
a thread shares the interpreter lock, which a listener held up may be holding. It subscribes to
execs only, filtered by the kernel (6.6+; elsewhere it would wake for every event: it ends).
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
_KEPT = 1024  # reads held for the table at most, the oldest dropped (most are never needed)
_FRAME_MAX = 1 << 24  # bytes of one message from the reader: more is a broken pipe's garbage


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
                _detach(writable)
                _run(writable, parent, max_argv, nice, slice_)
            except BaseException:  # the reader ends quietly, whatever happened
                code = 1
            finally:
                os._exit(code)
        os.close(writable)
        os.set_blocking(readable, False)
        self.pid: int | None = pid
        self._pipe: int | None = readable
        self._unread = b""
        self.reads: dict[tuple[int, int], EarlyRead] = {}  # (tgid, exec timestamp_ns) ->

    def running(self) -> bool:
        """Whether the reader still sends (it ends at once where the kernel cannot filter)."""
        self.take()
        return self._pipe is not None

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
                self._end_pipe()
                break
            chunks.append(chunk)
        data, at = b"".join(chunks), 0
        while len(data) - at >= 4:
            size = int.from_bytes(data[at : at + 4], "little")
            if size > _FRAME_MAX:
                self._end_pipe()
                break
            if len(data) - at - 4 < size:
                break
            try:
                sent = pickle.loads(data[at + 4 : at + 4 + size])  # our own child's
                self.reads.update((tuple(key), EarlyRead(*read)) for key, read in sent)
            except Exception:
                self._end_pipe()
                break
            at += 4 + size
        self._unread = data[at:] if self._pipe is not None else b""
        while len(self.reads) > _KEPT:
            del self.reads[next(iter(self.reads))]
        return self.reads

    def _end_pipe(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None

    def close(self) -> None:
        """End the reader (it unsubscribes) and wait for it; once."""
        pid, self.pid = self.pid, None
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
        self._end_pipe()


class _StopError(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: nothing interrupts the unsubscribing
    raise _StopError


def _detach(pipe: int) -> None:
    """Keep nothing of the parent's but the pipe: not its socket, its output or its wake-up fd."""
    os.closerange(3, pipe)
    os.closerange(pipe + 1, os.sysconf("SC_OPEN_MAX"))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    with contextlib.suppress(ValueError):  # forked from a thread other than the main one
        signal.set_wakeup_fd(-1)


def _run(pipe: int, parent: int, max_argv: int, nice: int, slice_: float | None) -> None:
    """The reader's life: subscribe, read each batch's execs, send; end when told (SIGTERM),
    when the table's end of the pipe closes, or when the parent is gone."""
    gc.freeze()  # the parent's objects stay shared: the collector never touches them
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the table, which ends it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a closed pipe is an error here, not death
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
    places = [procfs.places(pid) for pid in pids]
    done_ns = time.monotonic_ns()
    return [
        ((pid, last[pid].timestamp_ns), (cmdline, exe, cwd, done_ns))
        for pid, cmdline, (exe, cwd) in zip(pids, cmdlines, places, strict=True)
    ]


def _send(pipe: int, reads: _Sent) -> None:
    data = pickle.dumps(reads)
    frame = memoryview(len(data).to_bytes(4, "little") + data)
    while frame:  # a signal may cut a write into a full pipe short
        frame = frame[os.write(pipe, frame) :]
