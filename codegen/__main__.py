"""``python -m codegen``: regenerate ``pyprocconn/kernel/`` from ``headers/``, or check it."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from codegen.cparse import GeneratorError, parse_header
from codegen.render import render

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEADERS = ROOT / "headers"
DEFAULT_OUTPUT = ROOT / "pyprocconn" / "kernel"
HEADERS = ("cn_proc.h", "connector.h", "netlink.h")


def generate(headers: Path, command: str) -> dict[str, str]:
    """File name -> generated text, for the three headers found in ``headers``."""
    missing = [name for name in HEADERS if not (headers / name).is_file()]
    if missing:
        raise GeneratorError(f"{headers}: missing {', '.join(missing)}")
    return render([parse_header(headers / name) for name in HEADERS], command)


# Written into every banner; the same whatever folders were given, so output is reproducible.
COMMAND = "python -m codegen  (--headers DIR --output DIR for other headers)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument(
        "--headers",
        type=Path,
        default=DEFAULT_HEADERS,
        help="folder holding cn_proc.h, connector.h and netlink.h (default: headers/)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder to write the modules to (default: pyprocconn/kernel/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output folder is not what the "
        "headers and templates give",
    )
    args = parser.parse_args(argv)
    try:
        files = generate(args.headers, COMMAND)
    except GeneratorError as error:
        print(f"codegen: error: {error}", file=sys.stderr)
        return 1
    stale = []
    for name, text in files.items():
        target = args.output / name
        current = target.read_text() if target.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
            diff = difflib.unified_diff(
                (current or "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{target} (checked in)",
                f"{target} (generated)",
                n=1,
            )
            sys.stderr.writelines(list(diff)[:40])
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"codegen: wrote {target}")
    if stale:
        print(
            f"codegen: stale: {', '.join(stale)} in {args.output}: headers or templates changed;"
            " regenerate with python -m codegen (and the same --headers/--output)",
            file=sys.stderr,
        )
        return 1
    if args.check:
        print(f"codegen: {args.output} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
