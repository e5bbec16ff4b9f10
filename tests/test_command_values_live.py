"""Every value the command prints, against what this test's own processes did: statuses,
durations (a thread's own), ids and user names, parents, the processes ``-p`` follows, what
``--nonzero-exit`` and ``--user`` let through, the time of each line, and ``--check``'s verdict.

The workload of tests/test_record_live.py runs once under four commands at the same time; the
exact lifetimes come from the kernel's own timestamps in the JSON lines' fork and exit events."""

from __future__ import annotations

import datetime
import os
import pwd
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import triggers
from tests.test_cli import COMMAND, Cli, _json, _json_for, _subscribed
from tests.test_record_live import ATTEMPTS, C1_ARGV, LEADER_FIRST, Workload, _gated_python, _go

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")
BIG_BUFFER = ("--rcvbuf", str(64 * 1024 * 1024))  # so that other programs' storms seldom overrun


def _text_lines(lines: list[str], kind: str, pid: int) -> list[list[str]]:
    """The text lines (after the header) of one kind and pid, cut in at most 7 columns: TIME
    EVENT PID (UID EUID USER with -x) DETAILS."""
    return [parts for line in lines[1:] if (parts := line.split(None, 7))[1:3] == [kind, str(pid)]]


def _about(records: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    return [r for r in records if pid in (r.get("process_pid"), r.get("child_pid"))]


@dataclass
class Shown:
    work: Workload
    text: list[str]  # -x --threads
    json: list[dict[str, Any]]  # --json --threads
    nonzero: list[dict[str, Any]]  # --json --nonzero-exit --threads
    user: list[dict[str, Any]]  # --json --user 2

    def event(self, name: str, pid: int, key: str = "process_pid") -> dict[str, Any]:
        (found,) = [r for r in self.json if r["event"] == name and r.get(key) == pid]
        return found

    def lifetime_s(self, pid: int) -> float:
        """From the kernel's timestamps in the fork and exit lines of ``pid`` (a thread id too)."""
        born = self.event("fork", pid, "child_pid")["timestamp_ns"]
        return int(self.event("exit", pid)["timestamp_ns"] - born) / 1e9

    def lines(self, kind: str, pid: int) -> list[list[str]]:
        """Text lines of one kind and pid: TIME EVENT PID UID EUID USER DETAILS."""
        return _text_lines(self.text, kind, pid)


def _lossy(lines: list[str]) -> bool:
    """Whether a command reported a loss (a LOST line, or a JSON "lost" record)."""
    return any(
        line.startswith('{"event":"lost"') or line.split()[1:2] == ["LOST"] for line in lines
    )


def _shown_once(where: Path) -> Shown | None:
    """The workload under the four commands; None when one of them lost events."""
    work = Workload.start(where)
    following = ("-p", str(work.root.pid), "--until-exit", *BIG_BUFFER)
    clis = [
        Cli("-x", "--threads", *following),
        Cli("--json", "--threads", *following),
        Cli("--json", "--nonzero-exit", "--threads", *following),
        Cli("--json", "--user", "2", *following),
    ]
    as_text, as_json = clis[:2]  # those that show execs (not --nonzero-exit, nor --user 2)

    def exec_shown(pid: int) -> None:  # its exec shown by both (or events lost: run again)
        assert as_text.wait_for(
            lambda lines: bool(_text_lines(lines, "exec", pid)) or _lossy(lines)
        )
        assert as_json.wait_for(
            lambda lines: any(r["event"] == "exec" for r in _json_for(lines, pid)) or _lossy(lines)
        )

    try:
        for cli in clis:
            _subscribed(cli.process.pid)
        work.run(exec_shown)
        for cli in clis:
            code, err = cli.finish(sig=0, timeout=20)  # --until-exit: each ends by itself
            assert code == 0, err
    finally:
        work.stop()
        for cli in clis:
            cli.finish()
    if any(_lossy(cli.lines) for cli in clis):
        return None
    text, *others = (cli.lines for cli in clis)
    return Shown(work, text, *(_json(lines) for lines in others))


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Shown:
    """Run again when a command lost events (other programs' storms may overrun it)."""
    for _ in range(ATTEMPTS):
        found = _shown_once(tmp_path_factory.mktemp("c2-cwd"))
        if found is not None:
            return found
    pytest.fail(f"events were lost in each of {ATTEMPTS} runs of the workload")


def test_pid_follows_a_child_forked_by_a_thread(shown: Shown) -> None:
    c1 = shown.work.c1
    assert [r["event"] for r in _about(shown.json, c1)] == ["fork", "exec", "exit"]
    assert shown.event("fork", c1, "child_pid")["parent_pid"] == shown.work.spawner
    assert shown.event("exec", c1)["process"]["argv"] == C1_ARGV
    assert [parts[1] for parts in shown.lines("exec", c1)] == ["exec"]
    assert [r["exit_status"] for r in _about(shown.nonzero, c1)] == [200]


def test_pid_follows_the_process_past_its_threads_exits(shown: Shown) -> None:
    root = shown.work.root.pid
    (end,) = [r for r in shown.json if r["event"] == "exit" and r["process_pid"] == root]
    assert end["exit_status"] == 3 and end["process"]["comm"] == shown.work.comm
    (line,) = shown.lines("exit", root)
    assert line[7].startswith("exit 3 after ")


def test_nonzero_exit_shows_only_the_exits_that_failed(shown: Shown) -> None:
    """-p subscribes to every exit: the zero ones (threads', C2's, C1's sleep) are dropped in
    user space."""
    got = [(r["event"], r["process_pid"], r["exit_status"]) for r in shown.nonzero]
    assert got == [("exit", shown.work.c1, 200), ("exit", shown.work.root.pid, 3)]
    zero = [r for r in shown.json if r["event"] == "exit" and r["exit_code"] == 0]
    assert len(zero) >= 4  # the premise: threads, C2 and the sleep exited 0, and were followed


def test_json_duration_is_the_lifetime_the_kernel_gave(shown: Shown) -> None:
    work = shown.work
    for pid in (work.c1, work.c2, work.thread):
        exit_ = shown.event("exit", pid)
        assert exit_["duration_s"] == shown.lifetime_s(pid), pid
    assert shown.lifetime_s(work.thread) >= 0.15  # the thread slept 0.15 s
    assert shown.event("exit", work.c1)["process"]["ppid"] == work.root.pid


def test_text_duration_is_the_lifetime_to_the_millisecond(shown: Shown) -> None:
    work = shown.work
    ((*_, c1),) = shown.lines("exit", work.c1)
    command = "/bin/sh -c 'read go; sleep 0.2; exit 200'"  # C1_ARGV, shell-quoted
    assert c1 == f"exit 200 after {shown.lifetime_s(work.c1):.3f}s  {command}"
    thread_lines = shown.lines("thread", work.thread)
    assert [parts[7].split()[0] for parts in thread_lines] == ["parent", "exit"]
    lifetime = shown.lifetime_s(work.thread)
    assert thread_lines[1][7].startswith(
        f"exit 0 thread of {work.root.pid} after {lifetime:.3f}s  "
    )


def test_ids_and_user_names_are_the_processes_own(shown: Shown) -> None:
    """C2 set its uids to 1 (real) and 2 (effective), its gids to 5 and 6, and called setsid."""
    c2, real, effective = shown.work.c2, pwd.getpwuid(1).pw_name, pwd.getpwuid(2).pw_name
    ((_, _, _, *uid_columns, uid_details),) = shown.lines("uid", c2)
    assert uid_columns == ["1", "2", effective, "-"] and uid_details.startswith("ruid 1 euid 2  ")
    ((_, _, _, *exit_columns, _),) = shown.lines("exit", c2)
    assert exit_columns == ["1", "2", effective, "-"]  # and no container
    process = shown.event("exit", c2)["process"]
    ids = [process[key] for key in ("uid", "euid", "user", "gid", "egid", "sid", "cwd")]
    assert ids == [1, 2, effective, 5, 6, c2, shown.work.where]
    assert real != effective  # the premise: the two columns can be told apart


def test_user_matches_the_effective_user_too(shown: Shown) -> None:
    """--user 2: C2 from its uid change on (its real uid is 1), nothing else."""
    c2 = shown.work.c2
    assert [r["event"] for r in shown.user] == ["uid", "exit"]
    assert all(r["process_pid"] == c2 and r["process"]["euid"] == 2 for r in shown.user)


def test_each_line_has_the_time_of_its_event_not_of_its_printing() -> None:
    """The commands are stopped while the process runs: its lines are printed half a second
    after its events, with the events' times."""
    text = Cli("--raw", "-e", "exit", *BIG_BUFFER)  # exits only: none lost while stopped
    as_json = Cli("--raw", "--json", "-e", "exit", *BIG_BUFFER)
    clis = (text, as_json)
    try:
        for cli in clis:
            _subscribed(cli.process.pid)
            cli.process.send_signal(signal.SIGSTOP)
        offset_ns = time.time_ns() - time.monotonic_ns()  # as the command's clock takes it
        pid = triggers.exit_with(7)
        time.sleep(0.5)  # the delay under test: nothing to await
        for cli in clis:
            cli.process.send_signal(signal.SIGCONT)
        assert as_json.wait_for(lambda lines: bool(_json_for(lines, pid)))
        assert text.wait_for(lambda lines: bool(_text_lines(lines, "exit", pid)))
    finally:
        for cli in clis:
            cli.process.send_signal(signal.SIGCONT)
            cli.finish()
    (record,) = _about(_json(as_json.lines), pid)
    when = (int(record["timestamp_ns"]) + offset_ns) / 1e9
    printed = datetime.datetime.fromisoformat(str(record["time"])).timestamp()
    assert abs(printed - when) < 0.1, (printed, when)  # printed 0.5 s later
    ((stamp, *_),) = _text_lines(text.lines, "exit", pid)
    clock = datetime.datetime.strptime(stamp, "%H:%M:%S.%f")
    local = datetime.datetime.fromtimestamp(when)
    seconds = (clock - local.replace(year=1900, month=1, day=1)).total_seconds()
    assert min(abs(seconds), 86400 - abs(seconds)) < 0.1, (stamp, local)


def test_a_process_whose_main_thread_ended_first_ends_with_its_real_status() -> None:
    target = _gated_python(LEADER_FIRST)
    cli = Cli("--json", "--nonzero-exit", "-p", str(target.pid), "--until-exit", *BIG_BUFFER)
    try:
        _subscribed(cli.process.pid)
        _go(target)
        assert target.wait(timeout=10) == 5  # the premise: the process's status
        code, err = cli.finish(sig=0, timeout=20)
    finally:
        target.kill()
        target.wait(timeout=10)
        cli.finish()
    assert code == 0, err
    ends = [(r["process_tgid"], r["exit_status"]) for r in _json(cli.lines) if r["event"] == "exit"]
    assert ends == [(target.pid, 5)], cli.lines


def test_check_says_no_when_the_kernel_never_answers() -> None:
    """In a new user namespace the kernel ignores the subscription: no events will flow."""
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", *COMMAND, "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    facts = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in done.stdout.splitlines())
    assert facts["user namespace"].startswith("not the initial one"), done.stdout
    assert facts["subscription"].startswith("no answer from the kernel"), done.stdout
    assert (done.returncode, facts["events will flow"]) == (1, "no"), done.stdout + done.stderr
    assert "Traceback" not in done.stderr
