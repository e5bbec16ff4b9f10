"""``python -m benchmarks.memory``: the command's memory over a long churn, with and without
huge command lines.

The command (default mode, ``--json``) runs while ROUNDS rounds of EXECS short execs each go by;
its resident set (``VmRSS``) is read after each round, once it has shown a marker exec run after
the round.
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
import threading
import time

from pyprocconn.check import in_the_group

HUGE_ARGS = ["x" * (128 * 1024 - 1)] * 8  # ~1 MiB: MAX_ARG_STRLEN is 128 KiB per string
LIVE_HUGE = 40


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Command:
    """The command under test, its JSON lines read by a thread (so a marker can be awaited)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyprocconn", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.seen: set[str] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if b"MEMORY-MARK-" in line:
                self.seen.add(line.split(b"MEMORY-MARK-")[1].split(b'"')[0].decode())

    def drained(self, mark: str, timeout: float = 120.0) -> None:
        """Until the command has shown the exec of a marker process run after the round (it
        lives 0.3 s, so its command line is read): everything before it has been read."""
        subprocess.run(["/bin/sh", "-c", "sleep 0.3", f"MEMORY-MARK-{mark}"], check=True)
        deadline = time.monotonic() + timeout
        while mark not in self.seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the command never showed MEMORY-MARK-{mark}")
            time.sleep(0.05)


def _subscribed(pid: int, timeout: float = 15.0) -> None:
    """Until ``pid`` has a socket in the process events group (/proc/net/netlink)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if in_the_group(pid):
            time.sleep(0.3)  # and a moment for its LISTEN
            return
        time.sleep(0.02)
    raise RuntimeError("the command never subscribed")


def _round(execs: int, huge: bool) -> None:
    extra = HUGE_ARGS if huge else []
    alive = [
        subprocess.Popen(["/bin/sh", "-c", "sleep 30", "sh", *extra])
        for _ in range(LIVE_HUGE if huge else 0)
    ]
    argv = ["/bin/true", *extra]
    for _ in range(execs):  # posix_spawn: no copy of this process to fork each time
        os.waitpid(os.posix_spawn("/bin/true", argv, os.environ), 0)
    for process in alive:
        process.kill()
        process.wait()


def measure(rounds: int, execs: int, huge: bool) -> list[int]:
    """RSS in KiB: at the start, then after each round."""
    command = Command()
    pid = command.process.pid
    try:
        _subscribed(pid)
        sizes = [_rss_kib(pid)]
        for number in range(rounds):
            _round(execs, huge)
            command.drained(f"{pid}-{number}")
            sizes.append(_rss_kib(pid))
        return sizes
    finally:
        command.process.send_signal(signal.SIGINT)
        command.process.wait(timeout=30)


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
