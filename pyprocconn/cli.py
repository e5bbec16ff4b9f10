"""``pyprocconn``: stream process events as they happen, as aligned text or JSON Lines."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

import pyprocconn as pc

_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder for every line
# Every event type the generated layer has a class for (new ones too), by its short name.
EVENT_NAMES = {cls.NAME: cls.TYPE for cls in pc.EVENT_CLASSES.values() if cls.TYPE}


def _event_mask(text: str) -> pc.EventType:
    mask = pc.EventType.NONE
    for name in filter(None, (part.strip().lower() for part in text.split(","))):
        if name == "all":
            mask |= pc.EventType.ALL
        elif name in EVENT_NAMES:
            mask |= EVENT_NAMES[name]
        else:
            choices = ", ".join([*EVENT_NAMES, "all"])
            raise argparse.ArgumentTypeError(f"unknown event type {name!r} (choose from {choices})")
    if not mask:
        raise argparse.ArgumentTypeError("no event type given")
    return mask


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text, 0)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyprocconn",
        description="Stream the kernel's process events (fork, exec, uid, gid, sid, ptrace, "
        "comm, coredump, exit) as they happen.",
        epilog="Exit status: 0 normal end (including Ctrl-C), 1 the kernel refused or has no "
        "process events connector, 2 usage error.",
    )
    parser.add_argument(
        "-e",
        "--events",
        type=_event_mask,
        default=None,
        metavar="LIST",
        help=f"comma-separated event types: {', '.join(EVENT_NAMES)} or all "
        "(default: all); the kernel filters where it can",
    )
    parser.add_argument(
        "--nonzero-exit", action="store_true", help="report only exits with a non-zero status"
    )
    parser.add_argument(
        "-p",
        "--pid",
        type=_positive_int,
        metavar="PID",
        help="only this process and its descendants",
    )
    parser.add_argument(
        "-n", "--count", type=_positive_int, metavar="N", help="stop after N events"
    )
    parser.add_argument(
        "-D",
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per event")
    parser.add_argument(
        "--comm", action="store_true", help="add the process name from /proc (best effort)"
    )
    parser.add_argument(
        "--cmdline", action="store_true", help="add the command line from /proc (best effort)"
    )
    parser.add_argument(
        "-S",
        "--stats",
        action="store_true",
        help="print counts per event type, losses and the rate on exit",
    )
    parser.add_argument(
        "--rcvbuf",
        type=_positive_int,
        metavar="BYTES",
        help=f"socket receive buffer to ask for (default {pc.DEFAULT_RCVBUF})",
    )
    return parser


def subject_pid(event: pc.ProcEvent) -> int | None:
    """The process an event is about (the child of a fork)."""
    pid = getattr(event, "child_pid" if event.NAME == "fork" else "process_pid", None)
    return pid if isinstance(pid, int) else None


def _thread_of(pid: int, tgid: int) -> str:
    return f" thread of {tgid}" if pid != tgid else ""


# The human column after the pid, by event name; other events (new ones from newer headers
# too) show their fields as name=value.
_DETAILS: dict[str, Callable[[Any], str]] = {
    "fork": lambda e: f"parent {e.parent_pid}" + _thread_of(e.child_pid, e.child_tgid),
    "exit": lambda e: e.describe_status() + _thread_of(e.process_pid, e.process_tgid),
    "uid": lambda e: f"ruid {e.ruid} euid {e.euid}",
    "gid": lambda e: f"rgid {e.rgid} egid {e.egid}",
    "ptrace": lambda e: "detached" if e.tracer_pid == 0 else f"tracer {e.tracer_pid}",
    "comm": lambda e: f"comm {e.comm}",
    "coredump": lambda e: f"parent {e.parent_pid}",
    "ack": lambda e: f"err {e.err}",
    "unknown": lambda e: f"what {e.what:#x} data {e.data.hex()}",
    "exec": lambda e: "",
    "sid": lambda e: "",
}


def details(event: pc.ProcEvent) -> str:
    """The human column after the pid."""
    formatter = _DETAILS.get(event.NAME)
    if formatter is None:
        fields = event.to_dict()
        for name in ("what", "cpu", "timestamp_ns", "process_pid"):
            fields.pop(name, None)
        return " ".join(f"{key} {value}" for key, value in fields.items())
    return formatter(event)


class ProcInfo:
    """Best-effort name and command line of a process from /proc, remembered for its exit."""

    def __init__(self, want_comm: bool, want_cmdline: bool) -> None:
        self.want_comm, self.want_cmdline = want_comm, want_cmdline
        self._cache: dict[int, dict[str, Any]] = {}

    def lookup(self, pid: int, exiting: bool) -> dict[str, Any]:
        info: dict[str, Any] = {}
        try:
            if exiting:
                raise FileNotFoundError
            if self.want_comm:
                with open(f"/proc/{pid}/comm", "rb") as file:
                    info["comm"] = file.read().rstrip(b"\n").decode("utf-8", "backslashreplace")
            if self.want_cmdline:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    raw = file.read().rstrip(b"\0")
                info["cmdline"] = (
                    [a.decode("utf-8", "backslashreplace") for a in raw.split(b"\0")] if raw else []
                )
            self._cache[pid] = info
            info = dict(info, gone=False)
        except OSError:
            info = dict(
                self._cache.pop(pid, {}) if exiting else self._cache.get(pid, {}), gone=True
            )
        if len(self._cache) > 65536:  # bound memory on long runs
            self._cache.clear()
        return info


class Output:
    """Writes events and loss notices in the chosen format; counts for --stats."""

    def __init__(self, stream: TextIO, as_json: bool, info: ProcInfo | None) -> None:
        self.stream, self.as_json, self.info = stream, as_json, info
        self.flush_each = _is_pipe(stream)
        # CLOCK_MONOTONIC (the kernel's timestamp_ns) to wall-clock time.
        self.wall_offset_ns = time.time_ns() - time.monotonic_ns()
        self.zone = datetime.datetime.now().astimezone().tzinfo  # looked up once, not per event
        self.counts: Counter[str] = Counter()
        if not as_json:
            self._write(f"{'TIME':<15} {'EVENT':<8} {'PID':>7}  DETAILS")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        if self.flush_each:
            self.stream.flush()

    def _time(self, timestamp_ns: int | None) -> datetime.datetime:
        wall_ns = (
            timestamp_ns if timestamp_ns is not None else time.monotonic_ns()
        ) + self.wall_offset_ns
        return datetime.datetime.fromtimestamp(wall_ns / 1e9, self.zone)

    def event(self, event: pc.ProcEvent) -> None:
        self.counts[event.NAME] += 1
        when = self._time(event.timestamp_ns)
        pid = subject_pid(event)
        extra: dict[str, Any] = {}
        if self.info is not None and pid is not None:
            extra = self.info.lookup(pid, exiting=isinstance(event, pc.ExitEvent))
        if self.as_json:
            record: dict[str, Any] = {
                "event": event.NAME,
                "time": when.isoformat(timespec="microseconds"),
            }
            record.update(event.to_dict())
            if extra:
                record["proc"] = extra
            self._write(_JSON.encode(record))
            return
        text = details(event)
        if extra:
            known = [extra["comm"]] if "comm" in extra else []
            if extra.get("cmdline"):
                known.append(" ".join(extra["cmdline"]))
            text = " ".join(
                filter(None, [text, *(f"[{k}]" for k in known), "(gone)" if extra["gone"] else ""])
            )
        pid_text = "-" if pid is None else str(pid)
        self._write(
            f"{when.strftime('%H:%M:%S.%f'):<15} {event.NAME:<8} {pid_text:>7}  {text}".rstrip()
        )

    def lost(self, lost: int | None, cpu: int | None) -> None:
        when = self._time(None)
        if self.as_json:
            record = {
                "event": "lost",
                "time": when.isoformat(timespec="microseconds"),
                "lost": lost,
                "cpu": cpu,
            }
            self._write(_JSON.encode(record))
        else:
            notice = pc.EventsLost(lost, cpu)
            self._write(f"{when.strftime('%H:%M:%S.%f'):<15} {'LOST':<8} {'-':>7}  {notice}")


def _is_pipe(stream: TextIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode) or stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


class DescendantFilter:
    """--pid: the process and everything it forks from now on."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.tracked = {root}

    def __call__(self, event: pc.ProcEvent) -> bool:
        if isinstance(event, pc.ForkEvent):
            if event.parent_tgid in self.tracked or event.child_tgid in self.tracked:
                self.tracked.add(event.child_tgid)
                return True
            return False
        tgid = getattr(event, "process_tgid", None)
        if tgid not in self.tracked:
            return False
        main_thread_exit = isinstance(event, pc.ExitEvent) and event.process_pid == tgid
        if main_thread_exit and tgid != self.root:
            self.tracked.discard(tgid)  # its pid may be reused by an unrelated process
        return True


