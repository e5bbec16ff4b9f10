"""Rough edges a new user hit in the library, each pinned by a test (issue 10, items 6 to 10)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pyprocconn as pc
from pyprocconn.connector import MAX_RCVBUF
from pyprocconn.kernel import netlink
from tests import triggers
from tests.paths import silence, ticking

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden.json").read_text())
GOLDEN_FORK = bytes.fromhex(GOLDEN["datagrams"]["fork"]["hex"])
live = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")


def test_events_before_an_overrun_come_with_the_error() -> None:
    overrun = bytes(netlink.nlmsghdr(nlmsg_len=pc.SIZE_NLMSGHDR, nlmsg_type=pc.NLMSG_OVERRUN))
    with pytest.raises(pc.OverrunError) as caught:
        pc.parse_events(GOLDEN_FORK + overrun)
    assert [type(e) for e in caught.value.events] == [pc.ForkEvent]
    assert caught.value.events == pc.parse_events(GOLDEN_FORK)


def test_event_types_by_name() -> None:
    assert pc.EventType.from_name("exec") == pc.EventType.EXEC == pc.EventType.from_name("EXEC")
    assert pc.EventType.from_names("exec, exit") == pc.EventType.EXEC | pc.EventType.EXIT
    with pytest.raises(ValueError, match="unknown event type 'forks'"):
        pc.EventType.from_name("forks")


@live
def test_a_buffer_too_small_is_an_error_and_loses_nothing() -> None:
    with pc.ProcConnector() as conn:
        while conn._pending:  # nothing decoded and waiting inside the connector
            with contextlib.suppress(pc.OverrunError):
                conn.recv_batch(0)
        pid = triggers.exit_with(0)  # queued by now: the kernel sends before the parent reaps
        with pytest.raises(ValueError, match="smaller than the next datagram"):
            conn.recv_timeout(1.0, buf=bytearray(40))
        seen: list[pc.ProcEvent] = []
        deadline = time.monotonic() + 10
        while not any(getattr(e, "process_pid", None) == pid for e in seen):
            assert time.monotonic() < deadline
            event = conn.recv_timeout(1.0, buf=bytearray(512))
            if event is not None:
                seen.append(event)
        assert conn.stats.malformed == 0
        assert any(isinstance(e, pc.ForkEvent) and e.child_pid == pid for e in seen)


@live
@pytest.mark.parametrize("asked", [2**31, 2**32, 10**14])
def test_a_huge_receive_buffer_is_clamped_not_wrapped(asked: int) -> None:
    with pc.ProcConnector(rcvbuf=asked) as conn:
        assert conn.rcvbuf == 2 * MAX_RCVBUF  # the most the kernel can hold, not the least


@live
@pytest.mark.parametrize("asked", [0, -5, 1.5, "big"])
def test_a_nonsense_receive_buffer_is_refused(asked: object) -> None:
    with pytest.raises(ValueError, match="rcvbuf must be a positive number of bytes"):
        pc.ProcConnector(rcvbuf=asked)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("asked", "says"),
    [
        ({"ack_timeout": 0}, "ack_timeout must be a number of seconds above 0"),
        ({"ack_timeout": -1.0}, "ack_timeout must be a number of seconds above 0"),
        ({"linger": -1}, "linger must be a number of seconds 0 or more"),
        ({"ack_timeout": float("nan")}, "ack_timeout must be a number of seconds above 0"),
        ({"linger": "1ms"}, "linger must be a number of seconds 0 or more"),
        ({"linger": float("inf")}, "linger must be a number of seconds 0 or more"),
    ],
)
def test_nonsense_times_are_refused_before_subscribing(asked: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        pc.ProcConnector(**asked)  # type: ignore[arg-type]


@live
def test_the_natural_calls() -> None:
    with pc.ProcConnector(events="ptrace") as conn:
        assert conn.events == pc.EventType.PTRACE
        silence(conn)  # nothing comes, whatever other programs do
        assert conn.recv_timeout(0.2) is None  # the timeout first, as Python calls go
    with pc.ProcConnector(events="exec,exit") as conn:
        assert conn.events == pc.EventType.EXEC | pc.EventType.EXIT


def _from_another_thread(call: Callable[[], object]) -> object:
    """What ``call`` gives (or raises) in a thread of its own."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as error:  # the error is the result
            result.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return result[0]


