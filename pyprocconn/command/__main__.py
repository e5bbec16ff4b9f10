"""``python -m pyprocconn.command``: the same as the ``pyprocconn`` command."""

import sys

from pyprocconn.command.main import main

if __name__ == "__main__":
    sys.exit(main())
