"""Wait for processes that are not your children and learn how each ended.

``pidfd`` needs one descriptor per process and gives no status for a process that is not your
child; one connector subscription covers any number of processes and carries the wait(2)
status of each. The command ``pyprocconn wait`` (:mod:`pyprocconn.command.wait`) is built on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyprocconn import procfs
from pyprocconn.connector import ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventType, ExitStatus


@dataclass(frozen=True)
class Ended(ExitStatus):
    """How a process ended: ``exit_code`` is the wait(2) status (decode it with
    :meth:`describe_status`, :attr:`exit_status`, :attr:`term_signal`); ``timestamp_ns`` is
    the kernel's CLOCK_MONOTONIC time of the exit, None when it was not seen (a zombie found
    at the start: its status is read from ``/proc``)."""

    pid: int
    exit_code: int
    timestamp_ns: int | None


def _state(pid: int) -> tuple[str, int] | None:
    """(state letter, wait status) from /proc/PID/stat; None when there is no such process."""
    found = procfs.stat(pid)
    if found is None:
        return None
    fields = found[1]  # from field 3 (the state) on; exit_code, a zombie's status, is field 52
    return fields[0].decode(), int(fields[49]) if len(fields) > 49 else 0


def wait_for_exits(pids: Iterable[int], timeout: float | None = None) -> dict[int, Ended | None]:
    """Wait until every process in ``pids`` has ended, or ``timeout`` seconds pass.

    Returns each pid's :class:`Ended`; None for a pid that was no process at the start, or that
    had not ended by the timeout (check :func:`os.path.exists` of ``/proc/PID`` to tell them
    apart). Race-free: the subscription is acknowledged before the processes are looked up,
    so a process that exits meanwhile is still seen. Needs what the connector needs.
    """
    wanted = set(pids)
    results: dict[int, Ended | None] = {}
    with ProcConnector(events=EventType.EXIT) as conn:
        for pid in sorted(wanted):
            state = _state(pid)
            if state is None or state[0] == "X":
                results[pid] = None
            elif state[0] == "Z":  # ended before we listened: the status waits in /proc
                results[pid] = Ended(pid, state[1], None)
        waiting = wanted - set(results)
        deadline = None if timeout is None else time.monotonic() + timeout
        while waiting:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                batch = conn.recv_batch(remaining)
            except OverrunError:  # lost exits may be ours: look at what is left
                batch = []
                for pid in list(waiting):
                    state = _state(pid)
                    if state is None or state[0] in "ZX":
                        results[pid] = Ended(pid, state[1] if state else 0, None)
                        waiting.discard(pid)
            for event in batch:
                tgid = getattr(event, "process_tgid", None)
                if tgid in waiting:
                    state = _state(tgid)
                    if state is None or state[0] in "ZX":  # its last thread is gone
                        results[tgid] = Ended(tgid, event.exit_code, event.timestamp_ns)
                        waiting.discard(tgid)
    return {pid: results.get(pid) for pid in sorted(wanted)}
