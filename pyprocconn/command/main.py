"""``pyprocconn``: stream process events as they happen, as aligned text or JSON Lines."""

from __future__ import annotations

import argparse
import codecs
import os
import signal
import sys
import time
from collections import Counter
from typing import TextIO

import pyprocconn as pc
from pyprocconn import procfs
from pyprocconn.command import options
from pyprocconn.command.follow import Descendants
from pyprocconn.command.modes import Mode, RawMode, TableMode, follow
from pyprocconn.command.output import JsonFormat, Output, TextFormat
from pyprocconn.command.sink import Sink
from pyprocconn.priority import raise_priority, shorten_slice
from pyprocconn.processes import DEFAULT_MAX_ARGV


class _StopSignalError(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: end (unsubscribe, print the summary)."""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop:
    """The stop signals' handler: raises once. A second stop (timeout(1) signals the command,
    then its process group) must not cut the ending short, the summary lost."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise _StopSignalError


def _priority(args: argparse.Namespace) -> str:
    """Raise the scheduling priority as asked (an explicit ask refused raises PermissionError)
    or, by default, to ``DEFAULT_NICE`` when permitted, with the shortest time slice but under
    -r. Says what it is now, for -S."""
    if args.no_priority:
        return f"nice {os.getpriority(os.PRIO_PROCESS, 0)} (left as it was)"
    if args.realtime:
        raise_priority(realtime=True)
        return "SCHED_FIFO"
    if args.nice is not None:
        raise_priority(args.nice)
        said = f"nice {args.nice}"
    else:
        try:
            raise_priority(options.DEFAULT_NICE)
            said = f"nice {options.DEFAULT_NICE}"
        except PermissionError:
            said = f"nice {os.getpriority(os.PRIO_PROCESS, 0)} (not raised: needs CAP_SYS_NICE)"
    granted = shorten_slice()
    if granted is None:
        return f"{said}, the kernel's time slice (none per task here)"
    return f"{said}, time slice {granted * 1e3:g} ms"


def _unicode(stream: TextIO) -> bool:
    """Whether the stream's encoding can write any character (a UTF codec)."""
    try:
        return codecs.lookup(stream.encoding or "ascii").name.startswith("utf")
    except (LookupError, AttributeError):
        return False


def run(args: argparse.Namespace, stream: TextIO) -> int:
    raw = args.raw
    subscribed, shown = options.subscription(args, table=not raw)
    shows = options.shows(shown, args.nonzero_exit)
    try:
        priority = _priority(args)
    except PermissionError:
        asked = "-r" if args.realtime else f"--nice {args.nice}"
        print(
            f"pyprocconn: {asked} needs CAP_SYS_NICE (or a fitting "
            f"{'RLIMIT_RTPRIO' if args.realtime else 'RLIMIT_NICE'}); run without it or as root",
            file=sys.stderr,
        )
        return 1
    started = time.monotonic()
    rcvbuf = args.rcvbuf if args.rcvbuf is not None else pc.DEFAULT_RCVBUF
    everything = subscribed == pc.EventType.ALL
    # The table reads an exec's /proc at once and lets the rest gather (see TableMode).
    urgent = pc.EventType.EXEC if not raw and subscribed & pc.EventType.EXEC else None
    conn = pc.ProcConnector(events=None if everything else subscribed, rcvbuf=rcvbuf, urgent=urgent)
    # The process and its descendants are looked up after subscribing: no fork is missed.
    refused = _not_followable(args.pid) if args.pid else None
    if refused is not None:
        conn.close()
        print(f"pyprocconn: {refused}", file=sys.stderr)
        return 1
    tree = Descendants(args.pid) if args.pid else None
    stop = _Stop()  # one for all three, kept to the exit: the first of them ends the command
    for sig in _STOP_SIGNALS:
        signal.signal(sig, stop)
    text = TextFormat(ids=args.ids, table=not raw, ascii_only=not _unicode(stream))
    output = Output(Sink(stream), JsonFormat(table=not raw) if args.json else text)
    commands: Counter[str] = Counter()
    mode: Mode = (
        RawMode(conn, args, tree, shows)
        if raw
        else TableMode(conn, args, tree, shows, commands, text if args.stats else None)
    )
    reader_gone = False
    try:
        follow(mode, output, args, tree)
    except (KeyboardInterrupt, _StopSignalError):
        pass
    except BrokenPipeError:
        reader_gone = True  # `pyprocconn | head`: end quietly
        raise
    finally:
        # The ending (unsubscribe, flush, summary) runs to its end: later stops are moot.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        stats, granted = conn.stats, conn.rcvbuf
        setup = _setup(priority, mode)
        mode.close()
        conn.close()
        if not reader_gone:
            output.sink.flush()
        note = None if reader_gone else mode.finish()
        if note:
            print(note, file=sys.stderr)
        if args.stats:
            elapsed = time.monotonic() - started
            _print_stats(output.counts, stats, elapsed, granted, commands, setup)
    return 0


