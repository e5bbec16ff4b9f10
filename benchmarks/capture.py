"""``python -m benchmarks.capture``: the process table and the command against forkstat and
extrace, in one run.

1. **argv of short-lived execs**, two workloads, both from ``execs.c`` (each child runs
   ``/bin/true MARK-<run>-<i>`` and is reaped at once; /bin/true lives under a millisecond after
   its exec, and an exited process has no command line, exe or cwd, so a listener must read
   ``/proc/<pid>`` within that time):

   - **paced**: one spawner, COUNT (300) execs, one every INTERVAL (2 ms);
   - **exec storm**: SPAWNERS (2) spawners at once, SPAWN_COUNT (1000) execs each, no pause;
     each spawner has its own RUN, so every child's mark is its own.

   Each listener runs alone under the workload, in turn, for several rounds (the order rotates):
   the command ``pyprocconn -e exec`` (its default: nice -20 when permitted, a 0.1 ms slice),
   ``--json -e exec``,
   ``--no-priority -e exec`` (what an unprivileged user gets) and ``-r -e exec`` (SCHED_FIFO);
   ``ProcessTable(nice=-20, time_slice=SHORTEST_SLICE)`` (the command's default priority),
   ``ProcessTable()`` and ``ProcessTable(realtime=True)`` in
   ``benchmarks.table_consumer``; ``forkstat -e exec``, ``forkstat -r -e exec`` and ``extrace``.
   An exec counts as captured when the listener showed that child's pid with its own
   ``MARK-<run>-<i>`` among the words of its command line (the spawner's argv holds no "MARK-",
   so a parent's command line shown for a child never matches). The command's text line shows
   argv shell-quoted, which leaves these marks as they are: forkstat's line shape. Where a
   listener says exe and cwd (the command's JSON ``process.exe``/``process.cwd``, the table
   consumer), they count as right when they are ``/bin/true`` resolved (``/usr/bin/true``) and
   the spawners' working directory (a scratch directory no listener runs in).

   Targets (issue #16), on the **worst** round, for ``pyprocconn -e exec`` and
   ``pyprocconn --json -e exec``: at least 99.5% of the paced workload and 99% of the exec storm,
   and above forkstat and extrace (their worst rounds; ``-r`` rows against ``forkstat -r``).
   Every pyprocconn row is checked the same way; the others' verdicts are for choosing options.
   For the table rows it also says why a capture was missed: the consumer notes when each batch
   was in hand (before the table reads /proc) and on which CPU, against the kernel's exec and
   exit timestamps (the same clock, CLOCK_MONOTONIC) and the exec's CPU.
2. **fork storm with the table on.** The main benchmark's storm (``storm.c``, its matching and its
   CPU window, ``benchmarks.live.live``) under ``ProcessTable()``, the plain ``recv_batch``
   consumer and forkstat.

Every listener writes to a file (not a terminal or pipe: the command's 50 ms flush does not
apply) and its CPU is counted from just before the workload to its queue drained. Listeners are
stopped with a signal they honour and unsubscribe: forkstat through the ``unsubscribe.c`` shim
(SIGINT), extrace, which handles no signal and never sends IGNORE (checked with strace: killed by
SIGINT with its listener still registered), through ``unsubscribe_sigterm.c`` (SIGTERM: IGNORE,
then exit 0). The listener probe runs as in the main benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
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

from benchmarks.live import (
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

COUNT = 300  # paced: execs
INTERVAL_US = 2000  # paced: one exec every 2 ms
SPAWNERS = 2  # exec storm: spawners at once
SPAWN_COUNT = 1000  # exec storm: execs per spawner, no pause
PACED, EXEC_STORM = "paced", "exec storm"
TARGETS = {PACED: 0.995, EXEC_STORM: 0.99}  # of the execs, on the worst round (issue #16)
TABLE_NICE = "pyprocconn ProcessTable(nice=-20, time_slice=SHORTEST_SLICE)"
TABLE = "pyprocconn ProcessTable()"
TABLE_RT = "pyprocconn ProcessTable(realtime=True)"
COMMAND = "pyprocconn -e exec"
COMMAND_JSON = "pyprocconn --json -e exec"
COMMAND_NO_PRIORITY = "pyprocconn --no-priority -e exec"
COMMAND_RT = "pyprocconn -r -e exec"
FORKSTAT = "forkstat -e exec (C)"
FORKSTAT_RT = "forkstat -r -e exec (C)"
EXTRACE = "extrace (C)"
ISSUE_ROWS = (COMMAND, COMMAND_JSON)  # the rows issue #16 sets its targets on
REALTIME_ROWS = (TABLE_RT, COMMAND_RT)  # held against forkstat -r instead of forkstat


@dataclass(frozen=True)
class Shape:
    """One capture workload: SPAWNERS execs.c at once, COUNT execs each, INTERVAL apart."""

    name: str
    spawners: int
    count: int
    interval_us: int

    @property
    def total(self) -> int:
        return self.spawners * self.count

    def describe(self) -> str:
        each = f"x {self.count}, " + (
            f"one every {self.interval_us / 1e3:g} ms" if self.interval_us else "no pause"
        )
        who = "one spawner" if self.spawners == 1 else f"{self.spawners} spawners at once"
        return f"`/bin/true MARK-<run>-<i>` {each}, each reaped at once, {who} (execs.c)"


@dataclass
class Settings:
    rounds: int
    count: int  # paced
    interval_us: int  # paced
    spawners: int  # exec storm
    spawn_count: int  # exec storm, per spawner
    storm_rounds: int  # fork storm with the table on
    storm_seconds: float
    workers: int

    def shapes(self) -> list[Shape]:
        return [
            Shape(PACED, 1, self.count, self.interval_us),
            Shape(EXEC_STORM, self.spawners, self.spawn_count, 0),
        ]


@dataclass
class Workload:
    """What the spawners did in one run: every child's pid and its own mark, in order."""

    pids: list[int]
    marks: list[str]
    cwd: str  # where the children ran
    exe: str  # /bin/true resolved
    seconds: float

    def index(self) -> dict[int, int]:
        return {pid: i for i, pid in enumerate(self.pids)}


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
    table_skipped: int = 0  # ProcessTable.skipped (over capture_limit)
    lost: int = 0  # conn.stats.lost


