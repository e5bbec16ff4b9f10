"""``pyprocconn``: stream process events as they happen, as aligned text or JSON Lines."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pwd
import signal
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

import pyprocconn as pc
from pyprocconn import monitor, procfs
from pyprocconn.processes import FOLLOWED

_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder for every line
# Every event type the generated layer has a class for (new ones too), by its short name.
EVENT_NAMES = {cls.NAME: cls.TYPE for cls in pc.EVENT_CLASSES.values() if cls.TYPE}


def _event_mask(text: str) -> pc.EventType:
    mask = pc.EventType(0)
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


MAX_SECONDS = 10**9  # about 31 years: longer is a typo, and time arithmetic overflows


def seconds(text: str) -> float:
    """A duration: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= MAX_SECONDS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 and at most {MAX_SECONDS:g}, not {text}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def pid_number(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyprocconn",
        description="Stream the kernel's process events (fork, exec, uid, gid, sid, ptrace, "
        "comm, coredump, exit) as they happen.",
        epilog="Also: 'pyprocconn wait PID...' waits for any processes and reports how they "
        "ended; 'pyprocconn --check' says whether events will flow and why not. Exit status: "
        "0 normal end (including Ctrl-C, SIGTERM, SIGHUP), 1 the kernel refused or has no "
        "process events connector (or -p names no process), 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"pyprocconn {pc.__version__}")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check this machine: one line per fact; exit 0 when events will flow",
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
        "--nonzero-exit",
        action="store_true",
        help="exits only when their status is non-zero; alone, nothing but those exits "
        "(with -e, the other listed types as well)",
    )
    parser.add_argument(
        "-p",
        "--pid",
        type=pid_number,
        metavar="PID",
        help="only this process and its descendants (threads included)",
    )
    parser.add_argument(
        "--until-exit",
        action="store_true",
        help="with -p: stop once the process and all its descendants have exited",
    )
    parser.add_argument(
        "-n", "--count", type=_positive_int, metavar="N", help="stop after N events"
    )
    parser.add_argument(
        "-D",
        "--duration",
        type=seconds,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per event")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="the plain event stream: no process table, nothing read from /proc",
    )
    parser.add_argument(
        "--threads", action="store_true", help="show threads' creation and exit too"
    )
    parser.add_argument(
        "--tree",
        action="store_true",
        help="indent by depth in the process tree (from the -p process when given)",
    )
    parser.add_argument("-x", "--ids", action="store_true", help="add UID, EUID and USER columns")
    parser.add_argument(
        "--user",
        metavar="USER",
        type=_user,
        help="only processes whose real or effective user is USER (a name or a uid)",
    )
    parser.add_argument(
        "--cgroup", metavar="TEXT", help="only processes whose cgroup path contains TEXT"
    )
    parser.add_argument(
        "-r",
        "--realtime",
        action="store_true",
        help="run under SCHED_FIFO (like forkstat -r): command lines of short-lived "
        "processes are read before they are gone",
    )
    parser.add_argument(
        "--comm", action="store_true", help="with --raw: add the process name from /proc"
    )
    parser.add_argument(
        "--cmdline", action="store_true", help="with --raw: add the command line from /proc"
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
    "comm": lambda e: f"comm {shown_name(e.comm)}",
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
                comm = procfs.read(f"/proc/{pid}/comm")
                if comm is None:
                    raise FileNotFoundError
                info["comm"] = os.fsdecode(comm.rstrip(b"\n"))
            if self.want_cmdline:
                raw = procfs.read(f"/proc/{pid}/cmdline")
                if raw is None:
                    raise FileNotFoundError
                info["cmdline"] = procfs.parse_argv(raw) or []
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

    def __init__(
        self,
        stream: TextIO,
        as_json: bool,
        info: ProcInfo | None,
        table: bool = False,
        ids: bool = False,
        tree: bool = False,
    ) -> None:
        self.stream, self.as_json, self.info = stream, as_json, info
        self.table, self.ids, self.tree = table, ids, tree
        self.interactive = _is_pipe(stream)  # a terminal or a pipe: lines shown as they come
        self._unshown_since: float | None = None  # when the oldest line not yet flushed came
        # CLOCK_MONOTONIC (the kernel's timestamp_ns) to wall-clock time.
        self.wall_offset_ns = time.time_ns() - time.monotonic_ns()
        self.zone = datetime.datetime.now().astimezone().tzinfo  # looked up once, not per event
        self.counts: Counter[str] = Counter()
        if not as_json:
            columns = f"{'UID':>6} {'EUID':>6} {'USER':<10} " if ids else ""
            self._write(f"{'TIME':<15} {'EVENT':<8} {'PID':>7}  {columns}DETAILS".rstrip())

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        if self.interactive and self._unshown_since is None:
            self._unshown_since = time.monotonic()

    def flush_in(self) -> float | None:
        """Seconds until the lines written must be shown (None: none waiting)."""
        if self._unshown_since is None:
            return None
        return max(0.0, self._unshown_since + _SHOW_WITHIN - time.monotonic())

    def batch_done(self) -> None:
        """Show the lines once they have waited _SHOW_WITHIN (a terminal or a pipe). Not per
        line: each write to a pipe wakes its reader, which takes the CPU from the reading of
        /proc (flushed per line, or even per batch, the command read as few as 6 of 300
        short-lived command lines through a pipe; this way as many as into a file)."""
        if self._unshown_since is not None and self.flush_in() == 0.0:
            self.stream.flush()
            self._unshown_since = None

    def _time(self, timestamp_ns: int | None) -> datetime.datetime:
        wall_ns = (
            timestamp_ns if timestamp_ns is not None else time.monotonic_ns()
        ) + self.wall_offset_ns
        return datetime.datetime.fromtimestamp(wall_ns / 1e9, self.zone)

    def event(self, event: pc.ProcEvent, process: Any = None, depth: int = 0) -> None:
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
            if event.NAME == "exit":
                record.update(exit_fields(event))
                if process is not None and process.start_ns is not None:
                    record["duration_s"] = (event.timestamp_ns - process.start_ns) / 1e9
            if extra:
                record["proc"] = extra
            if self.table:
                record["process"] = monitor.process_fields(process)
            self._write(_JSON.encode(record))
            return
        text = details(event)
        if self.table:
            text = ("  " * depth if self.tree else "") + monitor.describe(event, process, text)
            if self.ids:
                uid, euid = (getattr(process, name, None) for name in ("uid", "euid"))
                user = monitor.user_name(euid)
                text = f"{_or_dash(uid):>6} {_or_dash(euid):>6} {user:<10} {text}"
        if extra:
            known = [shown_name(extra["comm"])] if "comm" in extra else []
            if extra.get("cmdline"):
                known.append(" ".join(shown_name(arg) for arg in extra["cmdline"]))
            text = " ".join(
                filter(None, [text, *(f"[{k}]" for k in known), "(gone)" if extra["gone"] else ""])
            )
        pid_text = "-" if pid is None else str(pid)
        name = "thread" if self.table and monitor.is_thread(event) else event.NAME
        self._write(f"{when.strftime('%H:%M:%S.%f'):<15} {name:<8} {pid_text:>7}  {text}".rstrip())

    def resync(self, record: Any) -> None:
        """After a loss, /proc was rescanned: say what changed unseen."""
        when = self._time(None)
        vanished = [e.process.pid for e in record.vanished]
        appeared = [p.pid for p in record.appeared]
        if self.as_json:
            fields = {"vanished": vanished, "appeared": appeared}
            self._write(_JSON.encode({"event": "resync", "time": when.isoformat(), **fields}))
        else:
            self._write(
                f"{when.strftime('%H:%M:%S.%f'):<15} {'RESYNC':<8} {'-':>7}  /proc rescanned: "
                f"{len(vanished)} ended unseen, {len(appeared)} started unseen"
            )

    def vanished(self, record: Any) -> None:
        """A process whose end was not seen (its pid was reused)."""
        when = self._time(None)
        pid = record.process.pid
        if self.as_json:
            fields = {"pid": pid, "process": monitor.process_fields(record.process)}
            self._write(_JSON.encode({"event": "vanished", "time": when.isoformat(), **fields}))
        else:
            command = monitor.command_of(record.process)
            self._write(
                f"{when.strftime('%H:%M:%S.%f'):<15} {'VANISHED':<8} {pid:>7}  "
                f"ended unseen  {command}"
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


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def exit_fields(event: Any) -> dict[str, Any]:
    """An exit's status decoded for JSON: ``exit_status`` (the value given to exit(), or
    null), ``term_signal`` (the killing signal's name, or null), ``core_dumped``."""
    number = event.term_signal
    name = None
    if number is not None:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"SIG{number}"
    return {"exit_status": event.exit_status, "term_signal": name, "core_dumped": event.core_dumped}


def shown_name(name: str) -> str:
    """A kernel or /proc name for the text columns: bytes that are not UTF-8 as ``\\xNN`` and a
    backslash doubled, so the two can never be confused."""
    raw = os.fsencode(name).replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


_SHOW_WITHIN = 0.05  # seconds a line may wait before a terminal or pipe shows it


def _user(text: str) -> int:
    """--user: a uid, or a user name looked up once."""
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such user: {text!r}") from None


def _is_pipe(stream: TextIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode) or stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


class DescendantFilter:
    """--pid: the process, its descendants at the start, and everything they fork from now on,
    followed by thread.

    A process stays tracked while any of its threads lives: the kernel may report other
    threads' exits after the main thread's, and a non-main thread's exec reports the main
    thread's exit before the exec. Once its last thread is gone, its pid may be reused by an
    unrelated process, so it is forgotten.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.threads: dict[int, set[int]] = {
            pid: procfs.thread_ids(pid) for pid in {root, *procfs.descendants(root)}
        }

    @property
    def done(self) -> bool:
        """Every tracked process has exited."""
        return not self.threads

    def __call__(self, event: pc.ProcEvent) -> bool:
        if event.NAME == "fork":
            tgid = event.child_tgid
            if event.parent_tgid in self.threads or tgid in self.threads:
                self.threads.setdefault(tgid, set()).add(event.child_pid)
                return True
            return False
        tgid = getattr(event, "process_tgid", None)
        threads = self.threads.get(tgid) if isinstance(tgid, int) else None
        if threads is None:
            return False
        if event.NAME == "exec":  # exec leaves one thread, with the process's pid
            threads.clear()
            threads.add(event.process_tgid)
        elif event.NAME == "exit":
            threads.discard(event.process_pid)
            if not threads:
                del self.threads[event.process_tgid]
        return True


class _StopSignalError(Exception):
    """SIGTERM or SIGHUP: end like Ctrl-C (unsubscribe, print the summary)."""


def _stop(signum: int, frame: object) -> None:
    raise _StopSignalError


def _subscription(args: argparse.Namespace, table: bool) -> tuple[pc.EventType, pc.EventType]:
    """(what to subscribe to, what to show)."""
    everything = pc.EventType.ALL
    shown = args.events if args.events is not None else everything
    if args.nonzero_exit:
        base = args.events if args.events is not None else pc.EventType(0)
        shown = (base & ~pc.EventType.EXIT) | _nonzero_exit()
    subscribed = shown
    if args.pid:  # following the tree needs its forks and exits whatever is shown
        subscribed |= pc.EventType.FORK | pc.EventType.EXIT
    if table:  # so does the table (start times, parents, ids), whatever is shown
        subscribed |= pc.EventType.from_names(",".join(sorted(FOLLOWED)))
    return subscribed, shown


def _nonzero_exit() -> pc.EventType:
    return pc.EventType.__members__.get("NONZERO_EXIT", pc.EventType.EXIT)


def _shows(shown: pc.EventType) -> Callable[[pc.ProcEvent], bool]:
    everything = pc.EventType.ALL
    nonzero_only = bool(shown & _nonzero_exit()) and not shown & pc.EventType.EXIT
    if shown == everything:
        return lambda event: True

    def shows(event: pc.ProcEvent) -> bool:
        if event.NAME == "exit":
            return bool(shown & pc.EventType.EXIT) or (nonzero_only and bool(event.exit_code))
        return bool(event.TYPE & shown)

    return shows


def _stream(
    conn: pc.ProcConnector,
    args: argparse.Namespace,
    tree: DescendantFilter | None,
    shows: Callable[[pc.ProcEvent], bool],
    output: Output,
) -> None:
    """Print events until the count, the duration or (``--until-exit``) the tree ends."""
    printed = 0
    linger = 0.0 if output.info is not None else pc.DEFAULT_LINGER  # --comm/--cmdline read /proc
    for batch in monitor.batches(conn, args.duration, output.flush_in, linger=linger):
        for item in batch:
            if isinstance(item, pc.EventsLost):
                output.lost(item.lost, item.cpu)
            elif item.NAME == "ack" or (tree is not None and not tree(item)):
                continue
            elif shows(item):
                output.event(item)
                printed += 1
                if args.count is not None and printed >= args.count:
                    return
        output.batch_done()
        if args.until_exit and tree is not None and tree.done:
            return


def run(args: argparse.Namespace, stream: TextIO) -> int:
    raw = args.raw or args.comm or args.cmdline
    subscribed, shown = _subscription(args, table=not raw)
    shows = _shows(shown)
    info = ProcInfo(args.comm, args.cmdline) if (args.comm or args.cmdline) else None
    started = time.monotonic()
    rcvbuf = args.rcvbuf if args.rcvbuf is not None else pc.DEFAULT_RCVBUF
    everything = subscribed == pc.EventType.ALL
    conn = pc.ProcConnector(events=None if everything else subscribed, rcvbuf=rcvbuf)
    # The process and its descendants are looked up after subscribing: no fork is missed.
    if args.pid and not procfs.alive(args.pid):
        conn.close()
        print(f"pyprocconn: no process {args.pid}", file=sys.stderr)
        return 1
    tree = DescendantFilter(args.pid) if args.pid else None
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    output = Output(stream, args.json, info, table=not raw, ids=args.ids, tree=args.tree)
    commands: Counter[str] = Counter()
    try:
        if raw:
            _stream(conn, args, tree, shows, output)
        else:

            def wanted(event: pc.ProcEvent) -> bool:
                return (tree is None or tree(event)) and shows(event)

            monitor.run_table(
                conn, args, wanted, output, commands, lambda: tree is not None and tree.done
            )
    except (KeyboardInterrupt, _StopSignalError):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stats, granted = conn.stats, conn.rcvbuf
        conn.close()
        if args.stats:
            _print_stats(output.counts, stats, time.monotonic() - started, granted, commands)
    return 0


def _print_stats(
    counts: Counter[str], stats: pc.Stats, elapsed: float, rcvbuf: int, commands: Counter[str]
) -> None:
    total = sum(counts.values())
    lines = [f"{name:<10} {count:>10}" for name, count in counts.most_common()]
    lost = str(stats.lost) if not (stats.overruns and not stats.lost) else "unknown"
    if stats.overruns and stats.lost:
        lost = f"{stats.lost} (at least; {stats.overruns} overruns)"
    lines += [
        f"{'total':<10} {total:>10}",
        f"lost: {lost}; dropped datagrams: {stats.foreign} foreign, {stats.malformed} malformed",
        f"rate: {total / elapsed if elapsed > 0 else 0:.1f} events/s over {elapsed:.1f} s",
        f"receive buffer: {rcvbuf} bytes granted by the kernel",
    ]
    if commands:
        lines.append("events per command (the 10 busiest):")
        lines += [f"{count:>10}  {command}" for command, count in commands.most_common(10)]
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["wait"]:
        from pyprocconn import wait

        return wait.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.check:
        from pyprocconn import check

        return check.main()
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
