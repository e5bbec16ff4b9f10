"""The generator's one exception type."""

from __future__ import annotations


class GeneratorError(Exception):
    """A header construct the generator does not translate; the message names file and line."""
