"""The ``pyprocconn`` command as a subprocess against the real kernel."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tests import triggers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")
COMMAND = [sys.executable, "-m", "pyprocconn"]


class Cli:
    """The command running in the background, its output lines collected as they come."""

    def __init__(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        self.process = subprocess.Popen(
            [*prefix, *COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

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
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def _json(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def _json_for(lines: list[str], pid: int) -> list[dict[str, object]]:
    return [r for r in _json(lines) if pid in (r.get("process_pid"), r.get("child_pid"))]


def test_human_columns_show_fork_exec_exit() -> None:
    cli = Cli()
    pid = cli.trigger_until_seen(
        lambda: triggers.exit_with(3), lambda lines, pid: any(f" {pid}  exit 3" in x for x in lines)
    )
    code, err = cli.finish()
    assert code == 0 and "Traceback" not in err
    assert cli.lines[0].split() == ["TIME", "EVENT", "PID", "DETAILS"]
    mine = [line.split(None, 3) for line in cli.lines[1:] if f" {pid} " in f" {line} "]
    kinds = [parts[1] for parts in mine if parts[2] == str(pid)]
    assert kinds == ["fork", "exec", "exit"]
    fork_line = next(p for p in mine if p[1] == "fork")
    assert fork_line[3] == f"parent {os.getpid()}"
    datetime.datetime.strptime(fork_line[0], "%H:%M:%S.%f")  # local wall-clock time


def test_json_lines_carry_exactly_the_event_fields() -> None:
    cli = Cli("--json")
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
    records = _json(cli.lines)
    assert {r["event"] for r in records} <= {"exec", "exit"}
    assert all(r["exit_code"] != 0 for r in records if r["event"] == "exit")
    assert [r["exit_code"] for r in _json_for(cli.lines, nonzero) if r["event"] == "exit"] == [
        0x400
    ]


def test_count_ends_the_stream() -> None:
    cli = Cli("--json", "-e", "ptrace", "-n", "2")  # ptrace events: only the ones made here
    time.sleep(1.0)
    assert cli.process.poll() is None  # it waits for its two events...
    deadline = time.monotonic() + 15
    while cli.process.poll() is None and time.monotonic() < deadline:
        triggers.ptrace_seize_and_detach()  # an attach and a detach
        cli.wait_for(lambda lines: False, timeout=0.5)
    code, _ = cli.finish()
    assert code == 0 and [r["event"] for r in _json(cli.lines)] == ["ptrace", "ptrace"]


def test_duration_ends_the_stream_with_stats() -> None:
    started = time.monotonic()
    cli = Cli("-D", "1", "-S")
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
    records = _json(cli.lines)
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
