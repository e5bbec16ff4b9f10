"""Which processes the command shows: ``-p`` (a process and its descendants), ``--user`` and
``--cgroup`` (on what the process table knows), and the depth ``--tree`` indents by."""

from __future__ import annotations

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.processes import Process, ProcessTable


class Descendants:
    """-p: the process, its descendants at the start, and everything they fork from now on,
    followed by thread.

    A process stays tracked while any of its threads lives: the kernel may report other
    threads' exits after the main thread's, and a non-main thread's exec reports the main
    thread's exit before the exec. Once its last thread is gone, its pid may be reused by an
    unrelated process, so it is forgotten.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.threads: dict[int, set[int]] = {
            pid: {pid, *procfs.live_threads(pid)} for pid in {root, *procfs.descendants(root)}
        }

    @property
    def done(self) -> bool:
        """Every tracked process has exited."""
        return not self.threads

    def __call__(self, event: pc.ProcEvent) -> bool:
        """Whether the event is about a followed process (and follow what it tells)."""
        if isinstance(event, pc.ForkEvent):
            tgid = event.child_tgid
            if event.parent_tgid in self.threads or tgid in self.threads:
                self.threads.setdefault(tgid, set()).add(event.child_pid)
                return True
            return False
        owner = getattr(event, "process_tgid", None)
        threads = self.threads.get(owner) if isinstance(owner, int) else None
        if threads is None:
            return False
        if isinstance(event, pc.ExecEvent):  # exec leaves one thread, with the process's pid
            threads.clear()
            threads.add(event.process_tgid)
        elif isinstance(event, pc.ExitEvent):
            threads.discard(event.process_pid)
            if not threads:
                del self.threads[event.process_tgid]
        return True


class Matching:
    """--user, --cgroup and --container, on what the table knows of the process."""

    def __init__(self, uid: int | None, cgroup: str | None, container: str | None) -> None:
        self.uid, self.cgroup, self.container = uid, cgroup, container

    def __call__(self, process: Process | None) -> bool:
        if self.uid is None and self.cgroup is None and self.container is None:
            return True
        if process is None:
            return False
        if self.uid is not None and self.uid not in (process.uid, process.euid):
            return False
        if self.container is not None:
            found = process.container
            if found is None or not found.id.startswith(self.container):
                return False
        return self.cgroup is None or self.cgroup in (process.cgroup or "")


class Depths:
    """--tree: a process's depth below the -p process (or init), kept from when it was first
    shown (its parent may end and it be reparented)."""

    _MAX_DEPTH = 64  # a parent chain longer than this is a cycle from a stale table

    def __init__(self, table: ProcessTable, root: int | None) -> None:
        self.table = table
        self.base = self._walk(table.processes.get(root)) if root else 0
        self.known: dict[int, int] = {}

    def _walk(self, process: Process | None) -> int:
        depth, seen = 0, set()
        while process is not None and process.ppid and process.pid not in seen:
            if depth >= self._MAX_DEPTH:
                break
            seen.add(process.pid)
            process = self.table.processes.get(process.ppid)
            depth += process is not None
        return depth

    def of(self, process: Process | None) -> int:
        if process is None:
            return 0
        known = self.known.get(process.pid)
        if known is None:
            parent = self.known.get(process.ppid)
            since = self._walk(process) - self.base
            known = self.known[process.pid] = parent + 1 if parent is not None else max(0, since)
        return known

    def forget(self, pid: int) -> None:
        """The process ended: its pid may be reused."""
        self.known.pop(pid, None)
