"""SECURITY.md's guarantees on every receive path, against the real kernel.

Each path (``recv``, ``recv(buf)``, ``recv_timeout``, ``recv_timeout(buf=...)``, ``recv_batch``,
``for``, ``async for``) gets the same forged senders, stale bytes, forced loss and deadlines.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import subprocess
import time

import pytest

import pyprocconn as pc
from pyprocconn import _libc
from pyprocconn.wire import subscription_request
from tests import paths, triggers
from tests.paths import PATHS, Item, forged_ack, forged_exec, forger, gather, silence, ticking
from tests.triggers import collect, of, true_on

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live kernel tests run as root")
FAKE_PIDS = (0x7FFFFF01, 0x7FFFFF02, 0x7FFFFF03)
FORGED_DATAGRAMS = 70  # more than the connector's 64 batch slots: every slot gets stale bytes


def _fakes(items: list[Item]) -> list[Item]:
    return [e for e in items if getattr(e, "process_pid", None) in FAKE_PIDS]


@pytest.mark.parametrize("path", PATHS)
def test_forged_datagrams_and_stale_bytes_never_surface(path: str) -> None:
    """Forged unicasts (two messages each) from a real socket fill the slots or the caller's
    buffer first; the kernel's shorter datagrams then land on top of their bytes."""
    buffer = bytearray(forged_exec(FAKE_PIDS[2]) * 7)  # the caller's buffer, poisoned
    with pc.ProcConnector() as conn, forger() as sock:
        datagram = forged_exec(FAKE_PIDS[0]) + forged_exec(FAKE_PIDS[1])
        for _ in range(FORGED_DATAGRAMS):
            sock.sendto(datagram, (conn.port_id, 0))
        pid = triggers.exit_with(0)
        with ticking():
            items = gather(conn, path, lambda got: bool(of(got, pc.ExitEvent, pid)), buf=buffer)
        assert of(items, pc.ExecEvent, pid), "the real events came through"
        assert not _fakes(items)
        stats = conn.stats
        assert stats.foreign == FORGED_DATAGRAMS
        assert stats.malformed == 0  # nothing past a datagram's bytes was read as a message
        assert stats.received >= len([e for e in items if isinstance(e, pc.ProcEvent)])


@pytest.mark.parametrize("path", PATHS)
def test_loss_is_reported_on_every_path(path: str) -> None:
    with pc.ProcConnector(rcvbuf=4096) as conn:
        for child in [subprocess.Popen(["/bin/true"]) for _ in range(150)]:
            child.wait(timeout=30)

        def all_loss_reported(items: list[Item]) -> bool:
            markers = [e for e in items if isinstance(e, pc.EventsLost)]
            known = sum(m.lost for m in markers if m.lost is not None)
            unknown = sum(1 for m in markers if m.lost is None)
            stats = conn.stats
            return stats.lost > 0 and (known, unknown) == (stats.lost, stats.overruns)

        with ticking():  # events on every CPU reveal each CPU's sequence gap
            items = gather(conn, path, all_loss_reported, timeout=15)
        stats = conn.stats
        assert stats.overruns >= 1 and stats.lost > 0, stats
        assert all_loss_reported(items), (stats, [e for e in items if type(e) is pc.EventsLost])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a second CPU puts a gap mid-batch")
