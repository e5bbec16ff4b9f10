"""A listener process for the live benchmark: subscribes, says "ready", counts, reports JSON.

``python -m benchmarks.consumer MODE SECONDS [RCVBUF]``; MODE is ``batch`` (blocking recv_batch
with a 1 ms linger, what the iterators use), ``recv`` (blocking, one event per call) or
``pyroute2``. The pyprocconn modes stop at SIGUSR1 (or after SECONDS), pyroute2 after SECONDS.
Records the children each parent forked and counts EXIT events by parent tgid, so
the harness can match them to the storm's workers exactly (an exit the kernel reports with parent
0, which happens when the parent reaps at the same moment, is matched by its pid). CPU time
covers the receive loop only.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import sys
import time
from typing import Any


class StopError(Exception):
    """SIGUSR1: the harness says the storm is over."""


def _stop(signum: int, frame: object) -> None:
    raise StopError


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pyprocconn(mode: str, seconds: float, rcvbuf: int | None) -> dict[str, Any]:
    import pyprocconn as pc

    options: dict[str, Any] = {} if rcvbuf is None else {"rcvbuf": rcvbuf}
    conn = pc.ProcConnector(**options)
    forks: dict[int, list[int]] = {}
    exits: dict[int, int] = {}
    orphan_exits: list[int] = []
    latencies: list[int] = []
    received = overruns_seen = 0
    fork_type, exit_type = pc.ForkEvent, pc.ExitEvent
    monotonic_ns, process_time = time.monotonic_ns, time.process_time
    library_cpu = 0.0  # CPU spent inside pyprocconn's receive calls only
    signal.signal(signal.SIGUSR1, _stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)  # a backstop if the harness never signals
    signal.signal(signal.SIGALRM, _stop)
    print("ready", flush=True)
    cpu0 = _cpu()
    try:
        while True:
            before = process_time()
            try:
                if mode == "batch":
                    batch = conn.recv_batch(None, linger=pc.DEFAULT_LINGER)
                else:
                    batch = [conn.recv()]
            except pc.OverrunError:
                overruns_seen += 1
                continue
            finally:
                library_cpu += process_time() - before
            now = monotonic_ns()
            received += len(batch)
            for event in batch:
                latencies.append(now - event.timestamp_ns)
                kind = type(event)
                if kind is fork_type:
                    forks.setdefault(event.parent_tgid, []).append(event.child_pid)  # type: ignore[attr-defined]
                elif kind is exit_type:
                    parent = event.parent_tgid  # type: ignore[attr-defined]
                    exits[parent] = exits.get(parent, 0) + 1
                    if parent == 0:
                        orphan_exits.append(event.process_pid)  # type: ignore[attr-defined]
    except StopError:
        pass
    signal.setitimer(signal.ITIMER_REAL, 0)
    cpu = _cpu() - cpu0
    stats = conn.stats
    rcvbuf_effective = conn.rcvbuf
    conn.close()
    return {
        "received": received,
        "cpu": cpu,
        "library_cpu": library_cpu,
        "forks_by_parent": forks,
        "exits_by_parent": exits,
        "orphan_exits": orphan_exits,
        "lost": stats.lost,
        "overruns": stats.overruns,
        "latencies_ns": latencies,
        "rcvbuf": rcvbuf_effective,
    }


def run_pyroute2(seconds: float) -> dict[str, Any]:
    import select

    from pyroute2 import ProcEventSocket

    sock = ProcEventSocket()
    sock.bind()
    sock.control(listen=True)
    forks: dict[int, list[int]] = {}
    exits: dict[int, int] = {}
    orphan_exits: list[int] = []
    received = overruns = 0
    print("ready", flush=True)
    cpu0, deadline = _cpu(), time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            if not select.select([sock], [], [], remaining)[0]:
                continue
            messages = sock.get()
        except OSError:  # ENOBUFS: pyroute2's socket keeps raising it from then on
            overruns += 1
            break
        for message in messages:
            received += 1
            what = message["what"]
            if what == 1:
                forks.setdefault(message.get("parent_tgid"), []).append(message.get("child_pid"))
            elif what == 0x80000000:
                parent = message.get("parent_tgid")
                exits[parent] = exits.get(parent, 0) + 1
                if parent == 0:
                    orphan_exits.append(message.get("process_pid"))
    cpu = _cpu() - cpu0
    with contextlib.suppress(OSError):  # the ENOBUFS again
        sock.close()
    return {
        "received": received,
        "cpu": cpu,
        "forks_by_parent": forks,
        "exits_by_parent": exits,
        "orphan_exits": orphan_exits,
        "lost": None,
        "overruns": overruns,
        "latencies_ns": [],
    }


def main() -> None:
    mode, seconds = sys.argv[1], float(sys.argv[2])
    rcvbuf = int(sys.argv[3]) if len(sys.argv) > 3 else None
    result = run_pyroute2(seconds) if mode == "pyroute2" else run_pyprocconn(mode, seconds, rcvbuf)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
