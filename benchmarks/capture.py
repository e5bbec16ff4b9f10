"""``python -m benchmarks.capture``: the process table against forkstat and extrace, in one run.

1. **argv of short-lived execs.** ``execs.c`` runs ``/bin/true MARK-<run>-<i>`` COUNT times (300),
   one every INTERVAL (2 ms), each reaped at once; /bin/true lives under a millisecond after its
   exec (0.6-0.9 ms median here), and an exited process has no command line, so a listener must
   read ``/proc/<pid>/cmdline`` within that time. Each listener runs alone under the same
   workload, in turn, for several rounds (the order rotates): ``ProcessTable()`` and
   ``ProcessTable(realtime=True)`` in ``benchmarks.table_consumer`` (printing every exec record's
   argv), ``forkstat -e exec`` and ``forkstat -r -e exec``, and ``extrace``. An exec counts as
   captured when the listener showed that child's pid with its own ``MARK-<run>-<i>`` among the
   words of its command line (the driver's argv holds no "MARK-", so a parent's command line
   shown for a child never matches).
   A table row's targets: at least 99% captured, and more than forkstat run the same way (``-r``
   or not) and extrace. For the table rows it also says why a capture was missed: the consumer
   notes when each batch was in hand (before the table reads /proc) and on which CPU, against
   the kernel's exec and exit timestamps (the same clock, CLOCK_MONOTONIC) and the exec's CPU.
2. **fork storm with the table on.** The main benchmark's storm (``storm.c``, its matching and its
   CPU window, ``benchmarks.__main__.live``) under ``ProcessTable()``, the plain ``recv_batch``
   consumer and forkstat.

Listeners are stopped with a signal they honour and unsubscribe: forkstat through the
``unsubscribe.c`` shim (SIGINT), extrace, which handles no signal and never sends IGNORE (checked
with strace: killed by SIGINT with its listener still registered), through
``unsubscribe_sigterm.c`` (SIGTERM: IGNORE, then exit 0). The listener probe runs as in the main
benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.__main__ import (
    Consumer,
    Listener,
    LiveRound,
    Report,
    _median_round,
    build,
    check_listeners,
    consumer_listener,
    live,
    parse_consumer,
    parse_forkstat,
)

COUNT = 300
INTERVAL_US = 2000
TARGET_FRACTION = 0.99  # of the execs, for the table (297 / 300)
TABLE = "pyprocconn ProcessTable()"
TABLE_RT = "pyprocconn ProcessTable(realtime=True)"
EXTRACE = "extrace (C)"


@dataclass
class Settings:
    rounds: int
    count: int
    interval_us: int
    storm_rounds: int
    storm_seconds: float
    workers: int


@dataclass
class Workload:
    """What execs.c did in one run."""

    run: str
    pids: list[int]
    seconds: float

    def mark(self, index: int) -> str:
        return f"MARK-{self.run}-{index}"


@dataclass
class Diagnosis:
    """Why the table missed what it missed (one round)."""

    delays_ns: list[int] = field(default_factory=list)  # batch in hand - exec, every exec
    missed_delays_ns: list[int] = field(default_factory=list)  # the same, missed execs only
    lifetimes_ns: list[int] = field(default_factory=list)  # exit - exec
    missed_exited: int = 0  # missed: its exit's timestamp is before the read
    missed_alive: int = 0  # missed although it had not exited yet when read
    same_cpu_delays_ns: list[int] = field(default_factory=list)  # read on the exec's CPU
    other_cpu_delays_ns: list[int] = field(default_factory=list)  # read on another CPU
    missed_same_cpu: int = 0  # missed, read on the CPU the exec happened on
    missed_unread: int = 0  # missed, and no read time noted (no batch wrapped)
    missed_said_complete: int = 0  # missed, yet the record says complete=True
    flagged_incomplete: int = 0  # exec records with complete=False
    table_incomplete: int = 0  # ProcessTable.incomplete
    lost: int = 0  # conn.stats.lost


@dataclass
class Capture:
    """One listener, one round."""

    shown: int  # workload execs the listener reported at all
    captured: int  # ... with their own MARK in the command line
    cpu: float = 0.0  # seconds, from just before the workload to the queue drained
    diagnosis: Diagnosis | None = None


@dataclass
class Tool:
    """How to run one listener for the capture workload."""

    name: str
    command: list[str]
    stop_signal: signal.Signals
    parse: Callable[[str, Workload], Capture]
    says_ready: bool = True
    env: dict[str, str] | None = None


@dataclass
class Output:
    """Keeps a stopped consumer's output (Consumer.stop hands it to a parser)."""

    text: str = ""

    def keep(self, out: str, err: str) -> Report:
        self.text = out
        return Report([])