@pytest.mark.parametrize("path", ["recv", "recv_timeout"])
def test_a_loss_inside_a_batch_is_raised_not_handed_out(path: str) -> None:
    """Loss on two CPUs, then an event of ours on each: the receive after the overrun takes both
    gaps, the second CPU's behind events of the first. The one-event methods raise at each,
    never return a marker.

    Other programs' events may overrun the small buffer too, before or with ours: every loss
    counted must be raised, however many overruns there were."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    raised: list[pc.OverrunError] = []
    ended: set[int] = set()  # pids of the exits received

    def take() -> None:
        try:
            item = conn.recv() if path == "recv" else conn.recv_timeout(timeout=0.5)
        except pc.OverrunError as error:
            raised.append(error)
        else:
            assert not isinstance(item, pc.EventsLost), item  # (typed as an event: it must be)
            if isinstance(item, pc.ExitEvent):
                ended.add(item.process_pid)

    def all_raised() -> bool:
        stats = conn.stats
        known = sum(error.lost for error in raised if error.lost is not None)
        unknown = sum(1 for error in raised if error.lost is None)
        return (known, unknown) == (stats.lost, stats.overruns)

    with pc.ProcConnector() as conn, ticking():  # (a blocking receive always gets something)
        deadline = time.monotonic() + 15
        # First an event of ours on each CPU, received: a CPU's loss is a gap only from an
        # event received there before it.
        primers = {true_on(cpu) for cpu in cpus}
        while not primers <= ended and time.monotonic() < deadline:
            take()
        assert primers <= ended, "the events before the loss never came"
        overruns = conn.stats.overruns
        conn.rcvbuf = 4096
        for n in range(150):
            true_on(cpus[n % 2])
        # From here on other programs' events cannot overrun it again; it still drops
        # everything until drained: by the receive that reads the overrun (the events queued
        # before it come along).
        conn.rcvbuf = pc.DEFAULT_RCVBUF
        while conn.stats.overruns == overruns and time.monotonic() < deadline:
            take()
        # After the loss, ours on each CPU: the first event there reveals its gap, at the
        # latest ours.
        revealers = {true_on(cpu) for cpu in cpus}
        while not (revealers <= ended and all_raised()) and time.monotonic() < deadline:
            take()
        stats = conn.stats
        assert revealers <= ended and all_raised(), (raised, stats)
        assert stats.overruns > overruns and stats.lost > 0, stats
        assert set(cpus) <= {error.cpu for error in raised if error.lost}, raised


@pytest.mark.parametrize("path", ["recv_timeout", "recv_timeout_buf", "recv_batch"])
def test_deadlines_are_kept_from_both_sides(path: str) -> None:
    """A 1 s timeout with nothing to receive ends after 1 s, and not much later (the bound is
    generous for a loaded machine, far below what a 1.5x wait would take)."""
    with pc.ProcConnector(events=pc.EventType.PTRACE) as conn:
        silence(conn)  # nothing to receive, whatever other programs do
        started = time.monotonic()
        result = paths.receive(conn, path)
        elapsed = time.monotonic() - started
    assert result in (None, [])
    assert 1.0 <= elapsed < 1.4, elapsed


def test_a_forged_ack_during_subscription_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forger who knows the request's token answers first, with a refusal: only the kernel's
    own ack counts, so the subscription succeeds and the forgery is counted."""
    real_send = _libc.sendto_kernel
    forged_count = 0
    with forger() as sock:

        def answer_first(fd: int, data: bytes) -> None:
            nonlocal forged_count
            request = pc.kernel.connector.cn_msg.from_buffer_copy(data, pc.SIZE_NLMSGHDR)
            port = _libc.port_id(fd)
            sock.sendto(forged_ack(request.ack, errno.EPERM), (port, 0))
            forged_count += 1
            real_send(fd, data)

        monkeypatch.setattr(_libc, "sendto_kernel", answer_first)
        conn = pc.ProcConnector()
        monkeypatch.undo()
    try:
        assert forged_count >= 1
        assert conn.stats.foreign == forged_count
        # Nor handed out later (other programs' acks are, but none carries this refusal: the
        # kernel here subscribes anyone in the initial namespaces, it never answers EPERM).
        events = collect(conn, lambda e: False, timeout=0.2)
        assert not [e for e in events if isinstance(e, pc.AckEvent) and e.err == errno.EPERM]
    finally:
        conn.close()


