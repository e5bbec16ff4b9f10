"""One round of the fork storm (``storm.c``) under one listener, measured as every live row is:
the storm's events matched among those the listener reported (:func:`storm_events_received`),
its CPU from just before the storm to its queue drained (:func:`live`); and the parsers of the
storm listeners' outputs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import EXIT, FORK, Consumer, Listener, Record, Report


@dataclass
class LiveRound:
    expected: int
    received: int
    cpu: float  # the consumer's CPU from just before the storm to its queue drained
    storm_seconds: float
    report: Report

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def cpu_per_event_us(self) -> float:
        return 1e6 * self.cpu / max(1, self.received)

    @property
    def library_cpu_per_event_us(self) -> float | None:
        if self.report.library_cpu is None:
            return None
        return 1e6 * self.report.library_cpu / max(1, self.received)


def storm_events_received(events: list[Record], workers: set[int], exit_code: int) -> int:
    """How many of the storm's events are among a consumer's, taken in arrival order.

    A FORK is the storm's when its parent is a worker. An EXIT must carry the storm's exit code
    and name a worker as parent, or close an open storm FORK of the same pid (the kernel reports
    parent 0 when the worker reaped first), or come from a consumer that does not say parents
    (forkstat), whose FORKs count once the next EXIT of their pid carries the storm's code.
    A FORK is closed at most once, so a pid the storm reuses (a round that forks more than
    pid_max processes) is never counted twice."""
    open_forks: Counter[int] = Counter()  # the storm's FORKs whose EXIT has not come yet
    unproven: Counter[int] = Counter()  # FORKs of unknown parent, waiting for their EXIT
    count = 0
    for kind, pid, parent, code in events:
        if kind == FORK:
            if parent in workers:
                count += 1
                open_forks[pid] += 1
            elif parent is None:
                unproven[pid] += 1
        elif code != exit_code:
            unproven.pop(pid, None)  # that pid was another program's
        elif open_forks[pid]:
            open_forks[pid] -= 1
            count += 1
        elif unproven[pid]:
            unproven[pid] -= 1
            count += 2
        elif parent is None or parent in workers:
            count += 1
    return count


def run_storm(storm: Path, workers: int, seconds: float) -> dict[str, Any]:
    done = subprocess.run(
        [str(storm), str(workers), str(seconds)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _reveal() -> None:
    # A CPU's loss shows as a sequence gap at its next event: make one on every CPU.
    for cpu in sorted(os.sched_getaffinity(0)):
        subprocess.run(["taskset", "-c", str(cpu), "/bin/true"], check=True)


def live(listener: Listener, storm: Path, workers: int, seconds: float, scratch: Path) -> LiveRound:
    """One round: subscribe, storm, drain, stop. CPU counts from just before the storm to the
    queue drained, read from outside the same way for every consumer."""
    consumer = Consumer(listener, scratch)
    try:
        consumer.wait_ready()
        cpu_before = consumer.cpu()
        storm_result = run_storm(storm, workers, seconds)
        _reveal()
        cpu = consumer.drained() - cpu_before
    finally:
        report = consumer.stop()
    expected = 2 * storm_result["forks"]
    workers_pids = set(storm_result["workers"])
    received = storm_events_received(report.events, workers_pids, storm_result["exit_code"])
    if received > expected:
        raise RuntimeError(
            f"harness bug: {listener.name} matched {received} storm events of {expected}"
        )
    return LiveRound(expected, received, cpu, storm_result["seconds"], report)


def parse_consumer(out: str, err: str) -> Report:
    """benchmarks.consumer and floor.c: "ready", then one JSON object."""
    result = json.loads(out.split("\n", 1)[1])
    return Report(
        events=[tuple(event) for event in result["events"]],
        lost_reported=result.get("lost"),
        overruns=result.get("overruns", 0),
        library_cpu=result.get("library_cpu"),
        latencies_ns=result.get("latencies_ns", []),
    )


_FORKSTAT_LINE = re.compile(r"^\S+ (fork|exit) +(\d+) +(\S+)", re.MULTILINE)


def parse_forkstat(out: str, err: str) -> Report:
    """``forkstat -e fork,exit``: a FORK is two lines, "PPID parent" then "PID child"; an EXIT is
    "PID CODE". The parent is read from /proc when forkstat gets to the event, and is 0 when the
    child is already gone (a storm child nearly always is), so 0 means "not said". ENOBUFS
    prints a "nobufs" line."""
    events: list[Record] = []
    parent: int | None = None
    for kind, pid, info in _FORKSTAT_LINE.findall(out):
        if kind == "exit":
            events.append((EXIT, int(pid), None, int(info)))
        elif info == "parent":
            parent = int(pid) or None
        else:
            events.append((FORK, int(pid), parent, 0))
    return Report(events, overruns=out.count(" nobufs "))


def parse_command(out: str, err: str) -> Report:
    """``pyprocconn --json -S``: one JSON object per event; the stats (-S) on stderr."""
    events: list[Record] = []
    for line in out.splitlines():
        record = json.loads(line)
        if record["event"] == "fork":
            events.append((FORK, record["child_pid"], record["parent_tgid"], 0))
        elif record["event"] == "exit":
            code = record["exit_code"]
            events.append((EXIT, record["process_pid"], record["parent_tgid"], code))
    lost = re.search(r"^lost: (\d+)", err, re.MULTILINE)
    return Report(events, lost_reported=int(lost.group(1)) if lost else None)


_COMMAND_TEXT_LINE = re.compile(r"^\S+ (fork|exit) +(\d+)  (?:parent|exit) (\d+)", re.MULTILINE)


def parse_command_text(out: str, err: str) -> Report:
    """``pyprocconn -S`` (the default mode, text): "TIME fork PID  parent PPID  COMMAND" and
    "TIME exit PID  exit STATUS after ..."; the stats (-S) on stderr."""
    events: list[Record] = []
    for kind, pid, number in _COMMAND_TEXT_LINE.findall(out):
        if kind == "fork":
            events.append((FORK, int(pid), int(number), 0))
        else:  # the text shows the exit status, the kernel's code is the wait(2) status
            events.append((EXIT, int(pid), None, int(number) << 8))
    lost = re.search(r"^lost: (\d+)", err, re.MULTILINE)
    return Report(events, lost_reported=int(lost.group(1)) if lost else None)


def consumer_listener(name: str, mode: str, rcvbuf: int | None = None) -> Listener:
    command = [sys.executable, "-m", "benchmarks.consumer", mode, "600"]  # 600 s: a backstop
    if rcvbuf is not None:
        command.append(str(rcvbuf))
    return Listener(name, command, signal.SIGUSR1, parse_consumer)


def median_round(rounds: list[LiveRound]) -> LiveRound:
    ordered = sorted(rounds, key=lambda r: r.cpu_per_event_us)
    return ordered[len(ordered) // 2]
