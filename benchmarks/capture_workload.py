"""The exec workloads of :mod:`benchmarks.capture` and the listeners it runs under them: the
workload shapes and the run's settings, the listeners compared (:class:`Tool`), how each one's
output is counted (``parse_*``), and one listener alone under one workload
(:func:`capture_once`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import Consumer, Listener, Report, build

PACED, EXEC_STORM = "paced", "exec storm"
TABLE_NICE = "pyprocconn ProcessTable(nice=-20, time_slice=SHORTEST_SLICE)"
TABLE = "pyprocconn ProcessTable()"
TABLE_RT = "pyprocconn ProcessTable(realtime=True)"
COMMAND = "pyprocconn -e exec"
COMMAND_JSON = "pyprocconn --json -e exec"
COMMAND_NO_PRIORITY = "pyprocconn --no-priority -e exec"
COMMAND_ONE_READER = "pyprocconn --no-exec-reader -e exec"
COMMAND_JSON_ONE_READER = "pyprocconn --json --no-exec-reader -e exec"
COMMAND_RT = "pyprocconn -r -e exec"
# A bounded real-time reservation (SCHED_DEADLINE, 5 ms of CPU every 10 ms), set from outside:
# measured as the alternative to -r that cannot starve the machine (see the README).
RESERVATION = ["-d", "-T", "5000000", "-P", "10000000", "0"]  # chrt's: runtime, period in ns
COMMAND_DEADLINE = f"chrt {' '.join(RESERVATION)} pyprocconn -e exec"
FORKSTAT = "forkstat -e exec (C)"
FORKSTAT_RT = "forkstat -r -e exec (C)"
EXTRACE = "extrace (C)"


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
        (COMMAND_ONE_READER, parse_forkstat_exec),
        (COMMAND_JSON_ONE_READER, parse_command_json),
        (COMMAND_NO_PRIORITY, parse_forkstat_exec),
        (COMMAND_RT, parse_forkstat_exec),
    ):
        flags = name.split()[1:]
        tools.append(Tool(name, [*command, *flags], signal.SIGINT, parse, False))
    notes = []
    chrt = shutil.which("chrt") or ""
    probe = [chrt, *RESERVATION, "true"]  # refused where a cpuset or no privilege forbids it
    if not chrt or subprocess.run(probe, check=False, capture_output=True).returncode:
        notes.append("chrt -d: not installed or refused here, SCHED_DEADLINE skipped")
    else:
        run_as = [chrt, *RESERVATION, *command, "-e", "exec"]
        tools.append(Tool(COMMAND_DEADLINE, run_as, signal.SIGINT, parse_forkstat_exec, False))
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
    """How a process is scheduled: "SCHED_FIFO", "nice N, slice S ms" (the kernel's own
    account, /proc/PID/sched, where it keeps a slice per task) or, for another policy
    (SCHED_DEADLINE, SCHED_RR), the name ``chrt -p`` gives it."""
    try:
        policy = os.sched_getscheduler(pid)
        if policy == os.SCHED_FIFO:
            return "SCHED_FIFO"
        if policy not in (os.SCHED_OTHER, os.SCHED_BATCH, os.SCHED_IDLE):
            english = {**os.environ, "LC_ALL": "C"}
            told = subprocess.run(
                ["chrt", "-p", str(pid)], check=False, capture_output=True, env=english
            )
            name = told.stdout.decode().partition("policy: ")[2].partition("\n")[0]
            return name or f"policy {policy}"
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


Results = dict[str, dict[str, list[Capture]]]  # workload -> listener -> its rounds
