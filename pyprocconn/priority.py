"""The listener's place in the scheduler, which decides the race with short-lived processes.

A process that execs and exits within a millisecond leaves no command line to read unless the
listener runs while it lives. Three levers, measured by ``benchmarks.capture``: a nice value
(a weight: the listener gets the CPU more often), a short time slice (a task with a shorter
slice than the running one preempts it at wake-up: EEVDF, Linux 6.12+; allowed unprivileged),
and ``SCHED_FIFO`` (wins every race, and can starve the machine under a fork storm).

The slice is set with ``sched_setattr``, whose ``struct sched_attr`` and syscall numbers come
from the generated layer (``sched_types.h``, x86-64's ``unistd_64.h``); a layer generated
without them, or another architecture, runs without it.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
from typing import Final

from pyprocconn import _libc

try:
    from pyprocconn.kernel import sched_types, unistd_64
except ImportError:  # a layer generated from the three connector headers only
    sched_types = unistd_64 = None  # type: ignore[assignment]

HIGHEST_NICE: Final = -20  # the nice value that weighs most (setpriority(2))
# The kernel's least slice for a fair task (it clamps to 0.1 ms .. 100 ms).
SHORTEST_SLICE: Final = 100e-6
# unistd_64.h numbers x86-64's 64-bit system calls; elsewhere they mean other calls.
_SYSCALLS: Final = (
    unistd_64 is not None
    and sched_types is not None
    and platform.machine() == "x86_64"
    and ctypes.sizeof(ctypes.c_void_p) == 8
)
_FAIR_POLICIES: Final = (os.SCHED_OTHER, os.SCHED_BATCH)


def raise_priority(nice: int | None = None, realtime: bool = False) -> None:
    """Run the calling thread at ``nice`` (``HIGHEST_NICE`` weighs most) or under
    ``SCHED_FIFO``, so the exec capture wins the race with short-lived processes. Needs
    CAP_SYS_NICE (or a fitting RLIMIT_NICE / RLIMIT_RTPRIO): raises :class:`PermissionError`
    without it."""
    if realtime:
        priority = os.sched_get_priority_max(os.SCHED_FIFO)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    elif nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def time_slice() -> float | None:
    """The calling thread's time slice in seconds (what the fair scheduler gives it), or None
    where it cannot be read here (no ``sched_getattr`` in this layer) or is not a fair task's."""
    if not _SYSCALLS:
        return None
    attr = _getattr()
    if attr.sched_policy not in _FAIR_POLICIES or not attr.sched_runtime:
        return None
    return int(attr.sched_runtime) / 1e9


def shorten_slice(seconds: float = SHORTEST_SLICE) -> float | None:
    """Ask for a ``seconds`` time slice for the calling thread (a fair task: SCHED_OTHER or
    SCHED_BATCH; its policy and nice value are kept). Returns the slice now in effect, or
    None where there is none to set: this layer has no ``sched_setattr``, the thread runs under
    another policy, or the kernel keeps no slice per task (before 6.12). No privilege needed."""
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"a time slice is a positive number of seconds, not {seconds!r}")
    if not _SYSCALLS:
        return None
    attr = _getattr()
    if attr.sched_policy not in _FAIR_POLICIES:
        return None
    attr.size = sched_types.SCHED_ATTR_SIZE_VER0  # the fields set here; util hints untouched
    attr.sched_flags = 0
    attr.sched_runtime = round(seconds * 1e9)
    _libc.call("syscall", unistd_64.__NR_sched_setattr, 0, ctypes.byref(attr), 0, 0)
    return time_slice()  # as the kernel clamped it


def _getattr() -> sched_types.sched_attr:
    attr = sched_types.sched_attr()
    size = ctypes.sizeof(attr)
    _libc.call("syscall", unistd_64.__NR_sched_getattr, 0, ctypes.byref(attr), size, 0)
    return attr
