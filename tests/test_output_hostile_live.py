"""What processes choose (arguments, names, bytes in any encoding) can neither forge a line, nor
reach the terminal raw, nor stop the command: every text output, on the real kernel, with
stdout strict UTF-8 (the setting that made one exec crash the command before)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import unicodedata

import pytest

from tests.conftest import owned
from tests.test_cli import COMMAND, SCHEMA, _subscribed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")

FORGED = "12:00:00.000000 exec       1  FORGED"
# The arguments after `sh -c SCRIPT`: each a way to take over a terminal or a line.
HOSTILE = [
    "\x1b]0;PWNED\x07",  # retitle the terminal
    "\x1b[31mred",  # recolour it
    "over\rwrite",  # back to the start of the line
    f"NL\n{FORGED}",  # a whole fake event line
    os.fsdecode(b"a\xffb"),  # not UTF-8: a lone surrogate once decoded
    "\u009b2J",  # C1 CSI: clear the screen on some terminals
    "\u202egnp.exe",  # bidi override
    "",  # an empty argument must stay visible
    'it\'s "quoted" $HOME `id` *',
]
# Sets its own name (a comm event) to ESC ] 0 ; x BEL and a byte that is not UTF-8, then lives
# until told to end (a line on its stdin).
SCRIPT = r"printf '\033]0;x\007\377' > /proc/$$/comm; sleep 0.5; read done; :"
ARGV = ["/bin/sh", "-c", SCRIPT, *HOSTILE]
HOSTILE_UID = 4242  # any local user


class Command:
    """The command with stdout strict UTF-8 (or ``encoding``), its raw output bytes kept."""

    def __init__(self, *args: str, encoding: str = "utf-8:strict") -> None:
        env = dict(os.environ, PYTHONIOENCODING=encoding, LANG="en_US.UTF-8")
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        owned(self.process)
        self.out = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        stream = self.process.stdout
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            self.out += chunk

    def shows(self, kind: str, pid: int, marked: str = "", timeout: float = 30.0) -> bool:
        """Wait (bounded) until the output has a line of the ``kind`` event of ``pid`` holding
        ``marked`` (an exit: all its events are in)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.out.decode("utf-8", "replace").splitlines():
                if marked not in line:
                    continue
                if line.startswith("{"):
                    record = json.loads(line)
                    if record["event"] == kind and record.get("process_tgid") == pid:
                        return True
                elif line.split()[1:3] == [kind, str(pid)]:
                    return True
            time.sleep(0.05)
        return False

    def lost(self) -> bool:
        text = self.out.decode("utf-8", "replace")
        return " LOST " in text or '"event":"lost"' in text

    def finish(self) -> tuple[int, list[str], str]:
        assert self.process.poll() is None, "the command ended by itself"
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=20)
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        err = self.process.stderr.read()
        _safe_lines(err)
        return code, _safe_lines(self.out), err.decode()


def _safe_lines(raw: bytes) -> list[str]:
    """The output's lines, checked: strict UTF-8, and no control (C0, DEL, C1), format, private
    or unassigned character, no line or paragraph separator."""
    text = raw.decode("utf-8")  # strict
    lines = text.split("\n")
    for line in lines:
        bad = [
            c for c in line if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        ]
        assert not bad, (line, bad)
    return lines


def _bash_words(quoted: str) -> list[bytes]:
    """What bash makes of a shell-quoted text: the words, as bytes."""
    done = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {quoted}"],
        capture_output=True,
        check=True,
        env={"LC_ALL": "C.UTF-8", "PATH": os.environ["PATH"]},
    )
    return done.stdout.split(b"\0")[:-1]


def _hostile() -> subprocess.Popen[bytes]:
    """The hostile process, started; it ends once told to (:func:`_release`)."""
    argv = [os.fsencode(arg) for arg in ARGV]
    return subprocess.Popen(
        argv, user=HOSTILE_UID, group=HOSTILE_UID, extra_groups=[], stdin=subprocess.PIPE
    )


def _release(process: subprocess.Popen[bytes]) -> None:
    """Tell it to end: its ``read`` takes the line (once its sleep is over), and it exits 0."""
    assert process.stdin is not None
    process.stdin.write(b"done\n")
    process.stdin.close()


def _details(lines: list[str], kind: str, pid: int, columns: int = 3) -> list[str]:
    """The DETAILS column of the lines of one event kind about ``pid``, those of the hostile
    process only (the pid may be reused meanwhile while other programs fork a lot: 32768 pids
    go round in seconds)."""
    found = []
    for line in lines:
        parts = line.split(None, columns)
        mine = len(parts) > columns and parts[1:3] == [kind, str(pid)]
        if mine and "sleep 0.5" in parts[columns]:
            found.append(parts[columns])
    return found