def _not_followable(pid: int) -> str | None:
    """Why ``-p pid`` cannot be followed, or None."""
    if not procfs.alive(pid):
        why = "has already exited (a zombie its parent has not reaped)"
        return f"process {pid} {why}" if procfs.stat(pid) else f"no process {pid}"
    leader = procfs.tgid(pid)
    if leader is not None and leader != pid:
        return f"{pid} is a thread of process {leader}: use -p {leader}"
    return None


def _setup(priority: str, mode: Mode) -> list[str]:
    """What -S says of how the command ran."""
    setup = [f"priority: {priority}"]
    if isinstance(mode, TableMode):
        setup.append(f"exec reader: {mode.exec_reader()}")
    return setup


def _print_stats(
    counts: dict[str, int],
    stats: pc.Stats,
    elapsed: float,
    rcvbuf: int,
    commands: Counter[str],
    setup: list[str],
) -> None:
    total = sum(counts.values())
    lines = [f"{name:<10} {count:>10}" for name, count in Counter(counts).most_common()]
    lost = str(stats.lost) if not (stats.overruns and not stats.lost) else "unknown"
    if stats.overruns and stats.lost:
        lost = f"{stats.lost} (at least; {stats.overruns} overruns)"
    lines += [
        f"{'total':<10} {total:>10}",
        f"lost: {lost}; dropped datagrams: {stats.foreign} foreign, {stats.malformed} malformed",
        f"rate: {total / elapsed if elapsed > 0 else 0:.1f} events/s over {elapsed:.1f} s",
        f"receive buffer: {rcvbuf} bytes granted by the kernel",
        *setup,
    ]
    if commands:
        lines.append("events per program (the 10 busiest):")
        lines += [f"{count:>10}  {command}" for command, count in commands.most_common(10)]
    print("\n".join(lines), file=sys.stderr)


def _safe_stdout() -> None:
    """Whatever the locale or PYTHONIOENCODING says, an unencodable character is escaped, never
    an error: the text is made safe first, so this only guards the encoding."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _check_modes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options of one mode asked in the other are usage errors, never silently ignored."""
    if (args.comm or args.cmdline) and not args.raw:
        parser.error(
            "--comm and --cmdline go with --raw (the table shows the name and command line)"
        )
    table_only = [
        flag
        for flag, asked in (
            ("--tree", args.tree),
            ("-x", args.ids),
            ("--user", args.user is not None),
            ("--cgroup", args.cgroup is not None),
            ("--container", args.container is not None),
            ("--max-argv", args.max_argv != DEFAULT_MAX_ARGV),
            ("--no-exec-reader", args.no_exec_reader),
        )
        if asked
    ]
    if args.raw and table_only:
        parser.error(f"{', '.join(table_only)}: the process table's, not with --raw")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _safe_stdout()
    # Ctrl-C ends it even when started with SIGINT ignored (a script's background job), as
    # forkstat does: the command unsubscribes and prints its summary on it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if argv[:1] == ["wait"]:
        from pyprocconn.command import wait

        return wait.main(argv[1:])
    parser = options.build_parser()
    args = parser.parse_args(argv)
    if args.until_exit and not args.pid:
        parser.error("--until-exit needs -p PID (the process whose end it waits for)")
    _check_modes(parser, args)
    if args.check:
        from pyprocconn import check

        return check.main(as_json=args.json)
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
