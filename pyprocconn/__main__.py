"""``python -m pyprocconn``: the same as the ``pyprocconn`` command."""

import sys

from pyprocconn.cli import main

if __name__ == "__main__":
    sys.exit(main())
