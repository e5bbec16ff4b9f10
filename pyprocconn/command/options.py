"""The command's arguments: the parser, its argument types, and what to subscribe to and show."""

from __future__ import annotations

import argparse
import pwd
from collections.abc import Callable

import pyprocconn as pc
from pyprocconn.priority import HIGHEST_NICE, SHORTEST_SLICE
from pyprocconn.processes import DEFAULT_MAX_ARGV, FOLLOWED_EVENTS

# Every event type the generated layer has a class for (new ones too), by its short name.
EVENT_NAMES = {cls.NAME: cls.TYPE for cls in pc.EVENT_CLASSES.values() if cls.TYPE}
MAX_SECONDS = 10**9  # about 31 years: longer is a typo, and time arithmetic overflows
# The nice value the command asks for by default (best effort: needs CAP_SYS_NICE), with the
# shortest time slice: the exec capture then wins the race with short-lived processes
# (benchmarks.capture measures it).
DEFAULT_NICE = HIGHEST_NICE


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


def _nice(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a nice value: {text!r}") from None
    if not -20 <= value <= 19:
        raise argparse.ArgumentTypeError(f"a nice value is from -20 to 19, not {value}")
    return value


def pid_number(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return value


def _user(text: str) -> int:
    """--user: a uid, or a user name looked up once."""
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such user: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyprocconn",
        description="Stream the kernel's process events (fork, exec, uid, gid, sid, ptrace, "
        "comm, coredump, exit) as they happen.",
        epilog="Also: 'pyprocconn wait PID...' waits for any processes and reports how they "
        "ended; 'pyprocconn --check' says whether events will flow and why not. Exit status: "
        "0 normal end (including Ctrl-C, SIGTERM, SIGHUP), 1 the kernel refused or has no "
        "process events connector (or -p names no process, or --nice/-r were refused), "
        "2 usage error.",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"pyprocconn {pc.__version__}")
    add(
        "--check",
        action="store_true",
        help="check this machine: one line per fact; exit 0 when events will flow",
    )
    add(
        "-e",
        "--events",
        type=_event_mask,
        default=None,
        metavar="LIST",
        help=f"comma-separated event types: {', '.join(EVENT_NAMES)} or all (default: all); "
        "the kernel filters where it can",
    )
    add(
        "--nonzero-exit",
        action="store_true",
        help="exits only when their status is non-zero; "
        "alone, nothing but those exits (with -e, the other listed types as well)",
    )
    add(
        "-p",
        "--pid",
        type=pid_number,
        metavar="PID",
        help="only this process and its descendants (their threads too: shown with --threads)",
    )
    add(
        "--until-exit",
        action="store_true",
        help="with -p: stop once the process and all its descendants have exited",
    )
    add("-n", "--count", type=_positive_int, metavar="N", help="stop after N events")
    add("-D", "--duration", type=seconds, metavar="SECONDS", help="stop after this many seconds")
    add("--json", action="store_true", help="JSON Lines, one object per event")
    add(
        "--raw",
        action="store_true",
        help="the plain event stream: no process table, nothing read from /proc",
    )
    add("--threads", action="store_true", help="show threads' creation and exit too")
    add(
        "--tree",
        action="store_true",
        help="indent by depth in the process tree (from the -p process when given)",
    )
    add(
        "-x",
        "--ids",
        action="store_true",
        help="add UID, EUID, USER and CONTAINER (a short id, - for none) columns",
    )
    add(
        "--user",
        metavar="USER",
        type=_user,
        help="only processes whose real or effective user is USER (a name or a uid)",
    )
    add("--cgroup", metavar="TEXT", help="only processes whose cgroup path contains TEXT")
    add(
        "--container",
        metavar="ID",
        help="only processes in a container whose id (or name) starts with ID (Docker, "
        "Podman, containerd, CRI-O, Kubernetes, LXC, systemd-nspawn: by their cgroup names)",
    )
    add(
        "--max-argv",
        type=_positive_int,
        metavar="BYTES",
        default=DEFAULT_MAX_ARGV,
        help=f"bytes of each command line kept (default {DEFAULT_MAX_ARGV}); a longer one "
        "is cut and marked",
    )
    priority = parser.add_mutually_exclusive_group()
    priority.add_argument(
        "--nice",
        type=_nice,
        metavar="N",
        help=f"run at this nice value (needs CAP_SYS_NICE; refused: an error). Default: "
        f"{DEFAULT_NICE} when permitted, and a {SHORTEST_SLICE * 1e3:g} ms time slice "
        "(Linux 6.12+, no privilege needed), so short-lived processes' command lines are "
        "read before they are gone",
    )
    priority.add_argument(
        "--no-priority",
        action="store_true",
        help="leave the scheduling priority and time slice as they are",
    )
    priority.add_argument(
        "-r",
        "--realtime",
        action="store_true",
        help="run under SCHED_FIFO (like forkstat -r; needs CAP_SYS_NICE): may starve the "
        "machine under a fork storm",
    )
    add(
        "--no-exec-reader",
        action="store_true",
        help="read each exec's command line in this process only, without the helper "
        "process that reads it the moment the kernel reports it (Linux 6.6+)",
    )
    add("--comm", action="store_true", help="with --raw: add the process name from /proc")
    add("--cmdline", action="store_true", help="with --raw: add the command line from /proc")
    add(
        "-S",
        "--stats",
        action="store_true",
        help="print counts per event type, losses and the rate on exit",
    )
    add(
        "--rcvbuf",
        type=_positive_int,
        metavar="BYTES",
        help=f"socket receive buffer to ask for (default {pc.DEFAULT_RCVBUF})",
    )
    return parser


def subscription(args: argparse.Namespace, table: bool) -> tuple[pc.EventType, pc.EventType]:
    """(what to subscribe to, what to show)."""
    everything = pc.EventType.ALL
    shown = args.events if args.events is not None else everything
    if args.nonzero_exit:
        base = args.events if args.events is not None else pc.EventType(0)
        shown = (base & ~pc.EventType.EXIT) | nonzero_exit()
    subscribed = shown
    if args.pid:  # following the tree needs its forks and exits whatever is shown
        subscribed |= pc.EventType.FORK | pc.EventType.EXIT
    if table:  # so does the table (start times, parents, ids), whatever is shown
        subscribed |= FOLLOWED_EVENTS
    return subscribed, shown


def nonzero_exit() -> pc.EventType:
    """The filter bit for exits with a non-zero status; EXIT on headers that lack it."""
    return pc.EventType.__members__.get("NONZERO_EXIT", pc.EventType.EXIT)


def shows(shown: pc.EventType, only_nonzero_exits: bool) -> Callable[[pc.ProcEvent], bool]:
    """Whether an event is to be shown (the filter in user space: the kernel's may be off)."""
    if shown == pc.EventType.ALL and not only_nonzero_exits:
        return lambda event: True
    exits = bool(shown & pc.EventType.EXIT) and not only_nonzero_exits

    def showing(event: pc.ProcEvent) -> bool:
        if isinstance(event, pc.ExitEvent):
            return exits or (only_nonzero_exits and bool(event.exit_code))
        return bool(event.TYPE & shown)

    return showing