@dataclass
class Capture:
    """One listener, one round."""

    shown: int  # workload execs the listener reported at all
    captured: int  # ... with their own MARK in the command line
    exe: int | None = None  # ... with exe right (None: the listener does not say)
    cwd: int | None = None  # ... with cwd right
    cpu: float = 0.0  # seconds, from just before the workload to the queue drained
    priority: str = "?"  # how the listener ran, read from outside once it was subscribed
    diagnosis: Diagnosis | None = None


@dataclass
class Tool:
    """How to run one listener for the capture workloads."""

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
    index = workload.index()
    shown: set[int] = set()
    captured: set[int] = set()
    for pid, words in lines:
        i = index.get(pid)
        if i is not None:
            shown.add(i)
            if workload.marks[i] in words:
                captured.add(i)
    return len(shown), len(captured)


def _paths(
    rows: Iterable[tuple[int, str | None, str | None]], workload: Workload
) -> tuple[int, int]:
    """(exe, cwd): workload children shown with the right exe, and with the right cwd."""
    index = workload.index()
    exe: set[int] = set()
    cwd: set[int] = set()
    for pid, shown_exe, shown_cwd in rows:
        i = index.get(pid)
        if i is not None:
            if shown_exe == workload.exe:
                exe.add(i)
            if shown_cwd == workload.cwd:
                cwd.add(i)
    return len(exe), len(cwd)


_FORKSTAT_EXEC = re.compile(r"^\S+ exec +(\d+) +(.*)$", re.MULTILINE)
_EXTRACE_EXEC = re.compile(r"^ *(\d+)\+? (.*)$", re.MULTILINE)


