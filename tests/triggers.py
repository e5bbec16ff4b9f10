"""Make the kernel emit each process event on purpose, from child processes we can match by pid."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pyprocconn as pc

PTRACE_DETACH = 17  # <sys/ptrace.h>
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PR_SET_NAME = 15  # <linux/prctl.h>

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_libc.ptrace.restype = ctypes.c_long

E = TypeVar("E", bound=pc.ProcEvent)


def python_child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def run_python(code: str) -> int:
    """Run ``code`` in a child Python; return its pid once it has exited."""
    child = python_child(code)
    child.wait(timeout=30)
    return child.pid


def run_python_args(code: str, *args: str) -> int:
    """Like :func:`run_python`, with command-line arguments (as ``sys.argv[1:]``)."""
    child = subprocess.Popen([sys.executable, "-c", code, *args])
    child.wait(timeout=30)
    return child.pid


def true_on(cpu: int) -> int:
    """Run /bin/true on ``cpu`` (its exit happens there); its pid, once it has ended (its events
    are queued by then: the kernel sends them before the parent can reap it)."""
    child = subprocess.Popen(["taskset", "-c", str(cpu), "/bin/true"])  # (no preexec_fn: threads)
    child.wait(timeout=30)
    return child.pid


def exit_with(status: int) -> int:
    child = subprocess.Popen(["/bin/sh", "-c", f"exit {status}"])
    child.wait(timeout=30)
    return child.pid


def killed_by_sigkill() -> int:
    child = subprocess.Popen(["sleep", "30"])
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return child.pid


def set_ids(ruid: int, euid: int, rgid: int, egid: int) -> int:
    return run_python(
        f"import os; os.setresgid({rgid}, {egid}, {egid}); os.setresuid({ruid}, {euid}, {euid})"
    )


def set_sid() -> int:
    return run_python("import os; os.setsid()")


def set_comm(name: str) -> int:
    return run_python(
        "import ctypes; libc = ctypes.CDLL(None); "
        f"libc.prctl({PR_SET_NAME}, ctypes.c_char_p({name.encode()!r}), 0, 0, 0)"
    )


def abort_without_core() -> int:
    return run_python(
        "import os, resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.abort()"
    )


def ptrace_seize_and_detach() -> int:
    """Seize a child, stop it, detach it; the tracer is this process (its main thread)."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        if _libc.ptrace(PTRACE_SEIZE, child.pid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "PTRACE_SEIZE")
        _libc.ptrace(PTRACE_INTERRUPT, child.pid, None, None)
        os.waitpid(child.pid, 0)  # the interrupt stop
        if _libc.ptrace(PTRACE_DETACH, child.pid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "PTRACE_DETACH")
    finally:
        child.kill()
        child.wait(timeout=30)
    return child.pid


def forged_exec(pid: int) -> bytes:
    """A well-formed exec event datagram for ``pid``, as only the kernel should send."""
    event = pc.kernel.cn_proc.proc_event(what=pc.PROC_EVENT_EXEC)
    event.event_data.exec.process_pid = event.event_data.exec.process_tgid = pid
    body = pc.kernel.connector.cn_msg(
        id=pc.kernel.connector.cb_id(idx=pc.CN_IDX_PROC, val=pc.CN_VAL_PROC),
        len=ctypes.sizeof(event),
    )
    header = pc.kernel.netlink.nlmsghdr(
        nlmsg_len=pc.SIZE_NLMSGHDR + pc.SIZE_CN_MSG + ctypes.sizeof(event),
        nlmsg_type=pc.NLMSG_DONE,
    )
    return bytes(header) + bytes(body) + bytes(event)


def collect(
    conn: pc.ProcConnector,
    done: Callable[[list[pc.ProcEvent]], bool],
    timeout: float = 10.0,
) -> list[pc.ProcEvent]:
    """Receive until ``done(events)`` or ``timeout`` seconds pass (bounded, never hangs)."""
    events: list[pc.ProcEvent] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            events.extend(conn.recv_batch(min(remaining, 0.5)))
        except pc.OverrunError:
            continue
    return events


def of(events: Iterable[Any], cls: type[E], pid: int, key: str = "process_pid") -> list[E]:
    return [e for e in events if isinstance(e, cls) and getattr(e, key) == pid]


# Triggers that also return the raw wait(2) status the parent got from waitpid: the value an EXIT
# event's exit_code encodes, known without decoding any event (tests/fixtures/capture_golden.py).
ABORT_WITHOUT_CORE_CODE = (
    "import os, resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.abort()"
)


def reap(child: subprocess.Popen[bytes]) -> int:
    """Wait for ``child`` with waitpid(2) and return the raw wait status (Popen keeps only -sig)."""
    _, status = os.waitpid(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return status


def exit_with_reaped(status: int) -> tuple[int, int]:
    """``/bin/sh -c "exit STATUS"``: its pid and wait status."""
    child = subprocess.Popen(["/bin/sh", "-c", f"exit {status}"])
    return child.pid, reap(child)


def killed_by_sigkill_reaped() -> tuple[int, int]:
    """A ``sleep 30`` killed with SIGKILL: its pid and wait status."""
    child = subprocess.Popen(["sleep", "30"])
    child.send_signal(signal.SIGKILL)
    return child.pid, reap(child)


def abort_without_core_reaped() -> tuple[int, int]:
    """A Python child that sets RLIMIT_CORE to 0 and aborts: its pid and wait status."""
    child = python_child(ABORT_WITHOUT_CORE_CODE)
    return child.pid, reap(child)
