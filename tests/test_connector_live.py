"""ProcConnector against the real kernel: every event type triggered on purpose, matched by pid."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

import pyprocconn as pc
from pyprocconn import _libc
from pyprocconn.kernel import netlink
from pyprocconn.wire import SOL_NETLINK, subscription_request
from tests import triggers
from tests.paths import acks_seen, requests_sent, silence, ticking
from tests.triggers import collect, of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")


@pytest.fixture
def conn() -> Iterator[pc.ProcConnector]:
    with pc.ProcConnector() as connector:
        yield connector


def test_subscribes_to_all_events_without_filtering(conn: pc.ProcConnector) -> None:
    assert conn.filter_mode == "none" and conn.events == pc.EventType.ALL
    assert conn.rcvbuf >= pc.DEFAULT_RCVBUF  # the kernel doubles what was asked


def test_fork_exec_exit_of_a_child(conn: pc.ProcConnector) -> None:
    pid = triggers.exit_with(3)
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    (fork,) = of(events, pc.ForkEvent, pid, key="child_pid")
    assert (fork.parent_pid, fork.parent_tgid, fork.child_tgid) == (os.getpid(), os.getpid(), pid)
    assert fork.what == pc.PROC_EVENT_FORK and fork.timestamp_ns > 0
    (exec_,) = of(events, pc.ExecEvent, pid)
    assert exec_.process_tgid == pid
    (exit_,) = of(events, pc.ExitEvent, pid)
    assert (exit_.exit_code, exit_.exit_signal) == (0x300, signal.SIGCHLD)
    assert (exit_.parent_pid, exit_.parent_tgid) == (os.getpid(), os.getpid())
    assert (exit_.exit_status, exit_.term_signal, exit_.core_dumped) == (3, None, False)
    assert exit_.describe_status() == "exit 3"
    assert fork.timestamp_ns <= exec_.timestamp_ns <= exit_.timestamp_ns


def test_exit_by_sigkill(conn: pc.ProcConnector) -> None:
    pid = triggers.killed_by_sigkill()
    (exit_,) = of(collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid))), pc.ExitEvent, pid)
    assert exit_.exit_code == signal.SIGKILL
    assert exit_.describe_status() == "killed by SIGKILL"


def test_uid_and_gid_changes(conn: pc.ProcConnector) -> None:
    pid = triggers.set_ids(ruid=2000, euid=2001, rgid=1000, egid=1001)
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    assert [(e.rgid, e.egid) for e in of(events, pc.GidEvent, pid)] == [(1000, 1001)]
    assert [(e.ruid, e.euid) for e in of(events, pc.UidEvent, pid)] == [(2000, 2001)]
    assert all(e.process_tgid == pid for e in of(events, pc.UidEvent, pid))


def test_setsid(conn: pc.ProcConnector) -> None:
    pid = triggers.set_sid()
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    (sid,) = of(events, pc.SidEvent, pid)
    assert sid.process_tgid == pid


def test_comm_change(conn: pc.ProcConnector) -> None:
    pid = triggers.set_comm("pyprocconn-test")
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    assert [e.comm for e in of(events, pc.CommEvent, pid)] == ["pyprocconn-test"]


def test_ptrace_seize_and_detach(conn: pc.ProcConnector) -> None:
    pid = triggers.ptrace_seize_and_detach()
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    tracers = [(e.tracer_pid, e.tracer_tgid) for e in of(events, pc.PtraceEvent, pid)]
    assert tracers == [(os.getpid(), os.getpid()), (0, 0)]  # attach, then detach


def test_coredump_then_exit_by_sigabrt(conn: pc.ProcConnector) -> None:
    pid = triggers.abort_without_core()
    events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))
    (dump,) = of(events, pc.CoredumpEvent, pid)
    assert (dump.parent_pid, dump.parent_tgid) == (os.getpid(), os.getpid())
    (exit_,) = of(events, pc.ExitEvent, pid)
    assert exit_.term_signal == signal.SIGABRT and exit_.exit_code & 0x7F == signal.SIGABRT
    assert dump.timestamp_ns <= exit_.timestamp_ns


def test_acks_of_other_listeners_arrive_as_ack_events(conn: pc.ProcConnector) -> None:
    """Other listeners' acks are handed out as AckEvents (only the connector's own are kept
    from the caller). Every program's acks reach every all-events listener: the ones checked are
    this test's own requests', by their tokens."""
    token = random.randrange(1 << 16, 1 << 31)
    with acks_seen(conn) as acks:
        with requests_sent() as sent, pc.ProcConnector():
            pass  # its LISTEN and its IGNORE: both accepted
        raw = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, pc.NETLINK_CONNECTOR)
        try:
            raw.bind((0, pc.CN_IDX_PROC))
            raw.sendto(subscription_request(99, None, token), (0, 0))  # not an operation: EINVAL
        finally:
            raw.close()
        answers = {(token + 1) & 0xFFFFFFFF: errno.EINVAL}
        answers |= {(ours + 1) & 0xFFFFFFFF: 0 for _, ours in sent[-2:]}  # LISTEN, IGNORE
        events = collect(conn, lambda e: answers.keys() <= acks.of_events(e).keys())
    found = acks.of_events(events)
    assert {ack: [a.err for a in found.get(ack, [])] for ack in answers} == {
        ack: [err] for ack, err in answers.items()
    }  # positive errno, as the kernel sends it


def test_kernel_filter_delivers_only_exec() -> None:
    with pc.ProcConnector(events=pc.EventType.EXEC) as conn:
        assert conn.filter_mode == "kernel" and conn.events == pc.EventType.EXEC
        pid = triggers.exit_with(0)
        events = collect(conn, lambda e: bool(of(e, pc.ExecEvent, pid)))
        assert of(events, pc.ExecEvent, pid)
        assert {type(e) for e in events} == {pc.ExecEvent}


def test_nonzero_exit_filter() -> None:
    with pc.ProcConnector(events=pc.EventType.NONZERO_EXIT) as conn:
        zero, nonzero = triggers.exit_with(0), triggers.exit_with(5)
        events = collect(conn, lambda e: bool(of(e, pc.ExitEvent, nonzero)))
        assert [e.exit_code for e in of(events, pc.ExitEvent, nonzero)] == [0x500]
        assert not of(events, pc.ExitEvent, zero)
        assert all(isinstance(e, pc.ExitEvent) and e.exit_code for e in events)


def test_forged_datagrams_are_dropped_and_counted(conn: pc.ProcConnector) -> None:
    pid = triggers.exit_with(0)
    collect(conn, lambda e: bool(of(e, pc.ExitEvent, pid)))  # drain what is in flight
    # A well-formed exec event: only its sender (not the kernel, port 0) gives it away.
    fake_pid = 0x7FFFFFF0
    message = triggers.forged_exec(fake_pid)
    assert [getattr(e, "process_pid", None) for e in pc.parse_events(message)] == [fake_pid]
    before = conn.stats.foreign
    # Multicast too (root may), to a group only this test's socket joins: sent to the process
    # events group, the forgery would reach every listener on the machine (other programs and
    # test runs, whose output and counts it would change).
    group = random.randrange(16, 33)  # the kernel's connector users have 1 to 10
    _libc.setsockopt_int(conn.fileno(), SOL_NETLINK, netlink.NETLINK_ADD_MEMBERSHIP, group)
    forger = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, pc.NETLINK_CONNECTOR)
    try:
        forger.bind((0, 0))
        forger.sendto(message, (conn.port_id, 0))  # unicast to the listener's port id
        forger.sendto(message, (0, 1 << (group - 1)))  # multicast
        events = collect(conn, lambda e: conn.stats.foreign >= before + 2, timeout=5)
    finally:
        forger.close()
    assert conn.stats.foreign == before + 2
    assert not of(events, pc.ExecEvent, fake_pid)


def test_overrun_is_reported_with_the_exact_count_and_the_connector_goes_on() -> None:
    """A burst of ours overflows a small buffer: the loss counted from its sequence gaps equals
    what a large-buffer reference received and it did not, CPU by CPU. Other programs' events
    are in both streams; they only lengthen the windows compared."""
    cpus = sorted(os.sched_getaffinity(0))
    reference = pc.ProcConnector(rcvbuf=256 << 20)  # a large buffer: sees everything
    small = pc.ProcConnector()
    got: list[pc.ProcEvent] = []
    overruns = 0

    def receive(until: Callable[[], bool]) -> None:
        nonlocal overruns
        deadline = time.monotonic() + 15
        while not until() and time.monotonic() < deadline:
            try:
                got.extend(small.recv_batch(0.5))
            except pc.OverrunError as error:
                assert error.lost is None or error.lost > 0
                overruns += 1

    def ended(pids: set[int]) -> Callable[[], bool]:
        return lambda: pids <= {e.process_pid for e in got if isinstance(e, pc.ExitEvent)}

    try:
        # First an event of ours on every CPU, received: each CPU's loss is then counted from an
        # event the small listener got (its own subscription's ack, which it keeps from the
        # caller and the reference sees, is before them).
        first = {triggers.true_on(cpu) for cpu in cpus}
        receive(ended(first))
        assert ended(first)()
        overruns_before = small.stats.overruns
        small.rcvbuf = 4096
        for child in [subprocess.Popen(["/bin/true"]) for _ in range(150)]:
            child.wait(timeout=30)  # the small buffer overflows
        # From here on other programs' events cannot overrun it again; it still drops
        # everything until it is drained, by the receive that reads the overrun.
        small.rcvbuf = 64 << 20
        receive(lambda: small.stats.overruns > overruns_before)
        # A CPU's loss shows as a sequence gap at its next event: one of ours on every CPU.
        last = {triggers.true_on(cpu) for cpu in cpus}
        receive(ended(last))
        assert ended(last)() and overruns >= 1 and small.stats.lost > 0, small.stats
        everything = collect(reference, lambda e: got[-1] in e)  # up to where `small` is
        assert reference.stats.lost == 0 and reference.stats.overruns == 0
        mine_from = next(i for i, e in enumerate(got) if _pid_of(e) in first)
        # Loss counted from sequence gaps equals what the reference saw and `small` did not,
        # between the first and last event `small` received on each CPU (from ours on).
        missing = 0
        for cpu in {e.cpu for e in got[mine_from:]}:
            mine = [e for e in got[mine_from:] if e.cpu == cpu]
            theirs = [e for e in everything if e.cpu == cpu]  # in sequence order
            window = theirs[theirs.index(mine[0]) : theirs.index(mine[-1]) + 1]
            assert set(mine) <= set(window)
            missing += len(window) - len(mine)
        assert small.stats.lost == missing
        # Still working after the overrun.
        pid = triggers.exit_with(0)
        assert of(collect(small, lambda e: bool(of(e, pc.ExitEvent, pid))), pc.ExitEvent, pid)
    finally:
        small.close()
        reference.close()


def _pid_of(event: pc.ProcEvent) -> int | None:
    pid: int | None = getattr(event, "process_pid", getattr(event, "child_pid", None))
    return pid


def test_recv_into_a_caller_buffer_and_events_own_their_data(conn: pc.ProcConnector) -> None:
    buffer = bytearray(512)
    pid = triggers.exit_with(0)
    seen: list[pc.ProcEvent] = []
    while not of(seen, pc.ExitEvent, pid):
        event = conn.recv_timeout(5.0, buf=buffer)
        assert event is not None, "no event within 5 s"
        seen.append(event)
    snapshot = [e.to_dict() for e in seen]
    triggers.exit_with(0)
    assert conn.recv_timeout(5.0, buf=buffer) is not None  # the buffer is overwritten...
    assert [e.to_dict() for e in seen] == snapshot  # ...the events are not
    (fork,) = of(seen, pc.ForkEvent, pid, key="child_pid")
    match fork:
        case pc.ForkEvent(child_pid=child, parent_pid=parent):
            assert (child, parent) == (pid, os.getpid())
        case _:
            pytest.fail("match by keyword failed")
    assert hash(fork) == hash(pc.ForkEvent(*fork))
    assert str(fork).startswith(f"fork parent_pid={os.getpid()} ")


def test_recv_timeout_returns_none_when_nothing_comes() -> None:
    with pc.ProcConnector(events=pc.EventType.PTRACE) as conn:
        silence(conn)  # nothing comes, whatever other programs do
        assert conn.recv_timeout(timeout=0.2) is None
        assert conn.recv_batch(timeout=0.2) == []


def test_async_iteration() -> None:
    async def main() -> pc.ExitEvent:
        with pc.ProcConnector() as conn:
            child = await asyncio.create_subprocess_exec("/bin/sh", "-c", "exit 7")
            await child.wait()
            async for event in conn:
                if isinstance(event, pc.ExitEvent) and event.process_pid == child.pid:
                    return event
        raise AssertionError("unreachable")

    event = asyncio.run(asyncio.wait_for(main(), timeout=10))
    assert event.exit_status == 7


def test_blocking_iteration_and_fileno(conn: pc.ProcConnector) -> None:
    import select

    pid = triggers.exit_with(0)
    readable, _, _ = select.select([conn], [], [], 5.0)
    assert readable == [conn]
    deadline = time.monotonic() + 10
    with ticking():  # the loop below is bounded: events keep coming
        for event in conn:
            if isinstance(event, pc.ExitEvent) and event.process_pid == pid:
                break
            assert time.monotonic() < deadline, "the child's exit never came"


def test_close_is_idempotent_and_use_after_close_raises() -> None:
    conn = pc.ProcConnector()
    conn.close()
    conn.close()
    assert conn.closed
    with pytest.raises(ValueError, match="closed"):
        conn.recv_timeout(timeout=0)
    with pytest.raises(ValueError, match="closed"):
        conn.fileno()


def test_use_after_close_raises_with_events_still_queued() -> None:
    conn = pc.ProcConnector()
    try:
        subprocess.run(["/bin/true"], check=True)
        time.sleep(0.2)  # its fork, exec and exit are queued: one receive takes them all
        conn.recv()
        assert conn.recv_timeout(timeout=0) is not None  # decoded and waiting
    finally:
        conn.close()
    with pytest.raises(ValueError, match="closed"):
        conn.recv()
    with pytest.raises(ValueError, match="closed"):
        conn.recv_timeout(timeout=0)


def test_repeated_open_close_leaks_no_descriptor() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        with pc.ProcConnector():
            pass
    assert len(os.listdir("/proc/self/fd")) == before


def test_empty_event_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="no event type"):
        pc.ProcConnector(events=pc.EventType.NONE)


def test_receive_buffer_is_settable_and_readable(conn: pc.ProcConnector) -> None:
    conn.rcvbuf = 1 << 20
    assert conn.rcvbuf == 2 << 20  # the kernel doubles what is asked, for its bookkeeping
    conn.rcvbuf = 16 << 20
    assert conn.rcvbuf == 32 << 20  # root: SO_RCVBUFFORCE, so net.core.rmem_max does not cap it


def test_recv_batch_honours_max_events(conn: pc.ProcConnector) -> None:
    pid = triggers.exit_with(0)
    time.sleep(0.2)  # fork, exec and exit are queued by now
    first = conn.recv_batch(5.0, max_events=2)
    assert 1 <= len(first) <= 2
    rest = collect(conn, lambda e: bool(of(first + e, pc.ExitEvent, pid)))
    assert of(first + rest, pc.ExitEvent, pid)