def _matches(lines: Iterable[tuple[int, list[str]]], workload: Workload) -> tuple[int, int]:
    """(shown, captured): workload children a listener showed, and those with their MARK."""
    index = {pid: i for i, pid in enumerate(workload.pids)}
    shown: set[int] = set()
    captured: set[int] = set()
    for pid, words in lines:
        i = index.get(pid)
        if i is not None:
            shown.add(i)
            if workload.mark(i) in words:
                captured.add(i)
    return len(shown), len(captured)


_FORKSTAT_EXEC = re.compile(r"^\S+ exec +(\d+) +(.*)$", re.MULTILINE)
_EXTRACE_EXEC = re.compile(r"^ *(\d+)\+? (.*)$", re.MULTILINE)


def parse_forkstat_exec(out: str, workload: Workload) -> Capture:
    """``forkstat -e exec``: "TIME exec PID COMMAND LINE"."""
    lines = ((int(pid), text.split()) for pid, text in _FORKSTAT_EXEC.findall(out))
    return Capture(*_matches(lines, workload))


def parse_extrace(out: str, workload: Workload) -> Capture:
    """``extrace``: "PID COMMAND LINE", indented by depth; a process already reaped when extrace
    looks at it is not printed at all (a "process vanished" line on stderr)."""
    lines = ((int(pid), text.split()) for pid, text in _EXTRACE_EXEC.findall(out))
    return Capture(*_matches(lines, workload))


def _diagnose(rows: list[Any], summary: dict[str, Any], workload: Workload) -> Diagnosis:
    """rows: the consumer's exec lines, [pid, exec_ns, read_ns, argv, complete, exec_cpu,
    read_cpu]."""
    exits = {int(pid): ns for pid, ns in summary["exits"].items()}  # 0: no exit seen
    index = {pid: i for i, pid in enumerate(workload.pids)}
    found = Diagnosis(table_incomplete=summary["incomplete"], lost=summary["lost"])
    for pid, exec_ns, read_ns, argv, complete, exec_cpu, read_cpu in rows:
        if pid not in index:
            continue
        same_cpu = exec_cpu == read_cpu
        exit_ns = exits.get(pid, 0)
        found.flagged_incomplete += not complete
        if exit_ns:
            found.lifetimes_ns.append(exit_ns - exec_ns)
        if read_ns is not None:
            found.delays_ns.append(read_ns - exec_ns)
            (found.same_cpu_delays_ns if same_cpu else found.other_cpu_delays_ns).append(
                read_ns - exec_ns
            )
        if workload.mark(index[pid]) in (argv or []):
            continue
        found.missed_said_complete += bool(complete)
        found.missed_same_cpu += same_cpu
        if read_ns is None:
            found.missed_unread += 1
        elif exit_ns and exit_ns <= read_ns:
            found.missed_exited += 1
            found.missed_delays_ns.append(read_ns - exec_ns)
        else:
            found.missed_alive += 1
            found.missed_delays_ns.append(read_ns - exec_ns)
    return found


def parse_table(out: str, workload: Workload) -> Capture:
    """benchmarks.table_consumer capture: "ready", one JSON line per exec record, a summary."""
    lines = out.splitlines()
    rows = [json.loads(line) for line in lines[1:-1]]
    summary = json.loads(lines[-1])
    exec_lines = ((row[0], row[3] or []) for row in rows)
    shown, captured = _matches(exec_lines, workload)
    return Capture(shown, captured, diagnosis=_diagnose(rows, summary, workload))