def parse_forkstat_exec(out: str, workload: Workload) -> Capture:
    """``forkstat -e exec`` and the command's text: "TIME exec PID COMMAND LINE"."""
    lines = ((int(pid), text.split()) for pid, text in _FORKSTAT_EXEC.findall(out))
    return Capture(*_matches(lines, workload))


def parse_extrace(out: str, workload: Workload) -> Capture:
    """``extrace``: "PID COMMAND LINE", indented by depth; a process already reaped when extrace
    looks at it is not printed at all (a "process vanished" line on stderr)."""
    lines = ((int(pid), text.split()) for pid, text in _EXTRACE_EXEC.findall(out))
    return Capture(*_matches(lines, workload))


def parse_command_json(out: str, workload: Workload) -> Capture:
    """``pyprocconn --json -e exec``: one JSON object per event, ``process.argv``, ``.exe`` and
    ``.cwd`` as the table read them at the exec."""
    rows: list[tuple[int, list[str], str | None, str | None]] = []
    for line in out.splitlines():
        record = json.loads(line)
        if record.get("event") == "exec":
            process = record.get("process") or {}
            argv = process.get("argv") or []
            rows.append((record["process_tgid"], argv, process.get("exe"), process.get("cwd")))
    shown, captured = _matches(((pid, argv) for pid, argv, _, _ in rows), workload)
    exe, cwd = _paths(((pid, exe, cwd) for pid, _, exe, cwd in rows), workload)
    return Capture(shown, captured, exe, cwd)


def _diagnose(rows: list[Any], summary: dict[str, Any], workload: Workload) -> Diagnosis:
    """rows: the consumer's exec lines, [pid, exec_ns, read_ns, argv, complete, exec_cpu,
    read_cpu, exe, cwd]."""
    exits = {int(pid): ns for pid, ns in summary["exits"].items()}  # 0: no exit seen
    index = workload.index()
    found = Diagnosis(
        table_incomplete=summary["incomplete"],
        table_skipped=summary["skipped"],
        lost=summary["lost"],
    )
    for pid, exec_ns, read_ns, argv, complete, exec_cpu, read_cpu, *_ in rows:
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
        if workload.marks[index[pid]] in (argv or []):
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
    shown, captured = _matches(((row[0], row[3] or []) for row in rows), workload)
    exe, cwd = _paths(((row[0], row[7], row[8]) for row in rows), workload)
    return Capture(shown, captured, exe, cwd, diagnosis=_diagnose(rows, summary, workload))


def make_tools(scratch: Path) -> tuple[list[Tool], list[str]]:
    """The listeners to compare, and notes on the ones not installed."""
    table = [sys.executable, "-m", "benchmarks.table_consumer", "capture"]
    tools = [
        Tool(TABLE_NICE, [*table, "--nice", "-20", "--slice"], signal.SIGUSR1, parse_table),
        Tool(TABLE, table, signal.SIGUSR1, parse_table),
        Tool(TABLE_RT, [*table, "--realtime"], signal.SIGUSR1, parse_table),
    ]
    command = [sys.executable, "-m", "pyprocconn"]
    for name, parse in (
        (COMMAND, parse_forkstat_exec),
        (COMMAND_JSON, parse_command_json),
        (COMMAND_NO_PRIORITY, parse_forkstat_exec),
        (COMMAND_RT, parse_forkstat_exec),
    ):
        flags = name.split()[1:]
        tools.append(Tool(name, [*command, *flags], signal.SIGINT, parse, False))
    notes = []
    forkstat, extrace = shutil.which("forkstat"), shutil.which("extrace")
    if forkstat is None:
        notes.append("forkstat: not installed, skipped")
    else:
        shim = build(scratch, "unsubscribe.c", "-shared", "-fPIC", "-ldl")
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        for name in (FORKSTAT, FORKSTAT_RT):
            flags = name.split()[1:-1]
            command = [forkstat, *flags]
            tools.append(Tool(name, command, signal.SIGINT, parse_forkstat_exec, False, env))
    if extrace is None:
        notes.append("extrace: not installed, skipped")
    else:
        shim = build(scratch, "unsubscribe_sigterm.c", "-shared", "-fPIC", "-ldl")
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        tools.append(Tool(EXTRACE, [extrace], signal.SIGTERM, parse_extrace, False, env))
    return tools, notes


