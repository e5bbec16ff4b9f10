"""The command's default mode: events with what the process table knows of each process.

Every line carries the command line (the name for kernel threads, in brackets), exits their
duration, forks are told from new threads (hidden unless ``--threads``), and ``-S`` ends with a
per-command summary. ``--raw`` (in :mod:`pyprocconn.cli`) is the plain event stream instead.
"""

from __future__ import annotations

import argparse
import functools
import pwd
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pyprocconn.connector import DEFAULT_LINGER, ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventsLost, ProcEvent
from pyprocconn.processes import Exited, Lost, Process, ProcessTable, Resynced, Seen


def command_of(process: Process | None) -> str:
    """What ran: the command line; ``[name]`` for a kernel thread or when only the name is
    known; ``<unknown>`` (as forkstat says) when it ended before anything could be read."""
    if process is not None and process.argv and not process.kernel_thread:
        return " ".join(process.argv)
    if process is not None and process.comm:
        return f"[{process.comm}]"
    return "<unknown>"


@functools.lru_cache(maxsize=1024)  # per event otherwise: a lookup costs ~15 us
def user_name(uid: int | None) -> str:
    """The user's name (read once per run: a rename meanwhile is not seen)."""
    if uid is None:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_fields(process: Process | None) -> dict[str, Any] | None:
    """The process as JSON: identity, command, credentials, where it runs."""
    if process is None:
        return None
    return {
        "pid": process.pid,
        "ppid": process.ppid,
        "start_ns": process.start_ns,
        "origin": process.origin,
        "argv": process.argv,
        "comm": process.comm,
        "exe": process.exe,
        "cwd": process.cwd,
        "uid": process.uid,
        "euid": process.euid,
        "user": user_name(process.euid),
        "gid": process.gid,
        "egid": process.egid,
        "sid": process.sid,
        "cgroup": process.cgroup,
        "kernel_thread": process.kernel_thread,
        "complete": process.complete,
    }


def is_thread(event: ProcEvent) -> bool:
    if event.NAME == "fork":
        return bool(event.child_pid != event.child_tgid)
    if event.NAME == "exit":
        return bool(event.process_pid != event.process_tgid)
    return False


class TableFilter:
    """--user and --cgroup, on what the table knows of the process."""

    def __init__(self, uid: int | None, cgroup: str | None) -> None:
        self.uid, self.cgroup = uid, cgroup

    def __call__(self, process: Process | None) -> bool:
        if self.uid is None and self.cgroup is None:
            return True
        if process is None:
            return False
        if self.uid is not None and self.uid not in (process.uid, process.euid):
            return False
        return self.cgroup is None or self.cgroup in (process.cgroup or "")


def _depth(table: ProcessTable, process: Process | None) -> int:
    depth, seen = 0, set()
    while process is not None and process.ppid and process.pid not in seen and depth < 32:
        seen.add(process.pid)
        process = table.processes.get(process.ppid)
        depth += process is not None
    return depth


def describe(event: ProcEvent, process: Process | None, details: str) -> str:
    """The detail column: the event's own details, then what ran."""
    name = event.NAME
    what = command_of(process)
    if name == "exec":
        return what if process is None or process.complete else f"{what} (gone)"
    if name == "exit" and process is not None and process.start_ns is not None:
        return f"{details} after {(event.timestamp_ns - process.start_ns) / 1e9:.3f}s  {what}"
    return f"{details}  {what}".strip()


def batches(
    conn: ProcConnector,
    duration: float | None,
    wait_at_most: Callable[[], float | None] = lambda: None,
    linger: float = DEFAULT_LINGER,
) -> Iterator[list[ProcEvent | EventsLost]]:
    """The connector's batches until ``duration`` seconds pass (None: forever); a loss comes as
    a batch of its own: ``[EventsLost]``; an empty batch when ``wait_at_most()`` seconds passed
    without events. ``linger``: 0 when /proc is read at each batch (a process that lives half a
    millisecond is gone after a 1 ms linger)."""
    deadline = None if duration is None else time.monotonic() + duration
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        timeout = min((w for w in (remaining, wait_at_most()) if w is not None), default=None)
        try:
            yield list(conn.recv_batch(timeout, linger=linger))
        except OverrunError as error:
            yield [EventsLost(error.lost, error.cpu)]


def run_table(
    conn: ProcConnector,
    args: argparse.Namespace,
    wanted: Callable[[ProcEvent], bool],
    output: Any,
    commands: Counter[str],
    tree_done: Callable[[], bool] = lambda: False,
) -> None:
    """Print events, enriched from the table, until the count, the duration or the tree ends.
    ``wanted``: the event filters (-e, -p); ``commands`` counts the events per command for -S
    as they come (a signal may end this at any point)."""
    table = ProcessTable(conn, realtime=args.realtime)
    only = TableFilter(args.user, args.cgroup)
    reader_gone = False
    try:
        _follow(table, conn, args, wanted, output, commands, tree_done, only)
    except BrokenPipeError:
        reader_gone = True  # `pyprocconn | head`: end quietly
        raise
    finally:  # also when a signal ends it
        if (table.incomplete or table.skipped) and not reader_gone:
            print(
                f"pyprocconn: command lines not read: {table.incomplete} (the process had "
                f"ended), {table.skipped} (skipped under overload)",
                file=sys.stderr,
            )


def _follow(
    table: ProcessTable,
    conn: ProcConnector,
    args: argparse.Namespace,
    wanted: Callable[[ProcEvent], bool],
    output: Any,
    commands: Counter[str],
    tree_done: Callable[[], bool],
    only: TableFilter,
) -> None:
    printed = 0
    # --tree indents from the process followed (-p), as extrace does, else from init; a
    # process keeps the depth it was first shown at (its parent may end and it be reparented).
    base = _depth(table, table.processes.get(args.pid)) if args.pid else 0
    depths: dict[int, int] = {}

    def depth_of(process: Process | None) -> int:
        if process is None:
            return 0
        known = depths.get(process.pid)
        if known is None:
            parent = depths.get(process.ppid)
            since = _depth(table, process) - base
            known = depths[process.pid] = parent + 1 if parent is not None else max(0, since)
        return known

    def wait_at_most() -> float | None:  # an owed rescan, or lines to show
        waits = (table.resync_in(), output.flush_in())
        return min((wait for wait in waits if wait is not None), default=None)

    for batch in batches(conn, args.duration, wait_at_most, linger=0.0):
        for record in table.feed(batch):
            if isinstance(record, Lost):
                output.lost(record.lost.lost, record.lost.cpu)
            elif isinstance(record, Resynced):
                output.resync(record)
            elif isinstance(record, Seen) and _shown(record, args, wanted, only):
                depth = depth_of(record.process) if args.tree else 0
                output.event(record.event, record.process, depth)
                commands[command_of(record.process)] += 1
                printed += 1
            elif isinstance(record, Exited):
                depths.pop(record.process.pid, None)  # the pid may be reused
                if record.unknown:
                    output.vanished(record)
            if args.count is not None and printed >= args.count:
                break
        output.batch_done()
        if args.count is not None and printed >= args.count:
            break
        if args.until_exit and tree_done():
            break


def _shown(
    record: Seen, args: argparse.Namespace, wanted: Callable[[ProcEvent], bool], only: TableFilter
) -> bool:
    event = record.event
    keep = wanted(event)  # first: following a tree needs every event, threads' too
    if event.NAME == "ack" or (is_thread(event) and not args.threads):
        return False
    return keep and only(record.process)
