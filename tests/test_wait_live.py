"""``wait_for_exits`` and ``pyprocconn wait`` against the real kernel, for thread groups whose
leader does not end last (a leader that called pthread_exit is a zombie while its threads run).

The shapes come from a small C program (tests/thread_shapes.c, built with gcc). Each waits for
a go-ahead line on stdin; the library tests give it once the wait has read the process's threads
from /proc (after the subscription was acknowledged), so what follows must come from events.
Only our own pids' events are looked at; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyprocconn import procfs, wait
from pyprocconn.connector import ProcConnector
from pyprocconn.errors import OverrunError
from pyprocconn.events import EventType, ExitEvent, ProcEvent
from tests.test_cli import COMMAND, _subscribed

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc for the helper"),
]
SOURCE = Path(__file__).with_name("thread_shapes.c")
TIMEOUT = 15.0  # every wait_for_exits call; the shapes take at most 1.5 s
_release = re.match(r"(\d+)\.(\d+)", os.uname().release)
# A zombie's status in /proc is its leader's exit code. Since 6.15 (commit 9133607de37a, maybe
# backported), a leader that called pthread_exit gets its group's code when the group ends by
# exit or a signal; before, it keeps its own 0.
ZOMBIE_STATUSES_OF_EXIT_5 = (
    {0x500} if _release and (int(_release[1]), int(_release[2])) >= (6, 15) else {0, 0x500}
)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("wait") / "thread_shapes"
    subprocess.run(
        ["gcc", "-Wall", "-Wextra", "-Werror", "-O", "-pthread", "-o", str(binary), str(SOURCE)],
        check=True,
        timeout=120,
    )
    return binary


class Shapes:
    """Starts the helper's shapes and reaps every one at the end."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, mode: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([str(self.binary), mode], stdin=subprocess.PIPE)
        self.started.append(process)
        return process

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def shape(shapes: Path) -> Iterator[Shapes]:
    started = Shapes(shapes)
    try:
        yield started
    finally:
        started.cleanup()


_going = threading.Lock()


def go(process: subprocess.Popen[bytes]) -> None:
    """The go-ahead; only the first call writes it."""
    with _going:
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.write(b"go\n")
            process.stdin.close()


def go_once_threads_are_read(
    monkeypatch: pytest.MonkeyPatch, process: subprocess.Popen[bytes]
) -> None:
    """Give ``process`` its go-ahead right after ``wait_for_exits`` first read its threads (or
    after 2 s, should it read them some other way)."""
    read = procfs.live_threads

    def spy(pid: int) -> set[int]:
        threads = read(pid)
        if pid == process.pid:
            go(process)
        return threads

    monkeypatch.setattr(procfs, "live_threads", spy)
    timer = threading.Timer(2.0, go, (process,))
    timer.daemon = True
    timer.start()


def exits_of(collector: ProcConnector, tgid: int, count: int) -> list[ExitEvent] | None:
    """The first ``count`` exit events of process ``tgid`` that ``collector`` has; None when some
    may have been lost (other programs can fill the buffer)."""
    found: list[ExitEvent] = []
    deadline = time.monotonic() + 5
    while len(found) < count and time.monotonic() < deadline:
        try:
            batch = collector.recv_batch(0.2)
        except OverrunError:
            return None
        found += [e for e in batch if isinstance(e, ExitEvent) and e.process_tgid == tgid]
    return found if len(found) == count else None


def zombie(pid: int) -> None:
    """Wait (bounded) until every thread of ``pid`` has exited and it is not reaped."""
    deadline = time.monotonic() + 10
    while procfs.live_threads(pid) or procfs.stat(pid) is None:
        assert time.monotonic() < deadline, f"{pid} never became a zombie"
        time.sleep(0.02)


