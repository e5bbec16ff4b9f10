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
from tests.paths import PATHS, Item, forged_ack, forged_exec, forger, gather, ticking
from tests.triggers import of

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


def _true_on(cpu: int) -> None:
    subprocess.run(["/bin/true"], preexec_fn=lambda: os.sched_setaffinity(0, {cpu}), check=True)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a second CPU puts a gap mid-batch")
@pytest.mark.parametrize("path", ["recv", "recv_timeout"])
def test_a_loss_inside_a_batch_is_raised_not_handed_out(path: str) -> None:
    """Loss on two CPUs, then an event on each: one receive takes both gaps, the second CPU's
    behind events of the first. The one-event methods raise at each, never return a marker."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    gaps: list[int | None] = []

    def take() -> None:
        try:
            item = conn.recv() if path == "recv" else conn.recv_timeout(timeout=0.5)
        except pc.OverrunError as error:
            gaps.append(error.lost)
        else:
            assert not isinstance(item, pc.EventsLost), item  # (typed as an event: it must be)

    with pc.ProcConnector(rcvbuf=4096) as conn:
        for n in range(150):
            _true_on(cpus[n % 2])
        take()  # the overrun, first; the events queued before it are taken along
        assert gaps == [None]
        for cpu in cpus:
            _true_on(cpu)  # after the loss: reveals its CPU's gap
        time.sleep(0.2)
        deadline = time.monotonic() + 10
        with ticking():
            while len(gaps) < 3 and time.monotonic() < deadline:
                take()
        assert len(gaps) == 3 and sum(lost or 0 for lost in gaps) == conn.stats.lost, gaps


@pytest.mark.parametrize("path", ["recv_timeout", "recv_timeout_buf", "recv_batch"])
def test_deadlines_are_kept_from_both_sides(path: str) -> None:
    """A 1 s timeout with nothing to receive ends after 1 s, and not much later (the bound is
    generous for a loaded machine, far below what a 1.5x wait would take)."""
    with pc.ProcConnector(events=pc.EventType.PTRACE) as conn:
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
        assert not any(isinstance(e, pc.AckEvent) for e in conn.recv_batch(0.2))
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
    connector of every test before this one unsubscribed)."""
    if listeners_at_start:
        pytest.skip(
            "another program listened when the session started; "
            "test_every_way_of_closing_unsubscribes checks each socket instead"
        )
    for _ in range(100):
        pc.ProcConnector().close()
    assert not paths.passive_member_sees_events()


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