def test_a_refused_subscription_raises_with_the_kernels_errno(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel refuses an operation it does not know (EINVAL): the connector must raise it,
    not carry on unsubscribed, and leave no descriptor behind. (The kernel acks only while
    someone listens, so another connector is open meanwhile.)"""
    with pc.ProcConnector():
        gc.collect()
        fds = sorted(os.listdir("/proc/self/fd"))
        monkeypatch.setattr(pc.kernel.cn_proc, "PROC_CN_MCAST_LISTEN", 7)
        try:
            wrongly = pc.ProcConnector(ack_timeout=2.0)
        except OSError as error:
            caught = error
        else:
            # It returned though nothing was subscribed: an IGNORE from it would be counted
            # against another listener's LISTEN (the kernel's count is global), so drop it bare.
            wrongly._owner_pid = -1
            wrongly.close()
            pytest.fail("a refused subscription returned a connector")
        monkeypatch.undo()
        gc.collect()
        assert sorted(os.listdir("/proc/self/fd")) == fds
    assert caught.errno == errno.EINVAL
    assert not isinstance(caught, pc.ConnectorUnavailableError)


def _kernel_still_sends_to(fd: int) -> bool:
    """Whether the kernel still counts the socket behind ``fd`` (a duplicate kept open after the
    connector closed) as a listener. Leaves it unsubscribed either way."""
    sock = socket.socket(fileno=fd)
    try:
        sock.setblocking(False)
        while True:  # what was queued before the unsubscription is not the question
            try:
                sock.recv(65536)
            except BlockingIOError:
                break
        sock.settimeout(0.5)
        subprocess.run(["/bin/true"], check=True)
        try:
            sock.recv(65536)
        except TimeoutError:
            return False
        sock.sendto(subscription_request(pc.PROC_CN_MCAST_IGNORE, None, 1), (0, 0))  # clean up
        return True
    finally:
        sock.close()


@pytest.mark.parametrize("events", [None, pc.EventType.EXEC], ids=["all", "kernel-filtered"])
@pytest.mark.parametrize("how", ["close", "with", "garbage"])
def test_every_way_of_closing_unsubscribes(how: str, events: pc.EventType | None) -> None:
    """The kernel's listener count is the sum of its subscribed sockets, so each socket is
    checked directly, through a duplicate descriptor: this cannot be hidden by other programs'
    listeners on the machine."""
    conn = pc.ProcConnector(events=events)
    duplicate = os.dup(conn.fileno())
    if how == "close":
        conn.close()
    elif how == "with":
        with conn:
            pass
    else:
        del conn
        gc.collect()
    assert not _kernel_still_sends_to(duplicate)


def test_a_subscribed_socket_is_seen_by_the_probe() -> None:
    """The probe above is not blind: a socket still subscribed is reported."""
    conn = pc.ProcConnector()
    duplicate = os.dup(conn.fileno())
    try:
        assert _kernel_still_sends_to(duplicate)  # and the probe unsubscribed it
    finally:
        conn.close()


def test_no_listener_is_left_on_the_machine(listeners_at_start: bool) -> None:
    """Relative to the session's start: if nobody listened then, nobody listens now (every
    connector of every test before this one unsubscribed).

    The kernel keeps one count for the whole machine: it says something about this session
    only while no other process holds a process events socket (another test run, a monitor),
    which is checked on both sides of the probe. (A registration another program leaks during
    the session, its socket gone, cannot be told from one of ours.)"""
    if listeners_at_start:
        pytest.skip(
            "another program listened when the session started; "
            "test_every_way_of_closing_unsubscribes checks each socket instead"
        )
    for _ in range(100):
        pc.ProcConnector().close()
    others = paths.others_in_the_group()
    listening = paths.passive_member_sees_events()
    others |= paths.others_in_the_group()
    if others:
        pytest.skip(
            f"other processes hold process events sockets (inodes {sorted(others)}): the "
            "kernel's count cannot be told from this session's; "
            "test_every_way_of_closing_unsubscribes checks each socket instead"
        )
    assert not listening


def test_a_construction_interrupted_while_waiting_for_the_ack_unsubscribes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C after LISTEN went out and before its ack came: the kernel counted the LISTEN,
    so the failed construction must send IGNORE before closing."""
    duplicates: list[int] = []
    real_bind = _libc.bind_netlink

    def bind_and_keep(fd: int, groups: int) -> None:
        real_bind(fd, groups)
        duplicates.append(os.dup(fd))

    def interrupted(*args: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(_libc, "bind_netlink", bind_and_keep)
    monkeypatch.setattr(pc.ProcConnector, "_fill", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pc.ProcConnector()
    monkeypatch.undo()
    (duplicate,) = duplicates
    assert not _kernel_still_sends_to(duplicate)
