"""Property-based fuzzing of the parsers (short run here; ``python -m tests.fuzz`` runs long)."""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import mutate
from tests.fuzz_oracle import check

EXAMPLES = int(os.environ.get("PYPROCCONN_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.binary(max_size=400), st.binary(min_size=1, max_size=64))
def test_arbitrary_bytes(data: bytes, poison: bytes) -> None:
    check(data, poison)


@FUZZ
@given(st.randoms(use_true_random=False), st.binary(min_size=1, max_size=64))
def test_mutated_kernel_datagrams(rng: random.Random, poison: bytes) -> None:
    check(mutate(rng), poison)  # the long run's mutator, driven by hypothesis
