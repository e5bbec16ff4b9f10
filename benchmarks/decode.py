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


def _rate(run: Callable[[], int], rounds: int) -> float:
    """Median events per second over ``rounds`` runs (after one warm-up run)."""
    run()
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


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

    results: dict[str, float | None] = {
        "pyprocconn parse_events (recording)": _rate(pyprocconn_recording, rounds),
        "pyprocconn parse_events (one call per datagram)": _rate(pyprocconn_per_datagram, rounds),
        "pyprocconn NetlinkMessageIter views, fields read": _rate(zero_copy_views, rounds),
        "struct.unpack_from floor (whole message, no objects)": _rate(struct_floor, rounds),
        "pyroute2 ProcEventMarshal (warmed up)": None,
    }
    try:
        from pyroute2.netlink.connector.cn_proc import ProcEventMarshal
    except ImportError:
        return results
    marshal = ProcEventMarshal()

    def pyroute2_parse() -> int:
        return len(list(marshal.parse(joined)))

    results["pyroute2 ProcEventMarshal (warmed up)"] = _rate(pyroute2_parse, max(1, rounds // 2))
    return results
