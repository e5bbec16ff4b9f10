"""The long fuzz run: ``python -m tests.fuzz [CASES] [SEED]`` (default 1,000,000 cases).

Random mutations of the golden kernel datagrams and random bytes, each checked with the same
oracle as the hypothesis tests (tests/fuzz_oracle.py). Prints progress and a summary; any
property violation stops the run with the failing input in hex.
"""

from __future__ import annotations

import random
import struct
import sys
import time

from tests.fuzz_oracle import SEEDS, check

FIELDS = [0, 4, 6, 16, 20, 24, 28, 32, 36, 52, 56, 60, 64]
VALUES = [
    0,
    1,
    2,
    3,
    4,
    15,
    16,
    35,
    36,
    40,
    52,
    75,
    76,
    77,
    0x200,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
]


def mutate(rng: random.Random) -> bytes:
    if rng.random() < 0.1:
        return rng.randbytes(rng.randrange(0, 200))
    data = bytearray(b"".join(rng.choice(SEEDS) for _ in range(rng.randint(1, 4))))
    for _ in range(rng.randint(0, 5)):
        if not data:
            break
        action = rng.randrange(4)
        if action == 0:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1:
            base = 76 * rng.randrange(max(1, len(data) // 76)) + rng.choice(FIELDS)
            if base + 4 <= len(data):
                struct.pack_into("=I", data, base, rng.choice(VALUES))
        elif action == 2:
            del data[rng.randrange(len(data) + 1) :]
        else:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.randbytes(rng.randrange(1, 9))
    return bytes(data)


def main() -> int:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    started = time.monotonic()
    for case in range(1, cases + 1):
        data = mutate(rng)
        poison = rng.randbytes(rng.randint(1, 32))
        try:
            check(data, poison)
        except AssertionError:
            print(f"property violated at case {case}: data={data.hex()} poison={poison.hex()}")
            raise
        if case % 100_000 == 0:
            print(f"{case:,} cases, {time.monotonic() - started:.0f} s", flush=True)
    print(f"{cases:,} cases passed (seed {seed}) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
