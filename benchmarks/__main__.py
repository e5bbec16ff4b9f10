"""``python -m benchmarks``: decode speed and a live fork storm, side by side, in one run.

Prints a Markdown table (medians of several rounds, ratios to the baselines) and checks the
project's budgets. ``--quick`` is the short run CI makes so the benchmark cannot rot: it reports
but does not judge (CI machines are noisy). Needs root for the live part and gcc for the storm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import decode

HERE = Path(__file__).resolve().parent
BUDGETS = {
    "decode_rate": 1_000_000.0,  # parse_events on a recording, events/s
    "batch_cpu_us": 2.0,  # CPU per event, recv_batch with 1 ms linger, decode included
    "recv_cpu_us": 12.0,  # CPU per event, one recv per event
}


@dataclass
class LiveRound:
    expected: int
    received: int
    cpu: float
    total_received: int
    storm_seconds: float
    library_cpu: float | None = None  # inside pyprocconn's receive calls only
    lost_reported: int | None = None
    overruns: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def cpu_per_event_us(self) -> float:
        return 1e6 * self.cpu / max(1, self.total_received)

    @property
    def library_cpu_per_event_us(self) -> float | None:
        if self.library_cpu is None:
            return None
        return 1e6 * self.library_cpu / max(1, self.total_received)


def build_storm(workdir: Path) -> Path:
    binary = workdir / "storm"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "storm.c")], check=True)
    return binary


def build_floor(workdir: Path) -> Path:
    binary = workdir / "floor"
    headers = HERE.parent / "headers"
    subprocess.run(
        ["gcc", "-O2", "-I", str(headers), "-o", str(binary), str(HERE / "floor.c")], check=True
    )
    return binary


def _reveal_and_stop(consumer: subprocess.Popen[str]) -> None:
    # A CPU's loss shows as a sequence gap at its next event: make one on every CPU.
    for cpu in sorted(os.sched_getaffinity(0)):
        subprocess.run(["taskset", "-c", str(cpu), "/bin/true"], check=True)
    time.sleep(1.0)  # let the consumer drain what is queued
    consumer.send_signal(signal.SIGUSR1)


def live_floor(floor: Path, storm: Path, mode: str, workers: int, seconds: float) -> LiveRound:
    """The same loop in C: what the kernel and the loop's design cost without Python."""
    consumer = subprocess.Popen(
        [str(floor), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_ready(consumer)
    storm_result = run_storm(storm, workers, seconds)
    _reveal_and_stop(consumer)
    out, _ = consumer.communicate(timeout=60)
    result = json.loads(out)
    expected = 2 * storm_result["forks"]
    # It counts every event on the machine; the storm's are nearly all of them.
    return LiveRound(
        expected=expected,
        received=min(result["received"], expected),
        cpu=result["cpu"],
        total_received=result["received"],
        storm_seconds=storm_result["seconds"],
    )


def run_storm(storm: Path, workers: int, seconds: float) -> dict[str, Any]:
    done = subprocess.run(
        [str(storm), str(workers), str(seconds)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _wait_ready(process: subprocess.Popen[str], timeout: float = 15.0) -> None:
    assert process.stdout is not None
    if not select.select([process.stdout], [], [], timeout)[0]:
        process.kill()
        raise RuntimeError("the consumer did not subscribe in time")
    line = process.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(
            f"consumer failed: {line!r} {process.stderr.read() if process.stderr else ''}"
        )


def live_pyprocconn(
    storm: Path,
    mode: str,
    workers: int,
    seconds: float,
    rcvbuf: int | None = None,
    listen: float | None = None,
) -> LiveRound:
    if listen is None:
        listen = seconds + 30  # a backstop: the consumer stops at SIGUSR1
    command = [sys.executable, "-m", "benchmarks.consumer", mode, str(listen)]
    if rcvbuf is not None:
        command.append(str(rcvbuf))
    consumer = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent
    )
    _wait_ready(consumer)
    storm_result = run_storm(storm, workers, seconds)
    if mode != "pyroute2":
        _reveal_and_stop(consumer)
    out, err = consumer.communicate(timeout=listen + 30)
    if consumer.returncode != 0:
        raise RuntimeError(f"consumer failed: {err}")
    result = json.loads(out)
    workers_pids = {str(pid) for pid in storm_result["workers"]}
    children = {
        child
        for parent, pids in result["forks_by_parent"].items()
        if parent in workers_pids
        for child in pids
    }
    received = sum(
        len(pids) for parent, pids in result["forks_by_parent"].items() if parent in workers_pids
    )
    received += sum(
        count for parent, count in result["exits_by_parent"].items() if parent in workers_pids
    )
    received += sum(1 for pid in result["orphan_exits"] if pid in children)
    return LiveRound(
        expected=2 * storm_result["forks"],
        received=received,
        cpu=result["cpu"],
        total_received=result["received"],
        storm_seconds=storm_result["seconds"],
        library_cpu=result.get("library_cpu"),
        lost_reported=result["lost"],
        overruns=result["overruns"],
        latencies_ns=result["latencies_ns"],
    )


def live_forkstat(storm: Path, workers: int, seconds: float) -> LiveRound | None:
    forkstat = shutil.which("forkstat")
    if forkstat is None:
        return None
    listen = seconds + 1.5
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            [forkstat, "-S", "-e", "fork,exit", "-D", f"{listen:g}"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.5)  # forkstat has no readiness signal
        storm_result = run_storm(storm, workers, seconds)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    forks = exits = 0
    table = text.split("    Fork     Exec     Exit", 1)
    if len(table) == 2:
        for line in table[1].splitlines()[1:]:
            numbers = re.findall(r"^\s*(\d+)\s+(\d+)\s+(\d+)", line)
            if numbers:
                forks += int(numbers[0][0])
                exits += int(numbers[0][2])
    expected = 2 * storm_result["forks"]
    # forkstat counts every process's events; the storm's are nearly all of them in the window.
    received = min(forks, storm_result["forks"]) + min(exits, storm_result["forks"])
    return LiveRound(
        expected=expected,
        received=received,
        cpu=usage.ru_utime + usage.ru_stime,
        total_received=forks + exits,
        storm_seconds=storm_result["seconds"],
    )


def live_command(storm: Path, workers: int, seconds: float) -> LiveRound:
    """The ``pyprocconn`` command, ``--json`` to /dev/null, its own stats (-S) read at the end."""
    listen = seconds + 2.0
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "pyprocconn", "--json", "-S", "-D", f"{listen:g}"],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=HERE.parent,
        )
        time.sleep(0.5)  # no readiness signal on a JSON stream
        storm_result = run_storm(storm, workers, seconds)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text = errors.read()
    counts = dict(re.findall(r"^(fork|exit)\s+(\d+)$", text, re.MULTILINE))
    lost = re.search(r"^lost: (\d+)", text, re.MULTILINE)
    forks, exits = int(counts.get("fork", 0)), int(counts.get("exit", 0))
    expected = 2 * storm_result["forks"]
    # Like forkstat, it counts every process's events; the storm's are nearly all of them.
    return LiveRound(
        expected=expected,
        received=min(forks, storm_result["forks"]) + min(exits, storm_result["forks"]),
        cpu=usage.ru_utime + usage.ru_stime,
        total_received=forks + exits,
        storm_seconds=storm_result["seconds"],
        lost_reported=int(lost.group(1)) if lost else None,
    )


def live_pyroute2(storm: Path, workers: int, seconds: float) -> LiveRound | None:
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return None
    return live_pyprocconn(storm, "pyroute2", workers, seconds, listen=seconds + 1.5)


def latency_idle(seconds: float) -> list[int]:
    consumer = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.consumer", "batch", str(seconds + 0.5)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )
    _wait_ready(consumer)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        subprocess.run(["/bin/true"], check=True)
        time.sleep(0.02)
    consumer.send_signal(signal.SIGUSR1)
    out, _ = consumer.communicate(timeout=seconds + 30)
    latencies: list[int] = json.loads(out)["latencies_ns"]
    return latencies


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e3 if ordered else 0.0


def _median_round(rounds: list[LiveRound]) -> LiveRound:
    ordered = sorted(rounds, key=lambda r: r.cpu_per_event_us)
    return ordered[len(ordered) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run, no budget checks (CI)")
    parser.add_argument("--rounds", type=int, default=None, help="live rounds per consumer")
    parser.add_argument("--seconds", type=float, default=None, help="storm length per round")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    workers = os.cpu_count() or 2

    print(f"# pyprocconn benchmark{' (quick)' if args.quick else ''}\n")
    print(
        f"Machine: {os.cpu_count()} cores, Linux {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}; storm: {workers} workers x {seconds:g} s, "
        f"{rounds} rounds, medians.\n"
    )

    decode_rates = decode.measure(3_000 if args.quick else 30_000, 3 if args.quick else 7)
    ours = decode_rates["pyprocconn parse_events (recording)"] or 0.0
    floor = decode_rates["struct.unpack_from floor (whole message, no objects)"] or 0.0
    pyroute2_rate = decode_rates["pyroute2 ProcEventMarshal (warmed up)"]
    print("## Decoding captured datagrams\n")
    print("| decoder | events/s | vs pyroute2 |")
    print("|---|---:|---:|")
    for name, rate in decode_rates.items():
        ratio = f"{rate / pyroute2_rate:.1f}x" if rate and pyroute2_rate else "-"
        print(f"| {name} | {f'{rate:,.0f}' if rate else 'not installed'} | {ratio} |")
    print(f"\nparse_events is {floor / ours:.2f}x slower than the bare struct floor.\n")

    if os.geteuid() != 0:
        print("(live part skipped: needs root)")
        return 0
    results: dict[str, LiveRound] = {}
    with tempfile.TemporaryDirectory() as scratch:
        storm = build_storm(Path(scratch))
        floor_binary = build_floor(Path(scratch))
        plans: list[tuple[str, Callable[[], LiveRound | None]]] = [
            (
                "pyprocconn recv_batch, linger 1 ms",
                lambda: live_pyprocconn(storm, "batch", workers, seconds),
            ),
            (
                "pyprocconn recv, one per call",
                lambda: live_pyprocconn(storm, "recv", workers, seconds),
            ),
            (
                "C floor: same batch loop, no Python",
                lambda: live_floor(floor_binary, storm, "batch", workers, seconds),
            ),
            (
                "C floor: recv, one per call, no Python",
                lambda: live_floor(floor_binary, storm, "one", workers, seconds),
            ),
            ("forkstat (C)", lambda: live_forkstat(storm, workers, seconds)),
            (
                "pyprocconn command, --json > /dev/null",
                lambda: live_command(storm, workers, seconds),
            ),
            ("pyroute2 ProcEventSocket", lambda: live_pyroute2(storm, workers, seconds)),
            (
                "pyprocconn recv_batch, rcvbuf forced to 4 KiB",
                lambda: live_pyprocconn(storm, "batch", workers, seconds, rcvbuf=2048),
            ),
        ]
        for name, plan in plans:
            collected: list[LiveRound] = []
            for _ in range(rounds):
                result = plan()
                if result is not None:
                    collected.append(result)
            if collected:
                results[name] = _median_round(collected)
        idle = latency_idle(1.0 if args.quick else 3.0)

    print("## Live fork storm (same storm generator, one consumer at a time)\n")
    print(
        "| consumer | storm forks/s | expected | received | lost | lost reported | CPU per event |"
        " of which in pyprocconn | vs forkstat |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    forkstat_cpu = results["forkstat (C)"].cpu_per_event_us if "forkstat (C)" in results else None
    for name, r in results.items():
        reported = "-" if r.lost_reported is None else f"{r.lost_reported}"
        if r.overruns:
            reported += f" ({r.overruns} overruns)"
        ratio = f"{forkstat_cpu / r.cpu_per_event_us:.1f}x less" if forkstat_cpu else "-"
        library = r.library_cpu_per_event_us
        library_text = "-" if library is None else f"{library:.2f} us"
        print(
            f"| {name} | {r.expected / 2 / r.storm_seconds:,.0f} | {r.expected:,} | "
            f"{r.received:,} ({100 * r.received / max(1, r.expected):.2f}%) | {r.lost:,} | "
            f"{reported} | {r.cpu_per_event_us:.2f} us | {library_text} | {ratio} |"
        )
    storm_latency = results["pyprocconn recv_batch, linger 1 ms"].latencies_ns
    print("\n## Latency: kernel timestamp_ns to event object in hand (recv_batch, linger 1 ms)\n")
    print("| load | p50 | p99 |")
    print("|---|---:|---:|")
    print(
        f"| idle (a process every 20 ms) | {percentile(idle, 0.5):.0f} us | "
        f"{percentile(idle, 0.99):.0f} us |"
    )
    print(
        f"| fork storm | {percentile(storm_latency, 0.5):.0f} us | "
        f"{percentile(storm_latency, 0.99):.0f} us |"
    )

    batch = results["pyprocconn recv_batch, linger 1 ms"]
    one = results["pyprocconn recv, one per call"]
    checks = [
        (f"parse_events >= {BUDGETS['decode_rate']:,.0f} events/s", ours >= BUDGETS["decode_rate"]),
        (
            f"recv_batch CPU in pyprocconn <= {BUDGETS['batch_cpu_us']} us/event",
            (batch.library_cpu_per_event_us or 0) <= BUDGETS["batch_cpu_us"],
        ),
        (
            f"recv CPU in pyprocconn <= {BUDGETS['recv_cpu_us']} us/event",
            (one.library_cpu_per_event_us or 0) <= BUDGETS["recv_cpu_us"],
        ),
        ("no event lost under the storm with default settings", batch.lost == 0),
    ]
    print("\n## Budgets\n")
    for text, passed in checks:
        print(f"- {'PASS' if passed else 'FAIL'}: {text}")
    if args.quick:
        print("\n(quick run: budgets reported, not enforced)")
        return 0
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
