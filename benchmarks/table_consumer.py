"""A listener process running :class:`pyprocconn.processes.ProcessTable`, for benchmarks.capture.

``python -m benchmarks.table_consumer MODE [--realtime | --nice N] [--slice]``. It builds
``ProcessTable()`` (default settings; ``--realtime``: ``ProcessTable(realtime=True)``; ``--nice N``:
``ProcessTable(nice=N)``; ``--slice``: with ``time_slice=SHORTEST_SLICE``: the command's default
priority is ``--nice -20 --slice``), says "ready" and iterates
the table itself (``for record in table``) until SIGUSR1 or SIGTERM, then closes it (IGNORE) and
reports.

- ``capture``: prints one JSON line per exec record,
  ``[pid, exec_ns, read_ns, argv, complete, exec_cpu, read_cpu, exe, cwd]``: the kernel's exec
  timestamp, when the table took the batch holding it in hand (CLOCK_MONOTONIC, the events'
  clock), the argv it captured, the CPU the exec happened on, the CPU this process read /proc
  from, and the exe and cwd it captured. Then
  one JSON summary line: the exit timestamps of the exec'd processes (``exits``) and the table's
  own counters. ``read_ns`` comes from wrapping the instance's ``capture_execs``, which the
  table's loop calls first thing with each batch: the clock is read before the table reads
  ``/proc``; the CPU and the exec pids are noted after.
- ``storm``: "ready", then one JSON object in benchmarks.consumer's format (FORKs and EXITs from
  the table's ``Seen`` records, in arrival order; ``lost`` is ``conn.stats.lost``), plus the
  table's ``Resynced`` records, ``skipped`` and ``incomplete``.
"""

from __future__ import annotations

import ctypes
import json
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from pyprocconn.events import EventsLost, ProcEvent
from pyprocconn.priority import SHORTEST_SLICE
from pyprocconn.processes import ProcessTable, Resynced, Seen


class StopError(Exception):
    """A stop signal: the harness says the workload is over."""


_STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
_stops: list[int] = []


def _note_stop(signum: int, frame: object) -> None:
    _stops.append(signum)


def _stop(signum: int, frame: object) -> None:
    for number in _STOP_SIGNALS:  # raise once only: nothing interrupts the unsubscribing
        signal.signal(number, signal.SIG_IGN)
    raise StopError


def _timed_capture(table: ProcessTable, reads: dict[int, tuple[int, int]]) -> None:
    """Note when each exec's batch was in hand, and on which CPU this process read it, by
    wrapping this table's capture_execs."""
    capture: Callable[[Iterable[ProcEvent | EventsLost]], None] = table.capture_execs
    clock, cpu = time.monotonic_ns, ctypes.CDLL(None).sched_getcpu

    def timed(batch: Iterable[ProcEvent | EventsLost]) -> None:
        now = clock()
        capture(batch)  # the reads first; the bookkeeping below comes after them
        where = cpu()
        for item in batch:
            if getattr(item, "NAME", "") == "exec":
                reads.setdefault(item.process_tgid, (now, where))  # type: ignore[union-attr]

    setattr(table, "capture_execs", timed)  # noqa: B010 - an instance attribute, on purpose


def _capture(table: ProcessTable, result: dict[str, Any]) -> None:
    reads: dict[int, tuple[int, int]] = {}
    exits: dict[int, int] = result["exits"]  # exec'd pid -> its exit's timestamp (0: none yet)
    _timed_capture(table, reads)
    write = sys.stdout.write
    for record in table:
        if type(record) is not Seen:
            continue
        event: Any = record.event
        name = event.NAME
        if name == "exec":
            pid, process = event.process_tgid, record.process
            argv, exe, cwd = (None, None, None)
            if process is not None:
                argv, exe, cwd = process.argv, process.exe, process.cwd
            complete = process is not None and process.complete
            read_ns, read_cpu = reads.pop(pid, (None, None))
            line = [pid, event.timestamp_ns, read_ns, argv, complete, event.cpu, read_cpu, exe, cwd]
            write(json.dumps(line) + "\n")
            exits[pid] = 0
        elif name == "exit" and event.process_pid in exits:
            exits[event.process_pid] = event.timestamp_ns


def _storm(table: ProcessTable, result: dict[str, Any]) -> None:
    events: list[list[int]] = result["events"]
    record_event = events.append
    for record in table:
        kind = type(record)
        if kind is Seen:
            event: Any = record.event  # type: ignore[union-attr]
            name = event.NAME
            if name == "fork":
                record_event([0, event.child_pid, event.parent_tgid, 0])
            elif name == "exit":
                record_event([1, event.process_pid, event.parent_tgid, event.exit_code])
        elif kind is Resynced:
            result["resynced"] += 1


def main() -> None:
    mode = sys.argv[1]
    options = sys.argv[2:]
    realtime = "--realtime" in options
    nice = int(options[options.index("--nice") + 1]) if "--nice" in options else None
    # Until subscribed, a stop only takes note (as in benchmarks.consumer).
    for number in _STOP_SIGNALS:
        signal.signal(number, _note_stop)
    time_slice = SHORTEST_SLICE if "--slice" in options else None
    table = ProcessTable(realtime=realtime, nice=nice, time_slice=time_slice)
    result: dict[str, Any] = {"events": [], "resynced": 0, "exits": {}}
    try:
        for number in _STOP_SIGNALS:
            signal.signal(number, _stop)
        if _stops:
            raise StopError
        print("ready", flush=True)
        (_capture if mode == "capture" else _storm)(table, result)
    except StopError:
        pass
    finally:
        stats = table.conn.stats
        table.close()  # sends IGNORE
    result.update(
        lost=stats.lost,
        overruns=stats.overruns,
        skipped=table.skipped,
        incomplete=table.incomplete,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
