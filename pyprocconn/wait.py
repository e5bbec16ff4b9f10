"""Wait for processes that are not your children and learn how each ended.

``pidfd`` needs one descriptor per process and gives no status for a process that is not your
child; one connector subscription covers any number of processes and carries the wait(2)
status of each. The command ``pyprocconn wait`` (:mod:`pyprocconn.command.wait`) is built on it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyprocconn import procfs
from pyprocconn.connector import ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventType, ExecEvent, ExitEvent, ExitStatus, ForkEvent, ProcEvent


@dataclass(frozen=True)
class Ended(ExitStatus):
    """How a process ended: ``exit_code`` is the wait(2) status (decode it with
    :meth:`describe_status`, :attr:`exit_status`, :attr:`term_signal`); ``timestamp_ns`` is
    the kernel's CLOCK_MONOTONIC time of its last thread's exit, None when that was not seen
    (the status was then read from ``/proc``: a zombie found at the start, or after a loss)."""

    pid: int
    exit_code: int
    timestamp_ns: int | None


def _from_proc(pid: int) -> set[int] | Ended | None:
    """What /proc says now: the ids of the process's live threads; or, when every thread has
    exited, :class:`Ended` with the zombie's status (``stat``'s ``exit_code``); None when there is
    no such process (or it is being reaped)."""
    threads = procfs.live_threads(pid)
    if threads:
        return threads
    found = procfs.stat(pid)
    if found is None or found.state == b"X":
        return None
    return Ended(pid, found.exit_code or 0, None)


def _follow(event: ProcEvent, tgid: int, threads: set[int]) -> bool:
    """Apply an event of process ``tgid`` to its live ``threads``; True when it was the exit of
    the last."""
    if isinstance(event, ForkEvent):  # a new thread
        threads.add(event.child_pid)
    elif isinstance(event, ExecEvent):  # exec leaves one thread, whose id is the tgid
        threads.clear()
        threads.add(tgid)
    elif isinstance(event, ExitEvent) and event.process_pid in threads:
        threads.remove(event.process_pid)
        return not threads
    return False


def _process_of(event: ProcEvent) -> int | None:
    """The process a fork (the child's), exec or exit is about; None for another event."""
    if isinstance(event, ForkEvent):
        return event.child_tgid
    return event.process_tgid if isinstance(event, (ExecEvent, ExitEvent)) else None


def _take_in(
    event: ProcEvent,
    live: dict[int, set[int]],
    results: dict[int, Ended | None],
    last_code: dict[int, int],
    follow: bool,
) -> None:
    """One received event: a waited process's last exit ends it (with ``follow``; after a loss
    only its status is noted, and /proc says the rest)."""
    tgid = _process_of(event)
    if tgid is None or tgid not in live:
        return
    if isinstance(event, ExitEvent):
        last_code[tgid] = event.exit_code
    if follow and _follow(event, tgid, live[tgid]) and isinstance(event, ExitEvent):
        del live[tgid]
        results[tgid] = Ended(tgid, event.exit_code, event.timestamp_ns)


def wait_for_exits(pids: Iterable[int], timeout: float | None = None) -> dict[int, Ended | None]:
    """Wait until every process in ``pids`` has ended, or ``timeout`` seconds pass.

    Returns each pid's :class:`Ended`; None for a pid that was no process at the start, or that
    had not ended by the timeout (check :func:`os.path.exists` of ``/proc/PID`` to tell them
    apart). A process ends with its last thread, and with that thread's status (after
    ``exit``, ``exit_group`` or a fatal signal every thread carries the process's): a leader
    that called ``pthread_exit`` is a zombie in ``/proc`` while its other threads run.
    Race-free: the subscription (exits, and forks and execs to follow the threads) is
    acknowledged before the processes' threads are read from ``/proc``, so no thread that
    starts or exits meanwhile is missed. After lost events, the events already received are
    taken in and the processes are read from ``/proc`` again; one found ended then has
    ``timestamp_ns`` None and the best status left: a zombie's from ``/proc``, else that of
    its last exit event received, else 0. Limit: a zombie's status in ``/proc`` is its
    leader's; before Linux 6.15 a leader that called ``pthread_exit`` shows 0 there even when
    its group then ended by ``exit`` or a signal. Needs what the connector needs.
    """
    wanted = set(pids)
    results: dict[int, Ended | None] = {}
    live: dict[int, set[int]] = {}  # each waited process's threads that have not exited
    last_code: dict[int, int] = {}  # each one's last exit received, for after a loss

    def look_up(pid: int, gone: Ended | None) -> None:
        found = _from_proc(pid)
        if isinstance(found, set):
            live[pid] = found
        else:
            live.pop(pid, None)
            results[pid] = found or gone

    with ProcConnector(events=EventType.EXIT | EventType.FORK | EventType.EXEC) as conn:
        for pid in sorted(wanted):
            look_up(pid, None)
        deadline = None if timeout is None else time.monotonic() + timeout
        lost = False  # events were lost: take in those received, then read /proc again
        while live:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                batch = conn.recv_batch(0 if lost else remaining, max_events=sys.maxsize)
            except OverrunError:  # lost forks or exits may be ours
                lost = True
                continue
            for event in batch:
                _take_in(event, live, results, last_code, follow=not lost)
            if lost:
                lost = False
                for pid in list(live):
                    look_up(pid, Ended(pid, last_code.get(pid, 0), None))
    return {pid: results.get(pid) for pid in sorted(wanted)}
