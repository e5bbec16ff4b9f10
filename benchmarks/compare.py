"""``python -m benchmarks.compare REV``: this tree against git revision REV, side by side in one
run (old first and new first by turns), for a change to the decoder or the receive path.

Decoding: ``parse_events`` on the same recording, each tree in its own process, taken in turn.
Live (root): the fork storm under the same consumer (``benchmarks.consumer``, batch and recv
modes) importing each tree's ``pyprocconn`` in turn, CPU read from outside as in the main
benchmark. Medians, and the ratio new / old (below 1: the change is cheaper).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks.harness import HERE, Listener, build
from benchmarks.storm_round import LiveRound, live, parse_consumer

DECODE = """
import json, sys, time, statistics
sys.path.insert(0, sys.argv[1])
import pyprocconn as pc
golden = json.load(open(sys.argv[2]))["datagrams"]
mix = [bytes.fromhex(golden[n]["hex"]) for n in ("fork", "exec", "exit")]
datagrams = [mix[i % 3] for i in range(30000)]
joined = b"".join(datagrams)
rates = {}
for name, run in (("recording", lambda: len(pc.parse_events(joined))),
                  ("per datagram", lambda: sum(len(pc.parse_events(d)) for d in datagrams))):
    run()
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        count = run()
        samples.append(count / (time.perf_counter() - started))
    rates[name] = statistics.median(samples)
print(json.dumps(rates))
"""


def export(revision: str, into: Path) -> Path:
    """The package of ``revision``, unpacked on its own (its tests and tools not needed)."""
    archive = into / "old.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), revision, "pyprocconn"],
        cwd=HERE.parent,
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "old", filter="data")
    return into / "old"


def decode_rates(tree: Path) -> dict[str, float]:
    golden = HERE.parent / "tests" / "fixtures" / "golden.json"
    done = subprocess.run(
        [sys.executable, "-c", DECODE, str(tree), str(golden)],
        cwd=tempfile.gettempdir(),  # nothing importable here: the tree given wins
        capture_output=True,
        text=True,
        check=True,
    )
    rates: dict[str, float] = json.loads(done.stdout)
    return rates


def in_turn(trees: dict[str, Path], round_number: int) -> list[tuple[str, Path]]:
    """Old first in even rounds, new first in odd ones: whatever drifts during a run (the
    machine's neighbours, pid numbers, caches) weighs on both sides alike."""
    order = list(trees.items())
    return order if round_number % 2 == 0 else order[::-1]


def listener(tree: Path, mode: str) -> Listener:
    """The benchmark's consumer, importing ``pyprocconn`` from ``tree``."""
    code = (
        f"import sys, runpy; sys.path.insert(0, {str(tree)!r}); "
        "runpy.run_module('benchmarks.consumer', run_name='__main__', alter_sys=True)"
    )
    command = [sys.executable, "-c", code, mode, "600"]
    return Listener(f"{tree.name} {mode}", command, signal.SIGUSR1, parse_consumer)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("revision", help="the git revision to compare against (e.g. HEAD~3)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--live-only", action="store_true", help="skip the decoding part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        trees = {"old": export(args.revision, scratch), "new": HERE.parent}
        decoded: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for round_number in range(0 if args.live_only else args.rounds):
            for name, tree in in_turn(trees, round_number):
                for kind, rate in decode_rates(tree).items():
                    decoded[name].setdefault(kind, []).append(rate)
        print(f"# {args.revision} (old) against this tree (new), {args.rounds} rounds\n")
        if not args.live_only:
            print("| parse_events | old events/s | new events/s | new / old |")
            print("|---|---:|---:|---:|")
        for kind in decoded["new"]:
            old, new = (statistics.median(decoded[n][kind]) for n in ("old", "new"))
            print(f"| {kind} | {old:,.0f} | {new:,.0f} | {new / old:.2f} |")
        if os.geteuid() != 0:
            print("\n(live part skipped: needs root)")
            return 0
        storm = build(scratch, "storm.c")
        workers = os.cpu_count() or 2
        print(
            "\n| storm consumer | old CPU/event | new CPU/event | new / old "
            "| inside pyprocconn: old, new | lost old, new |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for mode in ("batch", "recv"):
            rounds: dict[str, list[LiveRound]] = {name: [] for name in trees}
            for round_number in range(args.rounds):
                for name, tree in in_turn(trees, round_number):
                    round_ = live(listener(tree, mode), storm, workers, args.seconds, scratch)
                    rounds[name].append(round_)
            old, new = (
                statistics.median(r.cpu_per_event_us for r in rounds[n]) for n in ("old", "new")
            )
            inside = ", ".join(
                f"{statistics.median(r.library_cpu_per_event_us or 0.0 for r in rounds[n]):.2f} us"
                for n in ("old", "new")
            )
            lost = ", ".join(str(sum(r.lost for r in rounds[n])) for n in ("old", "new"))
            print(f"| {mode} | {old:.2f} us | {new:.2f} us | {new / old:.2f} | {inside} | {lost} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