def test_a_leader_that_calls_pthread_exit_ends_with_its_last_thread(
    shape: Shapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _attempt in range(3):  # again only when the collector lost events to other programs
        with ProcConnector(events=EventType.EXIT) as collector:
            process = shape.start("leader-first")
            go_once_threads_are_read(monkeypatch, process)
            ended = wait.wait_for_exits([process.pid], TIMEOUT)[process.pid]
            exits = exits_of(collector, process.pid, 2)
        process.wait(timeout=10)
        assert ended is not None and (ended.exit_code, ended.exit_status) == (0x500, 5)
        if exits is not None:
            break
    else:
        pytest.skip("the collector lost our exit events three times (a busy machine)")
    leader, thread = exits
    assert (leader.process_pid, leader.exit_code) == (process.pid, 0)
    assert thread.process_pid != process.pid and thread.exit_code == 0x500
    assert ended.timestamp_ns == thread.timestamp_ns > leader.timestamp_ns


def test_the_command_prints_the_last_threads_status(shape: Shapes) -> None:
    process = shape.start("leader-first")
    waiter = subprocess.Popen(
        [*COMMAND, "wait", str(process.pid)], stdout=subprocess.PIPE, text=True
    )
    _subscribed(waiter.pid)
    go(process)
    out, _ = waiter.communicate(timeout=30)
    assert (waiter.returncode, out) == (5, f"{process.pid} exit 5\n")


def test_the_command_says_128_plus_the_signal_for_a_killed_process() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        waiter = subprocess.Popen(
            [*COMMAND, "wait", str(sleeper.pid)], stdout=subprocess.PIPE, text=True
        )
        _subscribed(waiter.pid)
        sleeper.kill()
        out, _ = waiter.communicate(timeout=30)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert (waiter.returncode, out) == (128 + 9, f"{sleeper.pid} killed by SIGKILL\n")


def test_threads_created_after_the_wait_started_are_followed(
    shape: Shapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = shape.start("late-threads")
    go_once_threads_are_read(monkeypatch, process)
    started = time.monotonic_ns()
    ended = wait.wait_for_exits([process.pid], TIMEOUT)[process.pid]
    process.wait(timeout=10)
    # The leader exits first, one thread 0.2 s later (pthread_exit), the last (exit(7)) at 0.6 s.
    assert ended is not None and (ended.exit_code, ended.exit_status) == (0x700, 7)
    assert ended.timestamp_ns is not None and ended.timestamp_ns >= started + 500_000_000


def test_a_thread_that_execs_becomes_the_process(
    shape: Shapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exec from a thread that is not the leader: the old leader's exit (code 0) comes first,
    then the exec, after which the process's one thread has the tgid as its id."""
    process = shape.start("thread-exec")
    go_once_threads_are_read(monkeypatch, process)
    ended = wait.wait_for_exits([process.pid], TIMEOUT)[process.pid]
    process.wait(timeout=10)
    assert ended is not None and ended.exit_status == 6 and ended.timestamp_ns is not None


def test_a_zombie_at_the_start_is_read_from_proc(shape: Shapes) -> None:
    plain = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
    threaded = shape.start("leader-first")
    go(threaded)
    try:
        zombie(plain.pid)
        zombie(threaded.pid)
        results = wait.wait_for_exits([plain.pid, threaded.pid], TIMEOUT)
        done = subprocess.run(
            [*COMMAND, "wait", str(plain.pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    finally:
        plain.wait(timeout=10)
    assert results[plain.pid] == wait.Ended(plain.pid, 0x300, None)
    found = results[threaded.pid]
    assert found is not None and found.timestamp_ns is None
    assert found.exit_code in ZOMBIE_STATUSES_OF_EXIT_5
    assert (done.returncode, done.stdout) == (3, f"{plain.pid} exit 3\n")


class LosingConnector(ProcConnector):
    """At its first receive, lets ``seconds`` pass and reports a loss. ``drop``: the events of
    that time are lost; else they stay queued and come after the loss, as the kernel's events
    queued before an overrun do (the error is reported before them). ``then`` runs just
    before the loss is reported."""

    seconds = 0.0
    drop = True
    then: Callable[[], object] = staticmethod(lambda: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.losing = True

    def recv_batch(self, timeout: float | None = None, **kwargs: Any) -> list[ProcEvent]:
        if self.losing:
            self.losing = False
            until = time.monotonic() + self.seconds
            while (left := until - time.monotonic()) > 0:
                if not self.drop:
                    time.sleep(left)
                    break
                with contextlib.suppress(OverrunError):
                    super().recv_batch(left)
            self.then()
            raise OverrunError(None)
        return super().recv_batch(timeout, **kwargs)


@pytest.mark.parametrize(
    ("mode", "lose", "seen"),
    [
        ("slow", 0.5, True),  # thread start and leader exit lost, then the thread's exit(5)
        ("leader-first", 3.0, False),  # all lost: the zombie's status from /proc
    ],
)
def test_a_loss_is_made_up_from_proc(
    shape: Shapes, monkeypatch: pytest.MonkeyPatch, mode: str, lose: float, seen: bool
) -> None:
    monkeypatch.setattr(LosingConnector, "seconds", lose)
    monkeypatch.setattr(wait, "ProcConnector", LosingConnector)
    process = shape.start(mode)
    go_once_threads_are_read(monkeypatch, process)
    ended = wait.wait_for_exits([process.pid], TIMEOUT)[process.pid]
    assert ended is not None and (ended.timestamp_ns is not None) == seen
    assert ended.exit_code in ({0x500} if seen else ZOMBIE_STATUSES_OF_EXIT_5)


def test_after_a_loss_an_exit_received_gives_the_status_of_a_process_already_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its exit comes after the loss (it was queued before it); /proc no longer has it."""
    process = subprocess.Popen(["/bin/sh", "-c", "read go; exit 3"], stdin=subprocess.PIPE)
    try:
        monkeypatch.setattr(LosingConnector, "seconds", 1.0)
        monkeypatch.setattr(LosingConnector, "drop", False)
        monkeypatch.setattr(LosingConnector, "then", staticmethod(lambda: process.wait(timeout=10)))
        monkeypatch.setattr(wait, "ProcConnector", LosingConnector)
        go_once_threads_are_read(monkeypatch, process)
        ended = wait.wait_for_exits([process.pid], TIMEOUT)[process.pid]
    finally:
        process.kill()
        process.wait(timeout=10)
    assert ended == wait.Ended(process.pid, 0x300, None)