@live
def test_iterations_ending_in_any_order_release_the_connector() -> None:
    """Found in review: iterations that end in the order they began (as asyncio closes
    abandoned async generators) must leave the connector to other threads afterwards."""
    with pc.ProcConnector() as conn:
        subprocess.run(["/bin/true"], check=True)
        time.sleep(0.2)
        first, second = iter(conn), iter(conn)
        next(first)
        next(second)
        first.close()  # the second still runs: the thread is still inside
        assert isinstance(_from_another_thread(lambda: conn.recv_timeout(0.1)), RuntimeError)
        second.close()
        with ticking():
            assert isinstance(_from_another_thread(lambda: conn.recv_timeout(5)), pc.ProcEvent)

        async def twice() -> None:
            for _ in range(2):
                subprocess.run(["/bin/true"], check=True)
                async for _event in conn:
                    break  # abandoned: asyncio closes it at shutdown, in start order

        asyncio.run(twice())
        with ticking():
            assert isinstance(_from_another_thread(lambda: conn.recv_timeout(5)), pc.ProcEvent)


@live
def test_a_second_thread_is_told_the_rule_with_events_already_decoded() -> None:
    """recv's shortcut (an event already decoded) is not a way around the rule."""
    with pc.ProcConnector() as conn:
        subprocess.run(["/bin/true"], check=True)
        time.sleep(0.2)  # its fork, exec and exit are queued: one receive decodes them all
        iterator = iter(conn)
        next(iterator)  # this thread is inside, the other events wait decoded
        try:
            for call in (conn.recv, lambda: conn.recv_timeout(0.1)):
                assert isinstance(_from_another_thread(call), RuntimeError)
        finally:
            iterator.close()


@live
def test_two_threads_on_one_connector_are_told_the_rule() -> None:
    name = f"pyprocconn{os.getpid() % 100000}"  # this test's comm change, not another's
    with pc.ProcConnector(events="comm") as conn:
        inside = threading.Event()
        results: list[object] = []

        def reader() -> None:
            iterator = iter(conn)
            inside.set()
            for item in iterator:  # blocks in this thread until this test's comm change
                if isinstance(item, pc.CommEvent) and item.comm == name:
                    results.append(item)
                    break

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        assert inside.wait(5)
        time.sleep(0.2)
        try:
            for call in (lambda: conn.recv_timeout(0.1), lambda: conn.recv_batch(0.1)):
                with pytest.raises(RuntimeError, match="one thread at a time"):
                    call()
        finally:  # whatever happened, let the reader finish
            with ticking(0.2, lambda: triggers.set_comm(name)):
                thread.join(timeout=15)
        assert not thread.is_alive() and isinstance(results[0], pc.CommEvent)
        conn.recv_batch(0.1)  # the reader is done: this thread may use it now, no error


def test_errors_and_losses_pickle_with_every_argument() -> None:
    # multiprocessing and concurrent.futures pickle exceptions: nothing may be garbled or lost.
    overrun = pickle.loads(pickle.dumps(pc.OverrunError(5, cpu=1)))
    assert (overrun.lost, overrun.cpu, overrun.loss) == (5, 1, pc.EventsLost(5, 1))
    assert str(overrun).startswith("the kernel dropped 5 process events on cpu 1")
    malformed = pickle.loads(pickle.dumps(pc.MalformedMessageError("bad", 12)))
    assert (str(malformed), malformed.offset) == ("bad", 12)
    assert pickle.loads(pickle.dumps(pc.EventsLost(3, None))) == pc.EventsLost(3, None)