def test_no_process_can_forge_a_line_reach_the_terminal_or_stop_the_command() -> None:
    for _ in range(3):  # again only when another program's storm cost events
        commands = {
            "default": Command("-S", "--user", str(HOSTILE_UID)),  # -S: only its commands
            "tree": Command("--tree", "-x"),
            "raw": Command("--raw", "--comm", "--cmdline"),
            "json": Command("--json"),
        }
        for command in commands.values():
            _subscribed(command.process.pid)
        hostile = _hostile()
        # It lives until every command has shown its exec: its command line and exe are read
        # from /proc then, and a process that has ended has taken them with it.
        try:
            execs = all(c.shows("exec", hostile.pid, "sleep 0.5") for c in commands.values())
        finally:
            _release(hostile)
            hostile.wait(timeout=10)
        complete = execs and all(c.shows("exit", hostile.pid) for c in commands.values())
        if complete or not any(command.lost() for command in commands.values()):
            break
        for command in commands.values():
            command.finish()
    results = {name: command.finish() for name, command in commands.items()}
    pid = hostile.pid
    for name, (code, lines, err) in results.items():
        assert code == 0, (name, err)
        assert not any(line.startswith(FORGED[:15]) for line in lines), name
    expected = [os.fsencode(arg) for arg in ARGV]
    # Default mode: the exec line's details are the command line, shell-quoted: bash gives
    # back exactly the arguments, bytes that are not UTF-8 and empty ones included.
    _, lines, err = results["default"]
    (shown,) = _details(lines, "exec", pid)
    assert _bash_words(shown) == expected
    (exit_,) = _details(lines, "exit", pid)
    assert re.match(r"exit 0 after \d+\.\d{3}s  ", exit_) and exit_.endswith(shown)
    (comm,) = _details(lines, "comm", pid)
    assert comm.startswith("comm \\x1b]0;x\\x07\\xff  ")  # escaped, unambiguous
    shell = os.path.realpath(ARGV[0])  # -S: the busiest programs, by executable
    assert any(line.endswith(f"  {shell}") for line in err.splitlines()), err
    # --tree -x: the same command line after the ids and the indentation.
    _, lines, _ = results["tree"]
    (shown_tree,) = _details(lines, "exec", pid, columns=7)
    assert _bash_words(shown_tree.strip()) == expected
    # --raw --comm --cmdline: the name and the command line from /proc, in brackets.
    _, lines, _ = results["raw"]
    (raw_exec,) = _details(lines, "exec", pid)
    assert raw_exec.startswith("[\\x1b]0;x\\x07\\xff] [") or raw_exec.startswith("[sh] [")
    quoted = raw_exec.split("] [", 1)[1].removesuffix("]")
    assert _bash_words(quoted) == expected
    # JSON: exactly the arguments, a byte that is not UTF-8 as \udcXX (as documented).
    _, lines, _ = results["json"]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(SCHEMA.is_valid(record) for record in records)  # hostile names included
    (exec_,) = [r for r in records if r["event"] == "exec" and r["process_pid"] == pid
                and "sleep 0.5" in str(r["process"]["argv"])]  # fmt: skip
    assert [os.fsencode(arg) for arg in exec_["process"]["argv"]] == expected


def test_wait_says_how_a_hostile_process_ended_in_one_safe_line() -> None:
    hostile = _hostile()
    _release(hostile)  # nothing here reads its command line: it may end after its sleep
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    done = subprocess.run(
        [*COMMAND, "wait", str(hostile.pid)], capture_output=True, env=env, timeout=20, check=False
    )
    hostile.wait(timeout=10)
    assert done.returncode == 0 and _safe_lines(done.stdout) == [f"{hostile.pid} exit 0", ""]


def test_the_command_survives_a_strict_ascii_stdout() -> None:
    """Where the stream can encode nothing but ASCII, é is quoted in a form bash reads back
    (never an error, never a form that pastes as something else)."""
    command = Command("-e", "exec,exit", encoding="ascii:strict")
    _subscribed(command.process.pid)
    # It lives until its exec is shown (its command line is read from /proc then, and a
    # process that has ended has taken it with it).
    cafe = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 0.5; read done", "café"], stdin=subprocess.PIPE
    )
    try:
        assert command.shows("exec", cafe.pid, "sleep 0.5")
    finally:
        cafe.communicate(b"done\n", timeout=10)  # its read takes the line: it exits 0
    assert command.shows("exit", cafe.pid)
    code, lines, err = command.finish()
    assert code == 0, err
    (shown,) = _details(lines, "exec", cafe.pid)
    assert shown.isascii()
    assert _bash_words(shown) == [b"/bin/sh", b"-c", b"sleep 0.5; read done", "café".encode()]
