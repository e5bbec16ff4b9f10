"""``python -m benchmarks``: the decoder and live benchmarks (:mod:`benchmarks.live`, where the
harness lives, so that the modules sharing it import it once)."""

import sys

from benchmarks.live import main

if __name__ == "__main__":
    sys.exit(main())
