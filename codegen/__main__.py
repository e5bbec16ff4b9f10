"""``python -m codegen``: regenerate ``pyprocconn/kernel/`` from ``headers/``, or check it."""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
from pathlib import Path

from codegen.cparse import GeneratorError, parse_headers
from codegen.model import HeaderModule
from codegen.render import GENERATED, render
from codegen.verify import COMPILER, CompilerUnavailableError, verify

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEADERS = ROOT / "headers"
DEFAULT_OUTPUT = ROOT / "pyprocconn" / "kernel"
HEADERS = ("cn_proc.h", "connector.h", "netlink.h")
# Generated when present: the listener's time slice (sched_attr) and x86-64's syscall numbers.
# A layer without them runs without the slice (pyprocconn.priority).
OPTIONAL_HEADERS = ("sched_types.h", "unistd_64.h")


def build(headers: Path, command: str) -> tuple[list[Path], list[HeaderModule], dict[str, str]]:
    """(header paths, models, file name -> generated text) for the headers found in ``headers``."""
    missing = [name for name in HEADERS if not (headers / name).is_file()]
    if missing:
        raise GeneratorError(f"{headers}: missing {', '.join(missing)}")
    present = [name for name in OPTIONAL_HEADERS if (headers / name).is_file()]
    paths = [headers / name for name in (*HEADERS, *present)]
    models = parse_headers(paths)
    return paths, models, render(models, command)


def generate(headers: Path, command: str) -> dict[str, str]:
    """File name -> generated text, for the headers found in ``headers``."""
    return build(headers, command)[2]


# Written into every banner; the same whatever folders were given, so output is reproducible.
COMMAND = "python -m codegen  (--headers DIR --output DIR for other headers)"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument(
        "--headers",
        type=Path,
        default=DEFAULT_HEADERS,
        help="folder holding cn_proc.h, connector.h and netlink.h, and optionally "
        "sched_types.h and unistd_64.h (default: headers/)",
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
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="do not check the generated layout against the C compiler (gcc)",
    )
    return parser.parse_args(argv)


def _verify(paths: list[Path], models: list[HeaderModule], files: dict[str, str]) -> None:
    """Compare the text just generated with gcc; a note on stderr where no compiler runs."""
    try:
        verified = verify(paths, models, files)
    except CompilerUnavailableError as why:
        print(
            f"codegen: layout NOT verified: {why} (--no-verify skips this on purpose)",
            file=sys.stderr,
        )
        return
    print(
        f"codegen: layout verified against {COMPILER}: {verified.facts} facts "
        f"(kernel types from {verified.kernel_types})"
    )


def _stale(target: Path, current: str | None, text: str) -> None:
    diff = difflib.unified_diff(
        (current or "").splitlines(keepends=True),
        text.splitlines(keepends=True),
        f"{target} (checked in)",
        f"{target} (generated)",
        n=1,
    )
    sys.stderr.writelines(list(diff)[:40])


def _leftovers(files: dict[str, str], output: Path) -> list[Path]:
    """Modules codegen wrote earlier that these headers no longer give (an optional one)."""
    if not output.is_dir():
        return []
    return [
        path
        for path in sorted(output.glob("*.py"))
        if path.name not in files and path.read_text().startswith(GENERATED)
    ]


def _stubs() -> dict[str, str]:
    """The package's stubs of what it builds at import (codegen.stubs), from the layer now in
    pyprocconn/kernel/: in a fresh interpreter, which imports that layer."""
    done = subprocess.run(
        [sys.executable, "-m", "codegen.stubs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise GeneratorError(f"the package does not import with this layer:\n{done.stderr}")
    stubs: dict[str, str] = json.loads(done.stdout)
    return stubs


def _write_or_check(files: dict[str, str], output: Path, check: bool, prune: bool = True) -> int:
    stale = []
    for path in _leftovers(files, output) if prune else []:
        if check:
            stale.append(path.name)
            print(f"codegen: {path} is not generated from these headers", file=sys.stderr)
        else:
            path.unlink()
            print(f"codegen: removed {path}")
    for name, text in files.items():
        target = output / name
        current = target.read_text() if target.is_file() else None
        if current == text:
            continue
        if check:
            stale.append(name)
            _stale(target, current, text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"codegen: wrote {target}")
    if stale:
        print(
            f"codegen: stale: {', '.join(stale)} in {output}: headers or templates changed;"
            " regenerate with python -m codegen (and the same --headers/--output)",
            file=sys.stderr,
        )
        return 1
    if check:
        print(f"codegen: {output} is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        paths, models, files = build(args.headers, COMMAND)
        if not args.no_verify:
            _verify(paths, models, files)  # before writing: nothing unverified is written
    except GeneratorError as error:
        print(f"codegen: error: {error}", file=sys.stderr)
        return 1
    code = _write_or_check(files, args.output, args.check)
    package = DEFAULT_OUTPUT.parent
    if args.output.resolve() != DEFAULT_OUTPUT or code or not (package / "__init__.py").is_file():
        return code  # a layer elsewhere stands alone: no package around it to type
    try:
        stubs = _stubs()
    except GeneratorError as error:
        print(f"codegen: error: {error}", file=sys.stderr)
        return 1
    return _write_or_check(stubs, DEFAULT_OUTPUT.parent, args.check, prune=False)


if __name__ == "__main__":
    sys.exit(main())
