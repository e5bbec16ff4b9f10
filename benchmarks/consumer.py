"""A listener process for the live benchmark: subscribes, says "ready", records, reports JSON.

``python -m benchmarks.consumer MODE SECONDS [RCVBUF]``; MODE is ``batch`` (blocking recv_batch
with a 1 ms linger, what the iterators use), ``recv`` (blocking, one event per call) or
``pyroute2``. Every mode stops at SIGUSR1 (SIGTERM too; SECONDS is a backstop) and unsubscribes
(IGNORE) on every way out: the kernel's listener count only drops on an IGNORE from the same
socket, closing does not. Records each FORK's child and parent tgid and each EXIT's pid, parent
tgid and exit code, in arrival order (``[0 fork | 1 exit, pid, parent, code]``), for the harness
to match to the storm. The harness measures this process's CPU from outside; the only time taken
here is the CPU inside pyprocconn's receive calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyprocconn

Record = tuple[int, int, int, int]


class StopError(Exception):
    """A stop signal: the harness says the storm is over."""


_STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGALRM)
_stops: list[int] = []  # signals that asked to stop


def _note_stop(signum: int, frame: object) -> None:
    _stops.append(signum)


def _stop(signum: int, frame: object) -> None:
    # Raise once only, so a second signal cannot interrupt the unsubscribing.
    signal.setitimer(signal.ITIMER_REAL, 0)
    for number in _STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise StopError


def _receive(
    conn: pyprocconn.ProcConnector, mode: str, events: list[Record], totals: dict[str, Any]
) -> None:
    """Receive until a stop signal raises StopError, keeping what the harness matches."""
    import pyprocconn as pc

    record, latencies = events.append, totals["latencies_ns"].append
    fork_type, exit_type = pc.ForkEvent, pc.ExitEvent
    monotonic_ns, process_time = time.monotonic_ns, time.process_time
    while True:
        before = process_time()
        try:
            batch = (
                conn.recv_batch(None, linger=pc.DEFAULT_LINGER)
                if mode == "batch"
                else [conn.recv()]
            )
        except pc.OverrunError:
            continue  # counted in conn.stats
        finally:
            totals["library_cpu"] += process_time() - before  # inside pyprocconn's calls only
        now = monotonic_ns()
        totals["received"] += len(batch)
        items: list[Any] = batch  # told apart by class identity, the cheapest test
        for event in items:
            latencies(now - event.timestamp_ns)
            kind = type(event)
            if kind is fork_type:
                record((0, event.child_pid, event.parent_tgid, 0))
            elif kind is exit_type:
                record((1, event.process_pid, event.parent_tgid, event.exit_code))


def run_pyprocconn(mode: str, seconds: float, rcvbuf: int | None) -> dict[str, Any]:
    import pyprocconn as pc

    # Until subscribed, a stop only takes note: an exception inside the constructor could
    # leave the kernel with a LISTEN and no IGNORE.
    for number in _STOP_SIGNALS:
        signal.signal(number, _note_stop)
    conn = pc.ProcConnector(**({} if rcvbuf is None else {"rcvbuf": rcvbuf}))
    events: list[Record] = []
    totals: dict[str, Any] = {"received": 0, "library_cpu": 0.0, "latencies_ns": []}
    try:
        for number in _STOP_SIGNALS:
            signal.signal(number, _stop)
        if _stops:
            raise StopError
        signal.setitimer(signal.ITIMER_REAL, seconds)
        print("ready", flush=True)
        _receive(conn, mode, events, totals)
    except StopError:
        pass
    finally:
        stats = conn.stats
        conn.close()  # sends IGNORE
    return {**totals, "events": events, "lost": stats.lost, "overruns": stats.overruns}


# The IGNORE pyroute2's control(listen=False) sends: nlmsghdr, cn_msg {CN_IDX_PROC, 1}, op 2.
_IGNORE = struct.pack("=IHHII", 40, 3, 0, 0, 0) + struct.pack("=IIIIHHI", 1, 1, 0, 0, 4, 0, 2)


def run_pyroute2(seconds: float) -> dict[str, Any]:
    import select

    from pyroute2 import ProcEventSocket

    # A flag, not an exception: pyroute2 runs an event loop inside get() and is not ours to
    # interrupt. The loop below waits at most 0.1 s at a time, so it sees the flag.
    for number in _STOP_SIGNALS:
        signal.signal(number, _note_stop)
    events: list[Record] = []
    received = overruns = 0
    sock = ProcEventSocket()
    # Our own handle on the same kernel socket: after ENOBUFS pyroute2's transport closes its
    # descriptor and refuses every call, control(listen=False) included, so the IGNORE goes
    # through this one (it also keeps the socket alive until then).
    handle = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        sock.bind()
        sock.control(listen=True)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        print("ready", flush=True)
        while not _stops:
            if not select.select([handle], [], [], 0.1)[0]:
                continue
            try:
                messages = sock.get()
            except OSError:  # ENOBUFS: pyroute2's socket is dead from here on
                overruns += 1
                break
            for message in messages:
                received += 1
                what = message["what"]
                if what == 1:
                    events.append((0, message["child_pid"], message["parent_tgid"], 0))
                elif what == 0x80000000:
                    events.append(
                        (1, message["process_pid"], message["parent_tgid"], message["exit_code"])
                    )
        while not _stops:
            time.sleep(0.1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        handle.sendto(_IGNORE, (0, 0))
        handle.close()
        with contextlib.suppress(Exception):  # it re-raises the ENOBUFS it died of
            sock.close()
    return {
        "received": received,
        "events": events,
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
