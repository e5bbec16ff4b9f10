"""The ``pyprocconn`` command as a subprocess against the real kernel."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.check import in_the_group
from tests import triggers
from tests.conftest import owned

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")
COMMAND = [sys.executable, "-m", "pyprocconn"]
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(pc.__file__).parent / "command" / "events.schema.json").read_text())
)


class Cli:
    """The command running in the background, its output lines collected as they come."""

    def __init__(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        self.args = args
        self.process = owned(
            subprocess.Popen(
                [*prefix, *COMMAND, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                # Lossless: any process on the machine may have bytes that are not UTF-8 in its
                # command line, which the command shows (a strict decoder killed the reader).
                errors="surrogateescape",
            )
        )
        self.lines: list[str] = []  # complete lines only
        self.unfinished = ""
        self._errors: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        # Read as it comes too: -S lists the busiest programs, whose paths other processes may
        # make longer than a pipe holds (read only at the end, the command blocked writing it).
        errors = self.process.stderr
        self._error_reader = threading.Thread(
            target=lambda: self._errors.append(errors.read()), daemon=True
        )
        self._error_reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            if line.endswith("\n"):
                self.lines.append(line[:-1])
            else:  # the output ended mid-line: the command was stopped while writing it
                self.unfinished = line

    def wait_for(self, found: Callable[[list[str]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found(list(self.lines)):
                return True
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                return found(list(self.lines))
            time.sleep(0.02)
        return False

    def trigger_until_seen(
        self, trigger: Callable[[], int], seen: Callable[[list[str], int], bool]
    ) -> int:
        """Run ``trigger`` until its events show up (the command subscribes asynchronously)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pid = trigger()
            if self.wait_for(lambda lines, pid=pid: seen(lines, pid), timeout=1.0):  # type: ignore[misc]
                return pid
        pytest.fail(f"events never showed up; output: {self.lines[-20:]}")

    def finish(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            where = _where(self.process.pid)  # for the report: what it was doing
            self.process.send_signal(signal.SIGTERM)  # it unsubscribes on SIGTERM too
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()  # leaks a listener registration: last resort
                self.process.wait()
            pytest.fail(f"the command did not end within {timeout} s of signal {sig}: {where}")
        self._reader.join(timeout=5)
        self._error_reader.join(timeout=5)
        if "--json" in self.args and "--check" not in self.args and self.args[:1] != ("wait",):
            for line in self.lines:  # every line the command writes in the tests
                problem = jsonschema.exceptions.best_match(SCHEMA.iter_errors(json.loads(line)))
                assert problem is None, f"{line}: {problem.message}"
        return code, "".join(self._errors)


def _where(pid: int) -> dict[str, str]:
    """Each thread's kernel wait channel and system call, from /proc."""
    where = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{task}"
        with open(f"{base}/wchan") as wchan, open(f"{base}/syscall") as syscall:
            where[task] = f"{wchan.read()} / {syscall.read().split()[0]}"
    return where


def _json(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def _events(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON lines of kernel events (they carry ``what``), without the notices: ``lost``,
    ``resync`` and ``vanished`` lines, which other programs' activity may cause at any time
    (an overrun) and which have no pid fields."""
    return [r for r in _json(lines) if "what" in r]


def _json_for(lines: list[str], pid: int) -> list[dict[str, object]]:
    return [r for r in _json(lines) if pid in (r.get("process_pid"), r.get("child_pid"))]


# A text line about an event: TIME, EVENT, PID, then two spaces and the details.
_EVENT_LINE = re.compile(r"(\d\d:\d\d:\d\d\.\d{6}) (\S+) +(\d+)(?:  (.*))?")


def _lines_of(lines: list[str], pid: int) -> list[tuple[str, str, str]]:
    """(time, event, details) of each text line about ``pid``. Every other line is skipped:
    another process's, a notice (LOST, RESYNC), and what follows a newline in a command line
    or a name (any process on the machine may put one there)."""
    found = []
    for line in lines:
        match = _EVENT_LINE.fullmatch(line)
        if match and int(match[3]) == pid:
            found.append((match[1], match[2], match[4] or ""))
    return found


def test_human_columns_show_fork_exec_exit() -> None:
    cli = Cli("--raw")
    pid = cli.trigger_until_seen(
        lambda: triggers.exit_with(3), lambda lines, pid: any(f" {pid}  exit 3" in x for x in lines)
    )
    code, err = cli.finish()
    assert code == 0 and "Traceback" not in err
    assert cli.lines[0].split() == ["TIME", "EVENT", "PID", "DETAILS"]
    mine = _lines_of(cli.lines, pid)
    assert [kind for _, kind, _ in mine] == ["fork", "exec", "exit"]
    when, _, details = mine[0]
    assert details == f"parent {os.getpid()}"
    datetime.datetime.strptime(when, "%H:%M:%S.%f")  # local wall-clock time


def test_json_lines_carry_exactly_the_event_fields() -> None:
    cli = Cli("--json", "--raw")
    pid = cli.trigger_until_seen(
        triggers.killed_by_sigkill,
        lambda lines, pid: any(r["event"] == "exit" for r in _json_for(lines, pid)),
    )
    code, _ = cli.finish()
    assert code == 0
    records = {r["event"]: r for r in _json_for(cli.lines, pid)}
    assert set(records) == {"fork", "exec", "exit"}
    exit_ = records["exit"]
    assert set(exit_) == {
        "event",
        "time",
        "what",
        "cpu",
        "timestamp_ns",
        "process_pid",
        "process_tgid",
        "exit_code",
        "exit_signal",
        "parent_pid",
        "parent_tgid",
        "exit_status",
        "term_signal",
        "core_dumped",
    }
    assert exit_["exit_code"] == signal.SIGKILL and exit_["parent_pid"] == os.getpid()
    assert isinstance(exit_["time"], str)
    stamp = datetime.datetime.fromisoformat(exit_["time"])
    assert abs(stamp.timestamp() - time.time()) < 60
    assert set(records["fork"]) >= {"parent_pid", "parent_tgid", "child_pid", "child_tgid"}


def test_event_filter_and_nonzero_exit() -> None:
    cli = Cli("--json", "-e", "exec,exit", "--nonzero-exit")
    nonzero = cli.trigger_until_seen(
        lambda: (triggers.exit_with(0), triggers.exit_with(4))[1],
        lambda lines, pid: any(r["event"] == "exit" for r in _json_for(lines, pid)),
    )
    code, _ = cli.finish()
    assert code == 0
    records = _events(cli.lines)
    assert {r["event"] for r in records} <= {"exec", "exit"}
    assert all(r["exit_code"] != 0 for r in records if r["event"] == "exit")
    assert [r["exit_code"] for r in _json_for(cli.lines, nonzero) if r["event"] == "exit"] == [
        0x400
    ]


def test_count_ends_the_stream() -> None:
    # Ptrace events of this process's descendants: only the ones made here (another program
    # may ptrace meanwhile).
    cli = Cli("--json", "-e", "ptrace", "-n", "2", "-p", str(os.getpid()))
    time.sleep(1.0)
    assert cli.process.poll() is None  # it waits for its two events...
    deadline = time.monotonic() + 15
    while cli.process.poll() is None and time.monotonic() < deadline:
        triggers.ptrace_seize_and_detach()  # an attach and a detach
        cli.wait_for(lambda lines: False, timeout=0.5)
    code, _ = cli.finish()
    assert code == 0 and [r["event"] for r in _events(cli.lines)] == ["ptrace", "ptrace"]


def test_duration_ends_the_stream_with_stats() -> None:
    started = time.monotonic()
    # Ptrace events only, from the kernel's filter: no loss whatever other programs do (with
    # every event, the count lost is the machine's business).
    cli = Cli("-D", "1", "-S", "--raw", "-e", "ptrace")
    code, err = cli.finish(sig=0, timeout=20)  # signal 0: just wait for it to end by itself
    assert code == 0 and time.monotonic() - started < 15
    assert "total" in err and "lost: 0" in err and "events/s" in err


def test_pid_keeps_only_that_process_and_its_descendants() -> None:
    root = subprocess.Popen(
        ["/bin/sh", "-c", "read go; /bin/sh -c 'exit 6'; exit 5"], stdin=subprocess.PIPE, text=True
    )
    cli = Cli("--json", "--pid", str(root.pid))
    try:
        # While it waits, unrelated processes come and go; none may show up.
        deadline = time.monotonic() + 15
        while not cli.lines and time.monotonic() < deadline:
            assert root.stdin is not None
            triggers.exit_with(0)
            time.sleep(0.3)
            if time.monotonic() > deadline - 12:
                break
        assert root.stdin is not None
        root.stdin.write("go\n")
        root.stdin.flush()
        root.wait(timeout=10)
        assert cli.wait_for(
            lambda lines: any(
                r["event"] == "exit" and r["process_pid"] == root.pid for r in _json(lines)
            )
        )
    finally:
        root.kill()
        code, _ = cli.finish()
    records = _events(cli.lines)
    grandchild = [r for r in records if r["event"] == "exit" and r["exit_code"] == 0x600]
    assert grandchild, records  # the descendant's exit is reported
    related = {root.pid} | {r["child_tgid"] for r in records if r["event"] == "fork"}
    assert all(r.get("process_tgid", r.get("parent_tgid")) in related for r in records)
    assert code == 0


def test_closed_pipe_ends_quietly() -> None:
    process = subprocess.Popen(COMMAND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("TIME")  # subscribed; now the reader goes away
    process.stdout.close()
    deadline = time.monotonic() + 15
    while process.poll() is None and time.monotonic() < deadline:
        triggers.exit_with(0)
    code = process.wait(timeout=10)
    assert code == 0 and process.stderr.read() == ""


def test_usage_error_exits_2() -> None:
    done = subprocess.run([*COMMAND, "-e", "bogus"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown event type 'bogus'" in done.stderr


def test_unavailable_connector_exits_1_with_one_sentence() -> None:
    # In a new user namespace the kernel ignores the subscription: no ack ever comes.
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", *COMMAND, "-D", "5"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("pyprocconn: ") and len(done.stderr.strip().splitlines()) == 1
    assert "namespace" in done.stderr and "Traceback" not in done.stderr


def _subscribed(pid: int, timeout: float = 15.0) -> None:
    """Wait until process ``pid`` has a socket in the process events group, then a moment for
    its LISTEN."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if in_the_group(pid):
            time.sleep(0.3)
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} never subscribed")


def _gated(script: str) -> subprocess.Popen[str]:
    """A shell that runs ``script`` once told to (a line on its stdin)."""
    return subprocess.Popen(
        ["/bin/sh", "-c", f"read go; {script}"], stdin=subprocess.PIPE, text=True
    )


def _go(process: subprocess.Popen[str]) -> None:
    _say(process, "go")


def _say(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def test_pid_with_an_event_list_still_follows_the_tree() -> None:
    root = _gated("for i in 1 2 3; do /bin/sh -c 'exit 3'; done; exit 0")
    cli = Cli("--json", "-e", "exit", "-p", str(root.pid), "--until-exit")
    _subscribed(cli.process.pid)
    _go(root)
    root.wait(timeout=10)
    code, err = cli.finish(sig=0, timeout=20)  # --until-exit: it ends by itself
    records = _events(cli.lines)
    assert code == 0, err
    assert {r["event"] for r in records} == {"exit"}
    assert [r["exit_status"] for r in records] == [3, 3, 3, 0], records
    assert records[-1]["process_pid"] == root.pid


def test_until_exit_waits_for_children_the_process_had_before() -> None:
    root = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 30 & echo $!; read go; exit 0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert root.stdout is not None
    child = int(root.stdout.readline())  # running before the command starts
    cli = Cli("--json", "-e", "exit", "-p", str(root.pid), "--until-exit")

    def exits(lines: list[str]) -> list[object]:
        return [r["process_tgid"] for r in _events(lines) if r["event"] == "exit"]

    try:
        _subscribed(cli.process.pid)
        _go(root)
        root.wait(timeout=10)
        assert cli.wait_for(lambda lines: exits(lines) == [root.pid]), cli.lines
        assert cli.process.poll() is None  # the root has ended, its older child has not
    finally:
        os.kill(child, signal.SIGTERM)  # (not a child of ours: no zombie left behind)
        root.stdout.close()
    code, err = cli.finish(sig=0, timeout=20)  # ends by itself, once the child has too
    assert code == 0, err
    assert exits(cli.lines) == [root.pid, child]


def test_tree_indents_from_the_process_followed() -> None:
    # Each step waits for a line from the test, sent once the step before is shown: every
    # process lives until then, so neither how long the command takes to start (its snapshot of
    # /proc) nor how soon it reads /proc after an exec matters (a busy machine delays both).
    root = _gated("/bin/sh -c 'read step; /bin/true; exit 0'; read done; exit 0")

    def indents(lines: list[str]) -> list[int]:
        # TIME EVENT PID, two spaces, then the details indented two spaces per generation.
        return [
            len(found[1]) for line in lines if (found := re.match(r"^\S+ exec +\d+  ( *)", line))
        ]

    # While a listener of ours is subscribed, the kernel sends events to every socket in the
    # group: the command gets them from the moment its socket joins, whenever its LISTEN goes.
    with pc.ProcConnector(events=pc.EventType.PTRACE, rcvbuf=4096):
        cli = Cli("-e", "exec", "-p", str(root.pid), "--tree", "--until-exit")
        _subscribed(cli.process.pid)
        _go(root)
        assert cli.wait_for(lambda lines: len(indents(lines)) == 1), cli.lines
        _say(root, "step")
        assert cli.wait_for(lambda lines: len(indents(lines)) == 2), cli.lines
        _say(root, "done")
        root.wait(timeout=10)
        code, err = cli.finish(sig=0, timeout=20)
    assert code == 0, err
    assert indents(cli.lines) == [2, 4], cli.lines  # the child shell, then its /bin/true


def test_pid_follows_a_thread_that_execs() -> None:
    """A non-main thread's exec: the kernel reports the main thread's exit, the exec, then the
    old thread's exit; the process goes on and its real exit comes later."""
    code = (
        "import os, sys, threading; sys.stdin.readline(); "
        "threading.Thread(target=os.execv, args=('/bin/sh', ['sh', '-c', 'exit 4'])).start(); "
        "threading.Event().wait()"
    )
    root = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)
    cli = Cli("--json", "-p", str(root.pid), "--until-exit")
    _subscribed(cli.process.pid)
    _go(root)
    root.wait(timeout=10)
    status, err = cli.finish(sig=0, timeout=20)
    records = [r for r in _json(cli.lines) if r.get("process_tgid") == root.pid]
    assert status == 0, err
    exec_ = [r for r in records if r["event"] == "exec"]
    final = [r for r in records if r["event"] == "exit" and r["exit_status"] == 4]
    assert exec_ and final, records


def test_an_unknown_user_is_a_usage_error() -> None:
    command = [*COMMAND, "--user", "no-such-user-here"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "no such user: 'no-such-user-here'" in done.stderr
    assert "Traceback" not in done.stderr


_MAKES_A_THREAD = """
import threading, time
thread = threading.Thread(target=time.sleep, args=(30,), daemon=True)
thread.start()
print(thread.native_id, flush=True)
time.sleep(30)
"""
_MAKES_A_ZOMBIE = """
import os, time
child = os.fork()
if child == 0:
    os._exit(0)
print(child, flush=True)
time.sleep(30)
"""


def _pointed_at(script: str, state: bytes) -> tuple[int, int, subprocess.CompletedProcess[str]]:
    """Run ``script`` (it prints a task id), wait until that task is in ``state``, then the
    command with ``-p`` that id: (the script's pid, the id, the command's result)."""
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        task = int(owner.stdout.readline())
        deadline = time.monotonic() + 10
        while getattr(procfs.stat(task), "state", None) != state:
            assert time.monotonic() < deadline, f"{task} never reached state {state!r}"
            time.sleep(0.01)
        command = [*COMMAND, "-p", str(task)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    finally:
        owner.kill()
        owner.wait()
    return owner.pid, task, done


def test_pid_of_a_thread_names_its_process() -> None:
    owner, tid, done = _pointed_at(_MAKES_A_THREAD, b"S")
    expected = f"pyprocconn: {tid} is a thread of process {owner}: use -p {owner}\n"
    assert done.returncode == 1 and done.stderr == expected


def test_pid_of_a_zombie_says_it_has_exited() -> None:
    _, zombie, done = _pointed_at(_MAKES_A_ZOMBIE, b"Z")
    said = f"process {zombie} has already exited (a zombie its parent has not reaped)"
    assert done.returncode == 1 and done.stderr == f"pyprocconn: {said}\n"


def test_pid_of_no_process_says_so() -> None:
    done = subprocess.run(
        [*COMMAND, "-p", "999999"], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 1 and done.stderr == "pyprocconn: no process 999999\n"
    assert done.stdout == ""  # not even the column header


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_like_ctrl_c(sig: int) -> None:
    cli = Cli("-S")
    _subscribed(cli.process.pid)
    cli.trigger_until_seen(
        lambda: triggers.exit_with(0), lambda lines, pid: any(f" {pid} " in x for x in lines)
    )
    code, err = cli.finish(sig=sig)
    assert code == 0 and "total" in err and "receive buffer:" in err and "Traceback" not in err
    assert "events per program" in err, err  # the table's part of the summary too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-D", "inf"], "must be a number of seconds above 0"),
        (["-D", "1e300"], "must be a number of seconds above 0"),
        (["-D", "nan"], "must be a number of seconds above 0"),
        (["-p", "notanumber"], "not a process id: 'notanumber'"),
        (["--rcvbuf", "x"], "not a whole number: 'x'"),
        (["--until-exit"], "--until-exit needs -p PID"),
        (["--comm"], "--comm and --cmdline go with --raw"),
        (["--raw", "--tree", "-x", "--user", "0"], "--tree, -x, --user: the process table's"),
        (["--raw", "--cgroup", "x"], "--cgroup: the process table's"),
        (["--raw", "--no-exec-reader"], "--no-exec-reader: the process table's"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], message: str) -> None:
    done = subprocess.run([*COMMAND, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_version() -> None:
    done = subprocess.run([*COMMAND, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("pyprocconn ")


def test_nonzero_exit_alone_shows_only_those_exits_with_their_status_decoded() -> None:
    cli = Cli("--json", "--nonzero-exit")
    _subscribed(cli.process.pid)
    zero, failed = triggers.exit_with(0), triggers.exit_with(3)
    killed = triggers.killed_by_sigkill()
    assert cli.wait_for(lambda lines: bool(_json_for(lines, killed)))
    cli.finish()
    records = _events(cli.lines)
    assert {r["event"] for r in records} == {"exit"} and not _json_for(cli.lines, zero)
    (exit_3,) = _json_for(cli.lines, failed)
    assert (exit_3["exit_status"], exit_3["term_signal"], exit_3["core_dumped"]) == (3, None, False)
    (sigkill,) = _json_for(cli.lines, killed)
    assert (sigkill["exit_status"], sigkill["term_signal"]) == (None, "SIGKILL")


def test_names_that_are_not_utf8_are_unambiguous() -> None:
    rename = (
        "import ctypes, sys; libc = ctypes.CDLL(None); "
        "libc.prctl(15, ctypes.c_char_p(sys.argv[1].encode('utf-8', 'surrogateescape')), 0, 0, 0)"
    )
    texts = Cli("--raw", "-e", "comm")
    as_json = Cli("--raw", "--json", "-e", "comm")
    _subscribed(texts.process.pid)
    _subscribed(as_json.process.pid)
    byte = triggers.run_python_args(rename, os.fsdecode(b"lit\xff"))
    backslash = triggers.run_python_args(rename, "lit\\xff")
    for cli in (texts, as_json):
        assert cli.wait_for(lambda lines: any(str(backslash) in line for line in lines))
        cli.finish()
    shown = {
        pid: [details for _, _, details in _lines_of(texts.lines, pid)] for pid in (byte, backslash)
    }
    assert shown == {byte: ["comm lit\\xff"], backslash: ["comm lit\\\\xff"]}
    names = {r["process_pid"]: r["comm"] for r in _events(as_json.lines)}
    assert os.fsencode(str(names[byte])) == b"lit\xff" and names[backslash] == "lit\\xff"


def test_wait_reports_how_a_process_that_is_not_its_child_ended() -> None:
    target = _gated("exit 5")
    waiter = subprocess.Popen(
        [*COMMAND, "wait", str(target.pid)], stdout=subprocess.PIPE, text=True
    )
    _subscribed(waiter.pid)
    _go(target)
    out, _ = waiter.communicate(timeout=30)
    target.wait(timeout=10)
    assert waiter.returncode == 5 and out == f"{target.pid} exit 5\n"


def test_wait_times_out_and_knows_missing_processes() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        done = subprocess.run(
            [*COMMAND, "wait", "--json", "--timeout", "0.5", "999999", str(sleeper.pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert done.returncode == 124  # the last pid's: a shell's wait would still be waiting
    missing, running = (json.loads(line) for line in done.stdout.splitlines())
    assert missing == {
        "pid": 999999,
        "ended": False,
        "exit_code": None,
        "reason": "no such process",
    }
    assert running["reason"] == "timeout"


def test_check_says_events_will_flow() -> None:
    done = subprocess.run(
        [*COMMAND, "--check"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    facts = {line[:32].strip(): line[32:].strip() for line in done.stdout.splitlines()}
    assert facts["subscription"] == "acknowledged by the kernel"
    assert facts["events will flow"] == "yes" and facts["netlink connector"] == "present"
    assert facts["user namespace"] == facts["pid namespace"] == "initial"


def test_the_table_puts_the_command_line_on_every_line_and_the_duration_on_exits() -> None:
    # Only this process's descendants shown, and room for a burst of other programs' events:
    # after a loss the table rescans /proc, where a process that has just ended is gone before
    # its exit is read (shown then without its process, as one that vanished unseen).
    ours = ("-p", str(os.getpid()), "--rcvbuf", str(256 << 20))
    cli = Cli("-x", "-e", "exec,exit", *ours)  # the table still follows the forks it does not show
    as_json = Cli("--json", *ours)

    def text_shows(kind: str, pid: int) -> Callable[[list[str]], bool]:
        return lambda lines: kind in [shown for _, shown, _ in _lines_of(lines, pid)]

    def json_shows(kind: str, pid: int) -> Callable[[list[str]], bool]:
        return lambda lines: any(r["event"] == kind for r in _json_for(lines, pid))

    # Both receive (they subscribe asynchronously): an exit of ours shows in each.
    cli.trigger_until_seen(lambda: triggers.exit_with(0), lambda x, pid: text_shows("exit", pid)(x))
    as_json.trigger_until_seen(
        lambda: triggers.exit_with(0), lambda x, pid: json_shows("exit", pid)(x)
    )
    # The child waits while its exec is shown: a process that lives 50 ms may be gone before a
    # command busy with other programs' events reads its command line (the race README's -r is
    # about), which is not this test's question.
    argv = ["/bin/sh", "-c", "read go; sleep 0.05; exit 3"]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, text=True)
    assert cli.wait_for(text_shows("exec", child.pid))
    assert as_json.wait_for(json_shows("exec", child.pid))
    _go(child)
    child.wait(timeout=10)
    assert cli.wait_for(text_shows("exit", child.pid))
    assert as_json.wait_for(json_shows("exit", child.pid))
    cli.finish()
    as_json.finish()
    header = ["TIME", "EVENT", "PID", "UID", "EUID", "USER", "CONTAINER", "DETAILS"]
    assert cli.lines[0].split() == header
    command = "/bin/sh -c 'read go; sleep 0.05; exit 3'"  # shell-quoted: pasted back, argv
    # UID EUID USER CONTAINER, then what the line says
    kinds = {kind: details.split(None, 4) for _, kind, details in _lines_of(cli.lines, child.pid)}
    assert kinds["exec"][4] == command
    assert re.fullmatch(r"exit 3 after \d+\.\d{3}s  " + re.escape(command), kinds["exit"][4])
    assert kinds["exit"][:4] == [str(os.getuid()), str(os.geteuid()), "root", "-"]
    (exit_,) = [r for r in _json_for(as_json.lines, child.pid) if r["event"] == "exit"]
    process = exit_["process"]
    notices = [r for r in _json(as_json.lines) if "what" not in r]  # (lost, resync, vanished)
    assert isinstance(process, dict) and process["argv"] == argv, (exit_, notices)
    assert process["user"] == "root" and process["ppid"] == os.getpid()
    assert isinstance(exit_["duration_s"], float) and 0.05 <= exit_["duration_s"] < 10


def test_the_unread_note_counts_only_the_execs_shown() -> None:
    # The command is stopped while a followed child and an unfollowed process exec and exit:
    # neither command line can be read; the note counts the one shown.
    root = _gated("/bin/true followed; read done")
    cli = Cli("-e", "exec", "-p", str(root.pid), "--no-exec-reader")
    _subscribed(cli.process.pid)
    os.kill(cli.process.pid, signal.SIGSTOP)
    try:
        _go(root)
        subprocess.run(["/bin/true", "unfollowed"], check=True)
        time.sleep(0.3)  # the followed /bin/true has run and exited by now
    finally:
        os.kill(cli.process.pid, signal.SIGCONT)
    assert cli.wait_for(lambda lines: any(" exec " in line for line in lines)), cli.lines
    _say(root, "done")
    root.wait(timeout=10)
    code, err = cli.finish()
    assert code == 0, err
    assert "command lines not read: 1 of the 1 execs shown" in err, err


def _exec_reader_of(pid: int) -> int:
    """The command's exec reader (its one child process), once it has subscribed."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children and in_the_group(int(children[0])):
            return int(children[0])
        time.sleep(0.02)
    pytest.fail(f"the command {pid} has no exec reader")


def test_the_exec_reader_reads_what_the_stopped_command_could_not() -> None:
    # As above, but by default: the command's own process is stopped, its exec reader (a child
    # process) is not, and reads the followed child's command line the moment it execs.
    root = _gated("exec /bin/sleep 0.3")
    cli = Cli("-e", "exec", "-p", str(root.pid))
    _subscribed(cli.process.pid)
    _exec_reader_of(cli.process.pid)
    os.kill(cli.process.pid, signal.SIGSTOP)
    try:
        _go(root)
        root.wait(timeout=10)  # exec'd, slept, ended and reaped: nothing left in /proc
    finally:
        os.kill(cli.process.pid, signal.SIGCONT)
    assert cli.wait_for(lambda lines: any(" exec " in line for line in lines)), cli.lines
    code, err = cli.finish()
    assert code == 0, err
    (shown,) = [line for line in cli.lines if " exec " in line]
    assert shown.endswith(f" {root.pid}  /bin/sleep 0.3"), shown
    assert "command lines not read" not in err, err


def test_a_second_stop_signal_does_not_cut_the_summary_short() -> None:
    # timeout(1) signals the command, then its process group; here the second comes while it
    # ends (its exec reader gone, the summary not yet printed).
    cli = Cli("-e", "exec", "-S")
    _subscribed(cli.process.pid)
    reader = _exec_reader_of(cli.process.pid)
    cli.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    while procfs.alive(reader) and time.monotonic() < deadline:
        time.sleep(0.001)
    cli.process.send_signal(signal.SIGINT)
    code, err = cli.finish(sig=0)
    assert code == 0 and "exec reader: pid" in err and "Traceback" not in err, err


def test_where_fork_is_refused_the_command_runs_without_its_exec_reader() -> None:
    # A SCHED_DEADLINE task may not fork (EAGAIN): the command runs on and -S says why.
    reservation = ["chrt", "-d", "-T", "5000000", "-P", "10000000", "0"]
    if subprocess.run([*reservation, "true"], check=False, capture_output=True).returncode:
        pytest.skip("chrt -d refused here")
    done = subprocess.run(
        [*reservation, *COMMAND, "-e", "exec", "-S", "-D", "0.5"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exec reader: not started (Resource temporarily unavailable)" in done.stderr


def test_check_json_is_one_object_saying_whether_events_flow() -> None:
    done = subprocess.run(
        [*COMMAND, "--check", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    facts = json.loads(done.stdout)
    assert done.returncode == 0 and facts["events_will_flow"] is True, done.stdout
    assert facts["subscription"] == "acknowledged by the kernel"
    assert facts["kernel_side_event_filter"] in ("yes", "no (user space)")


def test_ctrl_c_ends_it_even_when_started_with_sigint_ignored() -> None:
    # A script's background job starts with SIGINT ignored; the command (as forkstat) still
    # takes Ctrl-C as the end: it unsubscribes and says its summary.
    ignoring = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh"]  # exec keeps SIG_IGN
    process = owned(
        subprocess.Popen(
            [*ignoring, *COMMAND, "-S", "-e", "ptrace"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    _subscribed(process.pid)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0 and "total" in err, err
