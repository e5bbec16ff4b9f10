"""``pyprocconn``: print the kernel layouts this build uses (the event monitor replaces this)."""

from __future__ import annotations

import ctypes

from pyprocconn.kernel import cn_proc, connector, netlink


def main() -> int:
    for module in (netlink, connector, cn_proc):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, (ctypes.Structure, ctypes.Union)):
                if not name.startswith("_"):
                    print(
                        f"{module.__name__.rsplit('.', 1)[1]}.{name}: {ctypes.sizeof(value)} bytes"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