def make_tools(scratch: Path) -> tuple[list[Tool], list[str]]:
    """The listeners to compare, and notes on the ones not installed."""
    table = [sys.executable, "-m", "benchmarks.table_consumer", "capture"]
    tools = [
        Tool(TABLE, table, signal.SIGUSR1, parse_table),
        Tool(TABLE_RT, [*table, "--realtime"], signal.SIGUSR1, parse_table),
    ]
    for flags in (["-e", "exec"], ["-r", "-e", "exec"]):  # the command: forkstat's line shape
        command = [sys.executable, "-m", "pyprocconn", *flags]
        name = f"pyprocconn command {' '.join(flags)}"
        tools.append(Tool(name, command, signal.SIGINT, parse_forkstat_exec, False))
    notes = []
    forkstat, extrace = shutil.which("forkstat"), shutil.which("extrace")
    if forkstat is None:
        notes.append("forkstat: not installed, skipped")
    else:
        shim = build(scratch, "unsubscribe.c", "-shared", "-fPIC", "-ldl")
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        for flags in (["-e", "exec"], ["-r", "-e", "exec"]):
            name = f"forkstat {' '.join(flags)} (C)"
            command = [forkstat, *flags]
            tools.append(Tool(name, command, signal.SIGINT, parse_forkstat_exec, False, env))
    if extrace is None:
        notes.append("extrace: not installed, skipped")
    else:
        shim = build(scratch, "unsubscribe_sigterm.c", "-shared", "-fPIC", "-ldl")
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        tools.append(Tool(EXTRACE, [extrace], signal.SIGTERM, parse_extrace, False, env))
    return tools, notes


def run_workload(execs: Path, run: str, count: int, interval_us: int) -> Workload:
    command = [str(execs), run, str(count), str(interval_us)]
    result = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)
    return Workload(run, result["pids"], result["seconds"])


def capture_once(tool: Tool, execs: Path, run: str, settings: Settings, scratch: Path) -> Capture:
    """One listener alone under the workload: subscribe, run it, drain, stop, count."""
    output = Output()
    listener = Listener(
        tool.name, tool.command, tool.stop_signal, output.keep, tool.says_ready, tool.env
    )
    consumer = Consumer(listener, scratch)
    try:
        consumer.wait_ready()
        cpu_before = consumer.cpu()
        workload = run_workload(execs, run, settings.count, settings.interval_us)
        cpu = consumer.drained() - cpu_before
    finally:
        consumer.stop()
    result = tool.parse(output.text, workload)
    result.cpu = cpu
    return result


class Probe:
    """The main benchmark's listener check, after every listener while nothing else listens."""

    def __init__(self) -> None:
        self.checking = check_listeners("before the capture benchmark", 0.5) == "none"
        self.leaked = False

    def after(self, name: str) -> None:
        if self.checking:
            state = check_listeners(f"after {name}", 0.1)
            self.checking, self.leaked = state == "none", self.leaked or state == "leaked"


def run_captures(
    settings: Settings, probe: Probe, scratch: Path
) -> tuple[dict[str, list[Capture]], list[str]]:
    """Every listener's rounds (the order rotates each round), and notes on skipped ones."""
    execs = build(scratch, "execs.c")
    tools, notes = make_tools(scratch)
    results: dict[str, list[Capture]] = {tool.name: [] for tool in tools}
    for round_number in range(settings.rounds):
        shift = round_number % len(tools)
        for position, tool in enumerate(tools[shift:] + tools[:shift]):
            run = f"{os.getpid()}r{round_number}t{position}"
            results[tool.name].append(capture_once(tool, execs, run, settings, scratch))
            probe.after(tool.name)
    return results, notes


def _median(values: list[int]) -> float:
    return statistics.median(values) if values else 0.0


def _percentile_us(values: list[int], fraction: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e3:.0f}"


def _peers(name: str, medians: dict[str, float]) -> dict[str, float]:
    """The rows a table row is held against: forkstat run the same way (realtime or not) and
    extrace."""
    wanted = ("forkstat -r -e exec (C)" if name == TABLE_RT else "forkstat -e exec (C)", EXTRACE)
    return {peer: value for peer, value in medians.items() if peer in wanted}


def _targets(name: str, medians: dict[str, float], count: int) -> str:
    if name not in (TABLE, TABLE_RT):
        return "-"
    captured, need = medians[name], int(TARGET_FRACTION * count)
    texts = [f">= {need}/{count}: {'met' if captured >= need else 'MISSED'}"]
    peers = _peers(name, medians)
    if peers:
        best = max(peers.values())
        verdict = (
            "met" if captured > best else f"tied at {best:g}" if captured == best else "MISSED"
        )
        texts.append(f"above {' and '.join(peers)}: {verdict}")
    return "; ".join(texts)


