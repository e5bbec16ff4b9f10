"""The command's two modes, each turning a batch of events into entries, and the one loop that
runs either: the plain stream (``--raw``) and the process table (the default)."""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.command.follow import Depths, Descendants, Matching
from pyprocconn.command.output import (
    Entry,
    EventEntry,
    LostEntry,
    Output,
    ResyncEntry,
    TextFormat,
    VanishedEntry,
    subject_pid,
)
from pyprocconn.processes import Exited, ProcessTable, Resynced, Seen

Batch = list[pc.ProcEvent | pc.EventsLost]
_MAX_REMEMBERED = 65536  # --raw --comm/--cmdline: names kept for exits, cleared past this


def batches(
    receive: Callable[[float | None], Batch],
    duration: float | None,
    wait_at_most: Callable[[], float | None],
) -> Iterator[Batch]:
    """The mode's batches until ``duration`` seconds pass (None: forever), with each loss
    inline; an empty batch when ``wait_at_most()`` seconds passed without events."""
    deadline = None if duration is None else time.monotonic() + duration
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        yield receive(min((w for w in (remaining, wait_at_most()) if w is not None), default=None))


class RawMode:
    """The plain event stream; ``--comm``/``--cmdline`` add a best-effort lookup in /proc."""

    def __init__(
        self,
        conn: pc.ProcConnector,
        args: argparse.Namespace,
        tree: Descendants | None,
        shows: Callable[[pc.ProcEvent], bool],
    ) -> None:
        self.conn, self.tree, self.shows = conn, tree, shows
        self.comm, self.cmdline = args.comm, args.cmdline
        self.looks_up = args.comm or args.cmdline
        self._linger = 0.0 if self.looks_up else pc.DEFAULT_LINGER  # /proc is read at once
        self._remembered: dict[int, dict[str, object]] = {}

    def close(self) -> None:
        pass

    def receive(self, timeout: float | None) -> Batch:
        """The connector's next batch (``[]`` after ``timeout`` seconds), a loss inline."""
        try:
            return list(self.conn.recv_batch(timeout, linger=self._linger))
        except pc.OverrunError as error:
            return [error.loss]

    def entries(self, batch: Batch) -> Iterator[Entry]:
        for item in batch:
            if isinstance(item, pc.EventsLost):
                yield LostEntry(item)
            elif item.NAME == "ack" or (self.tree is not None and not self.tree(item)):
                continue
            elif self.shows(item):
                pid = subject_pid(item)
                proc = None
                if self.looks_up and pid is not None:
                    proc = self._lookup(pid, exiting=item.NAME == "exit")
                yield EventEntry(item, proc=proc)

    def _lookup(self, pid: int, exiting: bool) -> dict[str, object]:
        """Name and command line from /proc now; remembered for the process's exit."""
        info: dict[str, object] = {}
        comm = None if exiting else procfs.read(f"/proc/{pid}/comm")
        raw = None if exiting or not self.cmdline else procfs.read(f"/proc/{pid}/cmdline")
        if (self.comm and comm is None) or (self.cmdline and raw is None):
            known = self._remembered.pop(pid, {}) if exiting else self._remembered.get(pid, {})
            return {**known, "gone": True}
        if self.comm and comm is not None:
            info["comm"] = os.fsdecode(comm.removesuffix(b"\n"))
        if self.cmdline:
            info["cmdline"] = procfs.parse_argv(raw) or []
        if len(self._remembered) >= _MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[pid] = info
        return {**info, "gone": False}

    def finish(self) -> str | None:
        return None


class TableMode:
    """Events with the process as the table knew it at each, exits with their lifetime, new
    threads hidden unless ``--threads``; losses, rescans and processes that ended unseen."""

    def __init__(
        self,
        conn: pc.ProcConnector,
        args: argparse.Namespace,
        tree: Descendants | None,
        shows: Callable[[pc.ProcEvent], bool],
        commands: Counter[str],
        text: TextFormat | None,
    ) -> None:
        reader = not args.no_exec_reader
        self.table = ProcessTable(conn, max_argv=args.max_argv, exec_reader=reader)
        # Each exec read from /proc before anything is shown (see ProcessTable.receive).
        self.receive = self.table.receive
        self.tree, self.shows, self.commands, self.text = tree, shows, commands, text
        self.threads = args.threads
        self.matching = Matching(args.user, args.cgroup, args.container)
        self.depths = Depths(self.table, args.pid) if args.tree else None
        self.execs_shown = 0
        self.unread = 0  # execs shown without their command line

    def entries(self, batch: Batch) -> Iterator[Entry]:
        for record in self.table.feed(batch):
            if isinstance(record, Seen):
                entry = self._shown(record)
                if entry is not None:
                    yield entry
            elif isinstance(record, Exited):
                if self.depths is not None:
                    self.depths.forget(record.process.pid)
                if record.unknown:
                    yield VanishedEntry(record)
            elif isinstance(record, pc.EventsLost):
                yield LostEntry(record)
            elif isinstance(record, Resynced):
                yield ResyncEntry(record)

    def _shown(self, record: Seen) -> EventEntry | None:
        event, process = record.event, record.process
        followed = self.tree is None or self.tree(event)  # first: the tree needs every event
        thread = record.thread  # a new thread, or an exit that leaves the process running
        if event.NAME == "ack" or (thread and not self.threads):
            return None
        if not (followed and self.shows(event) and self.matching(process)):
            return None
        depth = self.depths.of(process) if self.depths is not None else 0
        if self.text is not None:  # -S: the busiest programs (a temp file's name in the
            self.commands[self.text.program(process)] += 1  # arguments is not a new one)
        if isinstance(event, pc.ExecEvent):
            self.execs_shown += 1
            self.unread += process is None or not process.argv
        return EventEntry(event, process, record.lifetime_ns, depth, thread)

    def close(self) -> None:
        """End the exec reader (the connector is the command's)."""
        self.table.close()

    def exec_reader(self) -> str:
        """What -S says of the exec reader."""
        reader = self.table.reader
        if reader is not None:
            return f"pid {reader.pid}" if reader.running() else "ended (no exec filter here)"
        if self.table.exec_reader_refused is not None:
            return f"not started ({self.table.exec_reader_refused})"
        return "off (--no-exec-reader)"

    def finish(self) -> str | None:
        """The note on the execs shown whose command line could not be read, if any (the
        processes other filters hid are not counted)."""
        if not self.unread:
            return None
        return (
            f"pyprocconn: command lines not read: {self.unread} of the {self.execs_shown} execs "
            "shown (the process had ended or exec'd again, or the table skipped /proc under "
            "overload)"
        )


Mode = RawMode | TableMode


def follow(
    mode: Mode,
    output: Output,
    args: argparse.Namespace,
    tree: Descendants | None,
) -> None:
    """Write the mode's entries until the count, the duration or (``--until-exit``) the tree
    ends."""
    printed = 0
    sink = output.sink
    table = mode.table if isinstance(mode, TableMode) else None

    def wait_at_most() -> float | None:  # lines to show, or an owed rescan
        waits = (sink.flush_in(), None if table is None else table.resync_in())
        return min((wait for wait in waits if wait is not None), default=None)

    for batch in batches(mode.receive, args.duration, wait_at_most):
        for entry in mode.entries(batch):
            output.write(entry)
            if isinstance(entry, EventEntry):
                printed += 1
                if args.count is not None and printed >= args.count:
                    return
        sink.batch_done()
        if args.until_exit and tree is not None and tree.done:
            return
