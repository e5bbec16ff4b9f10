"""Property-based fuzzing of the parsers (short run here; ``python -m tests.fuzz`` runs long)."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_oracle import SEEDS, check

EXAMPLES = int(os.environ.get("PYPROCCONN_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.binary(max_size=400), st.binary(min_size=1, max_size=64))
def test_arbitrary_bytes(data: bytes, poison: bytes) -> None:
    check(data, poison)


@st.composite
def mutated_datagrams(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4))
    data = bytearray(b"".join(parts))
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 3))
        if choice == 0:  # flip a byte
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.integers(0, 255))
        elif choice == 1:  # rewrite a 16- or 32-bit field (lengths, types, ids, what)
            index = draw(st.sampled_from([0, 4, 16, 20, 32, 36, 76, 80, 92, 96, 108, 112]))
            if index + 4 <= len(data):
                value = draw(
                    st.sampled_from(
                        [
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
                            0x7FFFFFFF,
                            0x80000000,
                            0xFFFFFFFF,
                        ]
                    )
                )
                struct.pack_into("=I", data, index, value)
        elif choice == 2:  # truncate
            data = data[: draw(st.integers(0, len(data)))]
        else:  # insert junk
            index = draw(st.integers(0, len(data)))
            data[index:index] = draw(st.binary(max_size=8))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(mutated_datagrams(), st.binary(min_size=1, max_size=64))
def test_mutated_kernel_datagrams(data: bytes, poison: bytes) -> None:
    check(data, poison)