def report_captures(
    results: dict[str, list[Capture]], notes: list[str], settings: Settings
) -> None:
    count = settings.count
    print("## Capturing the command line of short-lived execs\n")
    print(
        f"Workload: `/bin/true MARK-<run>-<i>` x {count}, one every {settings.interval_us / 1e3:g}"
        f" ms, each reaped at once (execs.c); each listener alone, {settings.rounds} rounds, the"
        " order rotating; medians, min-max over the rounds.\n"
    )
    medians = {name: _median([r.captured for r in rounds]) for name, rounds in results.items()}
    print(
        "| listener | exec events with the command line captured | min-max | execs shown |"
        " CPU for the workload | targets |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for name, rounds in results.items():
        captured = [r.captured for r in rounds]
        shown = _median([r.shown for r in rounds])
        cpu_ms = 1e3 * statistics.median(r.cpu for r in rounds)
        print(
            f"| {name} | {medians[name]:g} / {count} ({100 * medians[name] / count:.1f}%) | "
            f"{min(captured)}-{max(captured)} | {shown:g} | {cpu_ms:.0f} ms | "
            f"{_targets(name, medians, count)} |"
        )
    for note in notes:
        print(f"\n- {note}")
    report_diagnosis(results, count)


def _pooled(found: list[Diagnosis], name: str) -> list[int]:
    return [value for one in found for value in getattr(one, name)]


def _summed(found: list[Diagnosis], name: str) -> int:
    return sum(getattr(one, name) for one in found)


def _diagnosis_row(name: str, rounds: list[Capture], count: int) -> str | None:
    found = [r.diagnosis for r in rounds if r.diagnosis is not None]
    if not found:
        return None
    delays = _pooled(found, "delays_ns")
    same, other = _pooled(found, "same_cpu_delays_ns"), _pooled(found, "other_cpu_delays_ns")
    missed = len(rounds) * count - sum(r.captured for r in rounds)
    unread = _summed(found, "missed_unread")
    return (
        f"| {name} | {missed} of {len(rounds) * count} | {_summed(found, 'missed_exited')} | "
        f"{_summed(found, 'missed_alive')}{f' (+{unread} unread)' if unread else ''} | "
        f"{_summed(found, 'missed_same_cpu')} | "
        f"{_percentile_us(delays, 0.5)} / {_percentile_us(delays, 0.99)} / "
        f"{_percentile_us(delays, 1.0)} us | "
        f"{_percentile_us(same, 0.5)} / {_percentile_us(same, 0.99)} us ({len(same)}) | "
        f"{_percentile_us(other, 0.5)} / {_percentile_us(other, 0.99)} us ({len(other)}) | "
        f"{_percentile_us(_pooled(found, 'missed_delays_ns'), 0.5)} us | "
        f"{_percentile_us(_pooled(found, 'lifetimes_ns'), 0.5)} us | "
        f"{_summed(found, 'missed_said_complete')} | "
        f"{_summed(found, 'flagged_incomplete')} / {_summed(found, 'table_incomplete')} | "
        f"{_summed(found, 'lost')} |"
    )


def report_diagnosis(results: dict[str, list[Capture]], count: int) -> None:
    print(
        "\nWhy the table missed, all rounds together. Times run from the kernel's exec timestamp"
        ' to the batch in the table\'s hands (just before it reads /proc); "same CPU": this'
        " process read on the CPU the exec happened on (number of execs in brackets). The exit"
        " event comes after the process's memory is gone, so a read just before it can miss"
        " too.\n"
    )
    print(
        "| listener | missed | read after its exit event | read before its exit event |"
        " missed, read on the exec's CPU | read after exec p50 / p99 / max | same CPU p50 / p99 |"
        " other CPU p50 / p99 | missed: read after exec p50 | lifetime after exec p50 |"
        " missed but complete=True | incomplete (records / table) | lost |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rounds in results.items():
        row = _diagnosis_row(name, rounds, count)
        if row is not None:
            print(row)


def run_storms(settings: Settings, probe: Probe, scratch: Path) -> dict[str, list[LiveRound]]:
    storm = build(scratch, "storm.c")
    table = [sys.executable, "-m", "benchmarks.table_consumer", "storm"]
    listeners = [
        Listener(TABLE, table, signal.SIGUSR1, parse_consumer),
        consumer_listener("pyprocconn recv_batch, linger 1 ms (no table)", "batch"),
    ]
    forkstat = shutil.which("forkstat")
    if forkstat is not None:
        shim = build(scratch, "unsubscribe.c", "-shared", "-fPIC", "-ldl")
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        command = [forkstat, "-e", "fork,exit"]
        listeners.append(
            Listener("forkstat (C)", command, signal.SIGINT, parse_forkstat, False, env)
        )
    results: dict[str, list[LiveRound]] = {listener.name: [] for listener in listeners}
    for _ in range(settings.storm_rounds):
        for listener in listeners:
            round_ = live(listener, storm, settings.workers, settings.storm_seconds, scratch)
            results[listener.name].append(round_)
            probe.after(listener.name)
    return results


def report_storms(results: dict[str, list[LiveRound]], settings: Settings) -> None:
    print("\n## Fork storm with the process table on\n")
    print(
        f"The main benchmark's storm ({settings.workers} workers x {settings.storm_seconds:g} s,"
        f" {settings.storm_rounds} rounds, listeners taken in turn), matched and timed the same"
        " way; the median round by CPU per event, and the loss over all rounds.\n"
    )
    print(
        "| consumer | storm forks/s | expected | received | lost | lost, all rounds |"
        " lost reported | CPU per event | vs forkstat | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    medians = {name: _median_round(rounds) for name, rounds in results.items()}
    forkstat = medians.get("forkstat (C)")
    for name, rounds in results.items():
        r = medians[name]
        all_lost = sum(one.lost for one in rounds)
        all_expected = sum(one.expected for one in rounds)
        reported = "-" if r.report.lost_reported is None else f"{r.report.lost_reported}"
        if r.report.overruns:
            reported += f" ({r.report.overruns} overruns)"
        ratio = "-"
        if forkstat is not None:
            factor = forkstat.cpu_per_event_us / r.cpu_per_event_us
            ratio = f"{factor:.1f}x less" if factor >= 1 else f"{1 / factor:.1f}x more"
        target = f"0 lost: {'met' if all_lost == 0 else 'MISSED'}" if name == TABLE else "-"
        print(
            f"| {name} | {r.expected / 2 / r.storm_seconds:,.0f} | {r.expected:,} | "
            f"{r.received:,} ({100 * r.received / max(1, r.expected):.2f}%) | {r.lost:,} | "
            f"{all_lost:,} of {all_expected:,} | {reported} | {r.cpu_per_event_us:.2f} us | "
            f"{ratio} | {target} |"
        )


def settings_for(
    quick: bool, rounds: int | None = None, storm_seconds: float | None = None
) -> Settings:
    return Settings(
        rounds=rounds or (1 if quick else 5),
        count=COUNT,
        interval_us=INTERVAL_US,
        storm_rounds=rounds or (1 if quick else 5),
        storm_seconds=storm_seconds or (0.5 if quick else 3.0),
        workers=os.cpu_count() or 2,
    )


def run(settings: Settings) -> bool:
    """Both parts, their tables printed; whether a listener registration was left behind."""
    probe = Probe()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        captures, notes = run_captures(settings, probe, scratch)
        report_captures(captures, notes, settings)
        if settings.storm_rounds:
            report_storms(run_storms(settings, probe, scratch), settings)
    return probe.leaked


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capture", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round of each part")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of each part")
    parser.add_argument("--seconds", type=float, default=None, help="storm length per round")
    parser.add_argument("--no-storm", action="store_true", help="the exec capture part only")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in python -m benchmarks
    settings = settings_for(args.quick, args.rounds, args.seconds)
    if args.no_storm:
        settings.storm_rounds = 0
    print(f"# pyprocconn capture benchmark{' (quick)' if args.quick else ''}\n")
    print(
        f"Machine: {os.cpu_count()} cores, Linux {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}.\n"
    )
    if os.geteuid() != 0:
        print("(skipped: needs root)")
        return 0
    before = check_listeners("before the run", 0.5)
    leaked = run(settings)
    state = check_listeners("after the run", 0.5)
    if state == "none":
        print(
            "\nListeners after the run: none registered (a socket in the group that never sent "
            "LISTEN got nothing within 0.5 s of /bin/true)."
        )
    # A registration that was there before the run is not this run's: warned about, not failed.
    return 1 if leaked or (state == "leaked" and before == "none") else 0


if __name__ == "__main__":
    sys.exit(main())