def run(args: argparse.Namespace, stream: TextIO) -> int:
    mask = args.events if args.events is not None else pc.EventType.ALL
    if args.nonzero_exit:
        mask = (mask & ~pc.EventType.EXIT) | pc.EventType.NONZERO_EXIT
    wanted: Callable[[pc.ProcEvent], bool] = (
        DescendantFilter(args.pid) if args.pid else (lambda e: True)
    )
    info = ProcInfo(args.comm, args.cmdline) if (args.comm or args.cmdline) else None
    started = time.monotonic()
    deadline = None if args.duration is None else started + args.duration
    printed = 0
    rcvbuf = args.rcvbuf if args.rcvbuf is not None else pc.DEFAULT_RCVBUF
    conn = pc.ProcConnector(events=None if mask == pc.EventType.ALL else mask, rcvbuf=rcvbuf)
    output = Output(stream, args.json, info)
    try:
        while args.count is None or printed < args.count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                batch = conn.recv_batch(remaining, linger=pc.DEFAULT_LINGER)
            except pc.OverrunError as error:
                output.lost(error.lost, error.cpu)
                continue
            for item in batch:
                if not isinstance(item, pc.AckEvent) and wanted(item):
                    output.event(item)
                    printed += 1
                    if args.count is not None and printed >= args.count:
                        break
    except KeyboardInterrupt:
        pass
    finally:
        stats = conn.stats
        conn.close()
        if args.stats:
            _print_stats(output.counts, stats, time.monotonic() - started)
    return 0


def _print_stats(counts: Counter[str], stats: pc.Stats, elapsed: float) -> None:
    total = sum(counts.values())
    lines = [f"{name:<10} {count:>10}" for name, count in counts.most_common()]
    lost = str(stats.lost) if not (stats.overruns and not stats.lost) else "unknown"
    if stats.overruns and stats.lost:
        lost = f"{stats.lost} (at least; {stats.overruns} overruns)"
    lines += [
        f"{'total':<10} {total:>10}",
        f"lost: {lost}; dropped datagrams: {stats.foreign} foreign, {stats.malformed} malformed",
        f"rate: {total / elapsed if elapsed > 0 else 0:.1f} events/s over {elapsed:.1f} s",
    ]
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args, sys.stdout)
    except BrokenPipeError:
        # The reader went away (`pyprocconn | head`): end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as error:
        print(f"pyprocconn: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while subscribing
        return 0


if __name__ == "__main__":
    sys.exit(main())
