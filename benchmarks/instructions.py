"""``python -m benchmarks.instructions REV``: the CPU instructions each decode path costs per
event, this tree against git revision REV, counted by valgrind (``apt install valgrind``).

A shared VM moves wall-clock timings by 5-10 % from one run to the next; an instruction count
does not move, so it settles a change of a few percent that ``benchmarks.compare`` cannot. Each
workload runs at two repetition counts under ``valgrind --tool=callgrind`` and the difference is
divided by the extra events, so start-up and imports cancel out. It counts instructions, not
time (a cache miss costs more than an add): it complements the timed benchmarks, not replaces
them.

Workloads, on the captured kernel datagrams (fork, exec, exit in turn):
- ``recording``: ``parse_events`` over 3,000 datagrams back to back;
- ``per datagram``: ``parse_events`` on one datagram at a time;
- ``batch``: the connector's decoder on a full ``recvmmsg`` batch (64 slots), tracking
  sequences, as in a storm;
- ``one datagram``: the same decoder on a batch of one, as in a blocking ``recv()``;
- ``other kinds``: the batch decoder on comm events and a thread's exits (exit_signal -1), which
  the fast path cannot read as signed words.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.compare import export

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden.json"

# Run in each tree's own process. The connector's decoder had another shape before the
# regeneration rewrite (parse.decode_slots with a DecodeState): both are known here.
WORKLOAD = """
import json, sys
tree, name, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, tree)
import pyprocconn as pc
golden = json.load(open(sys.argv[4]))["datagrams"]
THREAD_EXIT = sys.argv[5]
mix = [bytes.fromhex(golden[n]["hex"]) for n in ("fork", "exec", "exit")]
if name == "other kinds":  # a comm, and a thread's exit as 6.18 sends it (exit_signal -1)
    mix = [bytes.fromhex(golden["comm"]["hex"]), bytes.fromhex(THREAD_EXIT)] * 2
slots, slot_size = (1 if name == "one datagram" else 64), 1024
buffer = bytearray(slots * slot_size)
headers = [(0, len(mix[i % 3])) for i in range(slots)]
for i in range(slots):
    buffer[i * slot_size : i * slot_size + len(mix[i % 3])] = mix[i % 3]
try:
    from pyprocconn.decode import Stream, decode
    stream = Stream()
    def receive():
        decode(buffer, iter(headers), [], stream, False, slot_size, None)
except ImportError:
    from pyprocconn.parse import DecodeState, decode_slots
    stream = DecodeState()
    def receive():
        decode_slots(buffer, slot_size, iter(headers), None, [], stream)
joined = b"".join(mix * 1000)
run = {
    "recording": lambda: pc.parse_events(joined),
    "per datagram": lambda: [pc.parse_events(d) for d in mix],
}.get(name, receive)
for _ in range(repeat):
    run()
"""
THREAD_EXIT = (
    "4c0000000300000000000000000000000100000001000000070000000000000028000000000000800100000005"
    "000000000000000a0000000900000000000000ffffffff0100000001000000"
)
EVENTS_PER_RUN = {"recording": 3000, "per datagram": 3, "batch": 64, "one datagram": 1,
                  "other kinds": 64}  # fmt: skip
REPEATS = {"recording": (4, 24), "per datagram": (2000, 12000), "batch": (100, 600),
           "one datagram": (5000, 30000), "other kinds": (100, 600)}  # fmt: skip


def instructions(tree: Path, workload: str, repeat: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-S", "-c", WORKLOAD, str(tree), workload, str(repeat), str(GOLDEN), THREAD_EXIT],
        # -S and a bare directory: nothing but the tree given (no editable install) is found
        cwd=tempfile.gettempdir(),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no count from valgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def per_event(tree: Path, workload: str) -> float:
    low, high = REPEATS[workload]
    extra = instructions(tree, workload, high) - instructions(tree, workload, low)
    return extra / ((high - low) * EVENTS_PER_RUN[workload])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("revision", help="the git revision to compare against (e.g. HEAD~3)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("needs valgrind: apt install valgrind")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"old": export(args.revision, Path(scratch)), "new": Path(__file__).parent.parent}
        print(f"# instructions per event: {args.revision} (old) against this tree (new)\n")
        print("| decode path | old | new | new / old |\n|---|---:|---:|---:|")
        for workload in EVENTS_PER_RUN:
            old, new = (per_event(trees[name], workload) for name in ("old", "new"))
            print(f"| {workload} | {old:,.0f} | {new:,.0f} | {new / old:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
