"""``pyprocconn wait [--timeout S] [--json] PID...``: wait for any processes, not only one's
own children, and say how each ended (built on :func:`pyprocconn.wait_for_exits`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from pyprocconn.command.options import pid_number, seconds
from pyprocconn.command.output import exit_fields
from pyprocconn.wait import Ended, wait_for_exits


def _shell_status(ended: Ended | None) -> int:
    """What a shell's ``wait`` returns: the exit status, or 128 + the killing signal."""
    if ended is None:
        return 127
    signal_number = ended.term_signal
    return 128 + signal_number if signal_number is not None else int(ended.exit_status or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pyprocconn wait",
        description="Wait for processes (any, not only your children) and report how each ended.",
        epilog="Exit status: like a shell's wait, the last PID's: its exit status, 128 + the "
        "signal that killed it, 127 when it was no process; 124 on timeout; 1 when the "
        "connector is unavailable.",
    )
    parser.add_argument(
        "pids",
        nargs="+",
        type=pid_number,
        metavar="PID",
        help="processes to wait for (any user's); each is reported when its last thread ends",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="give up after this long: those still running are reported as running (exit 124)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per PID")
    args = parser.parse_args(argv)
    try:
        results = wait_for_exits(args.pids, args.timeout)
    except OSError as error:
        print(f"pyprocconn wait: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    status = 0
    for pid in args.pids:
        ended = results[pid]
        gone = ended is None and not os.path.exists(f"/proc/{pid}")
        if ended is None:
            text = "no such process" if gone else "still running (timeout)"
            status = 127 if gone else 124
        else:
            text = ended.describe_status()
            status = _shell_status(ended)
        if args.json:
            record = {"pid": pid, "ended": ended is not None, "exit_code": None}
            if ended is not None:
                record = {"pid": pid, "ended": True, "exit_code": ended.exit_code}
                record.update(exit_fields(ended))
            else:
                record["reason"] = "no such process" if gone else "timeout"
            print(json.dumps(record, separators=(",", ":")), flush=True)  # as the stream
        else:
            print(f"{pid} {text}", flush=True)
    return status
