"""``python -m benchmarks.memory``: the command's memory over a long churn, with and without
huge command lines.

The command (default mode, ``--json`` into /dev/null) runs while ROUNDS rounds of EXECS short
execs each go by; its resident set (``VmRSS``) is read after each round, once it has drained.
In the "huge" workload every exec carries about 1 MiB of arguments (8 x 128 KiB, the kernel's
limit per string) and 40 processes with such command lines stay alive through each round: a
table that kept whole command lines grew by 43 MB on that before ``max_argv`` (4 KiB). Flat
means: the last round within a few MiB of the first.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

HUGE_ARGS = ["x" * (128 * 1024 - 1)] * 8  # ~1 MiB: MAX_ARG_STRLEN is 128 KiB per string
LIVE_HUGE = 40


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _drained(pid: int, timeout: float = 60.0) -> None:
    """Until the command has used no CPU for 0.3 s (it has read everything)."""
    deadline = time.monotonic() + timeout
    before = _cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _cpu_ticks(pid)
        if now == before:
            return
        before = now


def _subscribed(pid: int, timeout: float = 15.0) -> None:
    """Until ``pid`` has a socket in the process events group (/proc/net/netlink)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/netlink") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if fields[1] == "11" and fields[2] == str(pid) and int(fields[3], 16) & 1:
                    time.sleep(0.3)
                    return
        time.sleep(0.02)
    raise RuntimeError("the command never subscribed")


def _round(execs: int, huge: bool) -> None:
    extra = HUGE_ARGS if huge else []
    alive = [
        subprocess.Popen(["/bin/sh", "-c", "sleep 30", "sh", *extra])
        for _ in range(LIVE_HUGE if huge else 0)
    ]
    for _ in range(execs):
        subprocess.run(["/bin/true", *extra], check=True)
    for process in alive:
        process.kill()
        process.wait()


def measure(rounds: int, execs: int, huge: bool) -> list[int]:
    """RSS in KiB: at the start, then after each round."""
    with open(os.devnull, "w") as sink:
        command = subprocess.Popen(
            [sys.executable, "-m", "pyprocconn", "--json"], stdout=sink, stderr=subprocess.PIPE
        )
    try:
        _subscribed(command.pid)
        sizes = [_rss_kib(command.pid)]
        for _ in range(rounds):
            _round(execs, huge)
            _drained(command.pid)
            sizes.append(_rss_kib(command.pid))
        return sizes
    finally:
        command.send_signal(signal.SIGINT)
        command.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--execs", type=int, default=5000)
    args = parser.parse_args()
    print(f"## The command's memory: {args.rounds} rounds of {args.execs:,} execs\n")
    print("| workload | RSS at start | " + " | ".join(f"after {i + 1}" for i in range(args.rounds))
          + " | growth, round 1 to last |")  # fmt: skip
    print("|---|---:|" + "---:|" * args.rounds + "---:|")
    for huge in (False, True):
        sizes = measure(args.rounds, args.execs, huge)
        name = f"~1 MiB of arguments each, {LIVE_HUGE} alive" if huge else "/bin/true"
        cells = " | ".join(f"{size / 1024:.1f} MiB" for size in sizes)
        print(f"| {name} | {cells} | {(sizes[-1] - sizes[1]) / 1024:+.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
