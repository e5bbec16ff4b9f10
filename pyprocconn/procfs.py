"""Reading ``/proc``, best effort: a process may be gone by the time a file is opened, so every
reader returns None (or an empty answer) instead of raising. Used by the process table, the
command and ``wait``; the connector itself never reads ``/proc``."""

from __future__ import annotations

import os
from typing import NamedTuple

# proc(5)'s numbers of the /proc/PID/stat fields read here (1 is the pid, 2 the name).
_STATE, _PPID, _SESSION, _FLAGS, _STARTTIME, _EXIT_CODE = 3, 4, 6, 9, 22, 52
_AFTER_NAME = 3  # the first field after the name


class Stat(NamedTuple):
    """The fields of ``/proc/PID/stat`` this package reads, by proc(5)'s names."""

    comm: str
    state: bytes  # one letter
    ppid: int
    session: int
    flags: int
    starttime: int  # clock ticks since boot
    exit_code: int | None  # a zombie's wait status (Linux 3.5+; None before)

    @property
    def exited(self) -> bool:
        """Whether it has exited: a zombie not yet reaped (Z) or being reaped (X)."""
        return self.state in (b"Z", b"X")


_CHUNK = 65536


def read(path: str, limit: int = -1) -> bytes | None:
    """The file's bytes (at most ``limit`` when given); None when it cannot be read.

    ``os.open``/``os.read``, not ``open()``: half the cost (6.5 against 12.5 us a file, measured
    on /proc/self/cmdline), and the exec capture reads three files before the process is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while limit != 0:
            chunk = os.read(fd, _CHUNK if limit < 0 else min(limit, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            if limit > 0:
                limit -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


REFUSED = "refused"  # what link says when /proc denied it (not: gone)


Places = tuple[str | None, str | None]  # exe and cwd: link's answers


def places(pid: int) -> Places:
    """Where the process runs: its ``exe`` and ``cwd`` (both go at its exit)."""
    return link(f"/proc/{pid}/exe"), link(f"/proc/{pid}/cwd")


def link(path: str) -> str | None:
    """The link's target; :data:`REFUSED` when this process may not read it (another user's
    process without CAP_SYS_PTRACE); None when it is gone (or the process is)."""
    try:
        return os.readlink(path)
    except PermissionError:
        return REFUSED
    except OSError:
        return None


def stat(pid: int, tid: int | None = None) -> Stat | None:
    """``/proc/PID/stat`` (``/proc/PID/task/TID/stat`` with ``tid``); None when there is no
    such process (or thread)."""
    raw = read(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat")
    if raw is None:
        return None
    head, _, rest = raw.rpartition(b")")  # the name may hold any byte, ")" and spaces too
    fields = rest.split()
    if len(fields) <= _STARTTIME - _AFTER_NAME:
        return None

    def field(number: int) -> int:
        return int(fields[number - _AFTER_NAME])

    exit_code = field(_EXIT_CODE) if len(fields) > _EXIT_CODE - _AFTER_NAME else None
    return Stat(
        os.fsdecode(head.partition(b"(")[2]),
        fields[_STATE - _AFTER_NAME],
        field(_PPID),
        field(_SESSION),
        field(_FLAGS),
        field(_STARTTIME),
        exit_code,
    )


def tgid(pid: int) -> int | None:
    """The process a task id belongs to (itself for a process, its leader's for a thread); None
    when there is no such task."""
    found = status_line(read(f"/proc/{pid}/status"), b"Tgid:")
    return int(found) if found else None


def status_line(raw: bytes | None, key: bytes) -> bytes | None:
    """The rest of the line of ``/proc/PID/status`` that starts with ``key`` (``b"Uid:"``).
    Lines end at "\\n" only: the name, the first line, may hold "\\r" and anything after it
    (the kernel escapes only a newline there), so no name can forge a line."""
    if raw is None:
        return None
    start = raw.find(b"\n" + key)
    if start < 0:
        return None
    start += len(key) + 1
    end = raw.find(b"\n", start)
    return raw[start:] if end < 0 else raw[start:end]


def alive(pid: int, tid: int | None = None) -> bool:
    """Whether a process (its thread ``tid``) that has not exited (not a zombie) has this pid."""
    found = stat(pid, tid)
    return found is not None and not found.exited


def live_threads(pid: int) -> set[int]:
    """The ids of the process's threads that have not exited (state neither Z nor X); empty
    when there is no such process or all its threads have exited (a zombie: a group leader
    that called ``pthread_exit`` is Z while its other threads run). A thread started while
    this reads may be missing from a non-empty answer; an empty answer is sure."""
    seen: set[int] = set()
    while True:
        try:
            tids = {int(name) for name in os.listdir(f"/proc/{pid}/task")}
        except OSError:
            return set()
        if tids <= seen:  # all exited, and none started while their states were read
            return set()
        seen |= tids
        live = {tid for tid in tids if alive(pid, tid)}
        if live:
            return live


def thread_starts(pid: int) -> dict[int, int]:
    """The process's threads other than its leader that have not exited: thread id -> start
    time in clock ticks since boot (``starttime``)."""
    try:
        tids = [int(name) for name in os.listdir(f"/proc/{pid}/task") if name != str(pid)]
    except OSError:
        return {}
    found = {tid: stat(pid, tid) for tid in tids}
    return {
        tid: thread.starttime
        for tid, thread in found.items()
        if thread is not None and not thread.exited
    }


def argv(pid: int) -> list[str] | None:
    """The command line; None when it is gone or empty (a zombie, a kernel thread)."""
    return parse_argv(read(f"/proc/{pid}/cmdline"))


def parse_argv(raw: bytes | None) -> list[str] | None:
    """``/proc/PID/cmdline`` bytes as arguments, names decoded as ``os.fsdecode`` does. Each
    argument ends with one NUL: empty arguments are kept, trailing ones too. None when empty."""
    if not raw:
        return None
    return [os.fsdecode(arg) for arg in raw.removesuffix(b"\0").split(b"\0")]


def descendants(root: int) -> set[int]:
    """The processes below ``root`` now, from every process's parent in /proc."""
    parents = {}
    for name in os.listdir("/proc"):
        found = stat(int(name)) if name.isdigit() else None
        if found is not None and not found.exited:
            parents[int(name)] = found.ppid
    below: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - below
        below |= frontier
    return below
