"""``python -m benchmarks``: the decoder and live benchmarks (:mod:`benchmarks.live`; the harness
the live benchmarks share is :mod:`benchmarks.harness`)."""

import sys

from benchmarks.live import main

if __name__ == "__main__":
    sys.exit(main())
