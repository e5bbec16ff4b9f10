"""The harness the live benchmarks share: the C helpers compiled on the fly, a listener process
run under a benchmark (:class:`Listener`, :class:`Consumer`: subscribed, its CPU and queue read from
outside, stopped with a signal it honours), what it said about itself (:class:`Report`), and the
check that no listener registration was left in the kernel (:func:`check_listeners`)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pyprocconn import procfs
from pyprocconn.check import group_sockets, listener_registered

HERE = Path(__file__).resolve().parent


FORK, EXIT = 0, 1
Record = tuple[int, int, int | None, int]  # kind, pid, parent tgid (None: not said), exit code


@dataclass
class Report:
    """What a consumer said about itself, parsed from its output."""

    events: list[Record]  # its FORKs and EXITs in arrival order
    lost_reported: int | None = None
    overruns: int = 0
    library_cpu: float | None = None  # inside pyprocconn's receive calls only
    latencies_ns: list[int] = field(default_factory=list)


def build(workdir: Path, source: str, *flags: str) -> Path:
    binary = workdir / Path(source).stem
    headers = str(HERE.parent / "headers")
    command = ["gcc", "-O2", "-I", headers, *flags, "-o", str(binary), str(HERE / source)]
    subprocess.run(command, check=True)
    return binary


def _warn(text: str) -> None:
    print(f"\n**WARNING: {text}**\n", flush=True)
    print(f"WARNING: {text}", file=sys.stderr, flush=True)


def _holders(inodes: set[int]) -> list[int]:
    """Processes holding one of these sockets."""
    links = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in links for fd in fd_dir.iterdir()):
                found.append(int(fd_dir.parent.name))
    return found


@dataclass
class Listener:
    """How to run one consumer: it is stopped only with ``stop_signal``, which it honours by
    unsubscribing."""

    name: str
    command: list[str]
    stop_signal: signal.Signals
    parse: Callable[[str, str], Report]  # (stdout, stderr) -> Report
    says_ready: bool = True  # prints "ready" once subscribed; else: once it holds a group socket
    env: dict[str, str] | None = None


class Consumer:
    """A running listener. SIGKILL (after which the kernel keeps its listener registered until
    reboot) only if it does not stop at its own signal, and then loudly."""

    def __init__(self, listener: Listener, scratch: Path) -> None:
        self.listener = listener
        # Files, not pipes: nothing has to read them during the storm. Closed in stop(). Other
        # programs' command lines (forkstat and extrace print them raw) need not be UTF-8.
        raw = "surrogateescape"
        self.out = tempfile.TemporaryFile("w+", dir=scratch, errors=raw)  # noqa: SIM115
        self.err = tempfile.TemporaryFile("w+", dir=scratch, errors=raw)  # noqa: SIM115
        self.process = subprocess.Popen(
            listener.command,
            stdout=self.out,
            stderr=self.err,
            text=True,
            cwd=HERE.parent,
            env=listener.env,
        )

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.listener.name} failed: {self._read(self.err)}")
            if self.listener.says_ready:
                if self._read(self.out).startswith("ready\n"):
                    return
            elif self._holds_group_socket():
                time.sleep(0.2)  # it sends LISTEN right after joining the group
                return
            time.sleep(0.01)
        where = "?"
        with contextlib.suppress(OSError):  # what it was doing: its state and kernel wait
            state = getattr(procfs.stat(self.process.pid), "state", b"?").decode()
            where = f"{state} in {Path(f'/proc/{self.process.pid}/wchan').read_text()}"
        raise RuntimeError(
            f"{self.listener.name} did not subscribe within {timeout:g} s ({where}; stdout "
            f"{self._read(self.out)[-300:]!r}; stderr {self._read(self.err)[-600:]!r})"
        )

    def _holds_group_socket(self) -> bool:
        inodes = {f"socket:[{sock.inode}]" for sock in group_sockets()}
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{self.process.pid}/fd").iterdir()
            return any(os.readlink(fd) in inodes for fd in fds)
        return False

    def cpu(self) -> float:
        """Seconds on a CPU so far, all its threads and its child processes' (the command's
        exec reader) (schedstat: nanoseconds, not clock ticks)."""
        total, pids = 0, [self.process.pid]
        while pids:
            for task in Path(f"/proc/{pids.pop()}/task").glob("*"):
                with contextlib.suppress(OSError):
                    total += int((task / "schedstat").read_text().split()[0])
                    pids += [int(pid) for pid in (task / "children").read_text().split()]
        return total / 1e9

    def drained(self, limit: float = 30.0) -> float:
        """Wait until it has worked off its queue (its CPU time stops growing); its CPU then.

        Other programs' events (a fork storm elsewhere on the machine) keep it from ever
        stopping: then its CPU is taken once, twice in a row, its socket's queue is empty and it
        worked less than half the time (working off a backlog of its own, it would be on a CPU
        all the time; the window in which it finishes is half busy, the next one still), or
        when ``limit`` passes, with a warning that the figure includes their events."""
        window = 0.2
        last = self.cpu()
        deadline = time.monotonic() + limit
        calm = 0  # windows in a row with its queue empty and a CPU used less than half of it
        while time.monotonic() < deadline:
            time.sleep(window)
            now = self.cpu()
            if now - last < 0.001:
                return now
            busy = now - last
            last = now
            calm = calm + 1 if busy < window / 2 and self._queued() == 0 else 0
            if calm == 2:
                break
        _warn(
            f"{self.listener.name} kept working after the storm: other programs' events "
            "(its CPU figure includes theirs)"
        )
        return last

    def _queued(self) -> int | None:
        """Bytes waiting in its process events socket (/proc/net/netlink's Rmem), None when it
        holds none."""
        links = set()
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    links.add(os.readlink(fd))
        for sock in group_sockets():
            if f"socket:[{sock.inode}]" in links:
                return sock.queued
        return None

    def _catches(self, number: int) -> bool:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        caught = re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.MULTILINE)
        return caught is not None and bool(int(caught.group(1), 16) >> (number - 1) & 1)

    def stop(self) -> Report:
        name, stop_signal = self.listener.name, self.listener.stop_signal
        if self.process.poll() is None:
            # An ignored or default-action signal would leave it subscribed.
            if self._catches(stop_signal):
                self.process.send_signal(stop_signal)
            else:
                _warn(f"{name} does not handle {stop_signal.name}: it cannot be stopped cleanly")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            _warn(
                f"{name} did not stop at {stop_signal.name} and was SIGKILLed while subscribed: "
                "the kernel keeps its listener registered until reboot"
            )
        out, err = self._read(self.out), self._read(self.err)
        self.out.close()
        self.err.close()
        if self.process.returncode != 0:
            raise RuntimeError(f"{name} failed: {err}")
        return self.listener.parse(out, err)

    @staticmethod
    def _read(stream: IO[str]) -> str:
        """Everything written so far. The listener writes through the same open file (one
        shared offset): a seek here would make its next write land at the start (a "ready"
        read between its two writes became "\\neady"), so read at an offset, moving nothing."""
        fd = stream.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="surrogateescape")


def check_listeners(when: str, wait: float) -> str:
    """Probe for a listener registration; warn loudly unless there is none. Returns "none",
    "others" (processes hold process events sockets: can't tell) or "leaked"."""
    if not listener_registered(wait):
        return "none"
    holders = _holders({sock.inode for sock in group_sockets()})
    if holders:
        _warn(
            f"{when}: the kernel counts a listener, and processes {holders} hold process events "
            "sockets: another program may be listening now, or one leaked"
        )
        return "others"
    _warn(
        f"{when}: a listener registration was left in the kernel (no process holds a process "
        "events socket): it stays until reboot and makes every process event cost a message"
    )
    return "leaked"
