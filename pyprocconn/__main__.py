"""``pyprocconn``: print the kernel layouts this build uses (the event monitor replaces this)."""

from __future__ import annotations

import ctypes

from pyprocconn.kernel import cn_proc, connector, netlink


def main() -> int:
    for module in (netlink, connector, cn_proc):
        short = module.__name__.rsplit(".", 1)[1]
        for name, value in vars(module).items():
            record = isinstance(value, type) and issubclass(value, (ctypes.Structure, ctypes.Union))
            if record and not name.startswith("_"):
                print(f"{short}.{name}: {ctypes.sizeof(value)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