def run_workload(execs: Path, run: str, shape: Shape, cwd: Path) -> Workload:
    """The shape's spawners started together (each with its own RUN: run, or runa, runb...),
    in ``cwd``; waits for all of them."""
    runs = [run] if shape.spawners == 1 else [f"{run}{chr(97 + k)}" for k in range(shape.spawners)]
    spawners = [
        subprocess.Popen(
            [str(execs), one, str(shape.count), str(shape.interval_us)],
            stdout=subprocess.PIPE,
            cwd=cwd,
        )
        for one in runs
    ]
    results = []
    for spawner in spawners:
        out = spawner.communicate()[0]
        if spawner.returncode != 0:
            raise RuntimeError(f"execs.c failed with {spawner.returncode}")
        results.append(json.loads(out))
    pids = [pid for result in results for pid in result["pids"]]
    marks = [f"MARK-{result['run']}-{i}" for result in results for i in range(len(result["pids"]))]
    seconds = max(result["seconds"] for result in results)
    return Workload(pids, marks, str(cwd.resolve()), os.path.realpath("/bin/true"), seconds)


def _priority_of(pid: int) -> str:
    """How a process is scheduled: "SCHED_FIFO" or "nice N, slice S ms" (the kernel's own
    account, /proc/PID/sched, where it keeps a slice per task)."""
    try:
        if os.sched_getscheduler(pid) == os.SCHED_FIFO:
            return "SCHED_FIFO"
        said = f"nice {os.getpriority(os.PRIO_PROCESS, pid)}"
        with open(f"/proc/{pid}/sched") as sched:
            lines = [line.split(":") for line in sched if line.startswith("se.slice")]
    except OSError:
        return "?"
    return f"{said}, slice {int(lines[0][1]) / 1e6:g} ms" if lines else said


def capture_once(tool: Tool, execs: Path, run: str, shape: Shape, scratch: Path) -> Capture:
    """One listener alone under one workload: subscribe, run it, drain, stop, count."""
    output = Output()
    listener = Listener(
        tool.name, tool.command, tool.stop_signal, output.keep, tool.says_ready, tool.env
    )
    consumer = Consumer(listener, scratch)
    try:
        consumer.wait_ready()
        priority = _priority_of(consumer.process.pid)
        cpu_before = consumer.cpu()
        workload = run_workload(execs, run, shape, scratch / "workload")
        cpu = consumer.drained() - cpu_before  # warns when other programs' events count too
    finally:
        consumer.stop()
    result = tool.parse(output.text, workload)
    result.cpu, result.priority = cpu, priority
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


Results = dict[str, dict[str, list[Capture]]]  # workload -> listener -> its rounds


def run_captures(settings: Settings, probe: Probe, scratch: Path) -> tuple[Results, list[str]]:
    """Every listener's rounds under each workload (the order rotates each round), and notes
    on skipped ones."""
    execs = build(scratch, "execs.c")
    (scratch / "workload").mkdir()
    tools, notes = make_tools(scratch)
    shapes = settings.shapes()
    results: Results = {shape.name: {tool.name: [] for tool in tools} for shape in shapes}
    for round_number in range(settings.rounds):
        shift = round_number % len(tools)
        for shape_number, shape in enumerate(shapes):
            for position, tool in enumerate(tools[shift:] + tools[:shift]):
                run = f"{os.getpid()}r{round_number}w{shape_number}t{position}"
                capture = capture_once(tool, execs, run, shape, scratch)
                results[shape.name][tool.name].append(capture)
                probe.after(tool.name)
    return results, notes


def _median(values: Iterable[float]) -> float:
    ordered = list(values)
    return statistics.median(ordered) if ordered else 0.0


def _percentile_us(values: list[int], fraction: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e3:.0f}"


