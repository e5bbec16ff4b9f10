"""Decode speed over the same captured datagrams: pyprocconn, the struct floor, pyroute2."""

from __future__ import annotations

import json
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pyprocconn as pc
from pyprocconn.kernel import cn_proc

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden.json"


def recording(events: int) -> list[bytes]:
    """``events`` real kernel datagrams, a storm's mix: fork, exec, exit in turn."""
    datagrams = json.loads(GOLDEN.read_text())["datagrams"]
    mix = [bytes.fromhex(datagrams[name]["hex"]) for name in ("fork", "exec", "exit")]
    return [mix[i % len(mix)] for i in range(events)]


def _interleaved_rates(runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Median events per second of each run, the runs taken in turn within every round so a
    machine whose speed drifts (a shared VM) slows them all alike and the ratios hold."""
    for run in runs.values():
        run()  # warm up
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            count = run()
            rates[name].append(count / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def measure(events: int, rounds: int) -> dict[str, float | None]:
    datagrams = recording(events)
    joined = b"".join(datagrams)  # recorded datagrams back to back, as a capture file holds them
    writable = bytearray(joined)
    parse_events = pc.parse_events

    def pyprocconn_recording() -> int:
        return len(parse_events(joined))

    def pyprocconn_per_datagram() -> int:
        return sum(len(parse_events(d)) for d in datagrams)

    floor_struct = struct.Struct("=IHHIIIIIIHHIIQiiiiii")  # the whole 76-byte message

    def struct_floor() -> int:
        unpack = floor_struct.unpack_from
        for offset in range(0, len(joined), floor_struct.size):
            unpack(joined, offset)
        return len(datagrams)

    def zero_copy_views() -> int:
        count = checksum = 0
        for message in pc.NetlinkMessageIter(writable, len(writable)):
            event = message.proc_event
            assert event is not None
            data = event.event_data
            if event.what == cn_proc.PROC_EVENT_EXIT:
                checksum += data.exit.process_pid + data.exit.exit_code + data.exit.parent_tgid
            elif event.what == cn_proc.PROC_EVENT_FORK:
                checksum += data.fork.parent_tgid + data.fork.child_pid + data.fork.child_tgid
            else:
                checksum += data.exec.process_pid + data.exec.process_tgid
            count += 1
        assert checksum > 0  # the fields were read
        return count

    runs: dict[str, Callable[[], int]] = {
        "pyprocconn parse_events (recording)": pyprocconn_recording,
        "pyprocconn parse_events (one call per datagram)": pyprocconn_per_datagram,
        "pyprocconn NetlinkMessageIter views, fields read": zero_copy_views,
        "struct.unpack_from floor (whole message, no objects)": struct_floor,
    }
    try:
        from pyroute2.netlink.connector.cn_proc import ProcEventMarshal
    except ImportError:
        ProcEventMarshal = None  # noqa: N806 - the class, when installed
    if ProcEventMarshal is not None:
        marshal = ProcEventMarshal()

        def pyroute2_parse() -> int:
            return len(list(marshal.parse(joined)))

        runs["pyroute2 ProcEventMarshal (warmed up)"] = pyroute2_parse
    results: dict[str, float | None] = dict(_interleaved_rates(runs, rounds))
    results.setdefault("pyroute2 ProcEventMarshal (warmed up)", None)
    return results