def _peers(name: str) -> tuple[str, ...]:
    """The rows a pyprocconn row is held against: forkstat run the same way (realtime or not)
    and extrace."""
    return (FORKSTAT_RT if name in REALTIME_ROWS else FORKSTAT, EXTRACE)


def _targets(name: str, worst: dict[str, int], shape: Shape) -> str:
    """Issue #16's checks on the worst round: the fraction, and above the peers' worst."""
    if not name.startswith("pyprocconn"):
        return "-"
    fraction = TARGETS[shape.name]
    need = math.ceil(fraction * shape.total - 1e-9)
    texts = [f">= {100 * fraction:g}% ({need}): {'met' if worst[name] >= need else 'MISSED'}"]
    peers = {peer: worst[peer] for peer in _peers(name) if peer in worst}
    if peers:
        best = max(peers.values())
        verdict = (
            "met" if worst[name] > best else f"tied at {best}" if worst[name] == best else "MISSED"
        )
        texts.append(f"above {' and '.join(peers)}: {verdict}")
    text = "; ".join(texts)
    return f"**issue #16**: {text}" if name in ISSUE_ROWS else text


def _paths_text(rounds: list[Capture]) -> str:
    """exe and cwd right: median (worst round)."""
    if any(r.exe is None or r.cwd is None for r in rounds):
        return "-"
    exe = [r.exe or 0 for r in rounds]
    cwd = [r.cwd or 0 for r in rounds]
    return f"{_median(exe):g} ({min(exe)}) / {_median(cwd):g} ({min(cwd)})"


def report_captures(results: Results, notes: list[str], settings: Settings) -> None:
    for shape in settings.shapes():
        report_shape(shape, results[shape.name], settings.rounds)
    if notes:
        print()
    for note in notes:
        print(f"- {note}")


def report_shape(shape: Shape, results: dict[str, list[Capture]], rounds: int) -> None:
    total = shape.total
    print(f"## Capturing the command line of short-lived execs: {shape.name}\n")
    print(
        f"Workload: {shape.describe()}; {total} execs. Each listener alone, {rounds} rounds, the"
        " order rotating: the median round, the worst and the best; targets judged on the worst"
        " round (peers: their worst round too). exe / cwd: execs with exe"
        " `/usr/bin/true` and cwd the spawners', median (worst round). CPU: the listener's, from"
        " just before the workload to its queue drained, median round.\n"
    )
    worst = {name: min(r.captured for r in rounds_) for name, rounds_ in results.items()}
    print(
        "| listener | runs at | captured (median) | worst | best | execs shown | exe / cwd right |"
        " CPU per round | targets on the worst round |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name, rounds_ in results.items():
        captured = [r.captured for r in rounds_]
        median = _median(captured)
        cpu = _median(r.cpu for r in rounds_)
        print(
            f"| {name} | {rounds_[0].priority} | {median:g} / {total} ({100 * median / total:.1f}%)"
            f" | {min(captured)} ({100 * min(captured) / total:.1f}%) | {max(captured)} | "
            f"{_median(r.shown for r in rounds_):g} | {_paths_text(rounds_)} | {cpu:.3f} s"
            " | "
            f"{_targets(name, worst, shape)} |"
        )
    report_diagnosis(results, total)
    print()


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
    skipped = _summed(found, "table_skipped")
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
        f"{_summed(found, 'flagged_incomplete')} / {_summed(found, 'table_incomplete')}"
        f"{f' ({skipped} skipped)' if skipped else ''} | "
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
    """quick (CI): two rounds of small workloads, one round of a short fork storm."""
    return Settings(
        rounds=rounds or (2 if quick else 5),
        count=50 if quick else COUNT,
        interval_us=INTERVAL_US,
        spawners=SPAWNERS,
        spawn_count=100 if quick else SPAWN_COUNT,
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
    parser.add_argument("--quick", action="store_true", help="a short run (as CI's)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of each part")
    parser.add_argument("--seconds", type=float, default=None, help="storm length per round")
    parser.add_argument(
        "--no-storm", action="store_true", help="the exec capture workloads only (no fork storm)"
    )
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
