"""What the command writes: one line per entry, as aligned text or as JSON Lines.

An entry is an event (with the process as it was then, in table mode), a loss, a rescan or a
process that ended unseen. :class:`TextFormat` and :class:`JsonFormat` each turn an entry into a
line; a :class:`~pyprocconn.command.sink.Sink` writes them in time. Everything a process
chooses (names, arguments, paths) goes through :mod:`pyprocconn.command.quoting` before it
reaches a text line; JSON escapes it by itself.
"""

from __future__ import annotations

import datetime
import functools
import json
import pwd
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyprocconn as pc
from pyprocconn.command.quoting import escape_name, shell_join
from pyprocconn.command.sink import Sink
from pyprocconn.processes import Exited, Process, Resynced

_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder for every line
_MAX_QUOTED = 1024  # command lines quoted, processes encoded and remembered (snapshots)


@dataclass(frozen=True)
class EventEntry:
    """An event to show. ``process``: as the table knew it at that event (table mode);
    ``lifetime_ns``: an exit's, the thread's own for a thread; ``proc``: --raw --comm/--cmdline."""

    event: pc.ProcEvent
    process: Process | None = None
    lifetime_ns: int | None = None
    depth: int = 0
    thread: bool = False
    proc: dict[str, Any] | None = None


@dataclass(frozen=True)
class LostEntry:
    lost: pc.EventsLost


@dataclass(frozen=True)
class ResyncEntry:
    resync: Resynced


@dataclass(frozen=True)
class VanishedEntry:
    exited: Exited


Entry = EventEntry | LostEntry | ResyncEntry | VanishedEntry


@functools.lru_cache(maxsize=1024)  # per event otherwise: a lookup costs ~15 us
def user_name(uid: int | None) -> str:
    """The user's name (read once per run: a rename meanwhile is not seen)."""
    if uid is None:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def subject_pid(event: pc.ProcEvent) -> int | None:
    """The process an event is about (the child of a fork)."""
    pid = getattr(event, "child_pid" if event.NAME == "fork" else "process_pid", None)
    return pid if isinstance(pid, int) else None


def exit_fields(event: pc.ExitStatus) -> dict[str, Any]:
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


def process_fields(process: Process | None) -> dict[str, Any] | None:
    """The process as JSON: identity, command, credentials, where it runs."""
    if process is None:
        return None
    return {
        "pid": process.pid,
        "ppid": process.ppid,
        "start_ns": process.start_ns,
        "origin": process.origin,
        "argv": process.argv,
        "argv_truncated": process.argv_truncated,
        "comm": process.comm,
        "exe": process.exe,
        "cwd": process.cwd,
        "refused": list(process.refused),
        "uid": process.uid,
        "euid": process.euid,
        "user": user_name(process.euid),
        "gid": process.gid,
        "egid": process.egid,
        "sid": process.sid,
        "cgroup": process.cgroup,
        "container": process.container._asdict() if process.container else None,
        "ns_pid": process.ns_pid,
        "pid_ns": process.pid_ns,
        "kernel_thread": process.kernel_thread,
        "complete": process.complete,
    }


class Clock:
    """The kernel's CLOCK_MONOTONIC ``timestamp_ns`` as local wall-clock time; the part down to
    the second is formatted once per second, not per event."""

    def __init__(self) -> None:
        self.offset_ns = time.time_ns() - time.monotonic_ns()
        self.zone = datetime.datetime.now().astimezone().tzinfo  # looked up once
        self._second = -1
        self._text = self._iso = self._suffix = ""

    def _at(self, timestamp_ns: int | None) -> tuple[int, int]:
        wall_ns = timestamp_ns if timestamp_ns is not None else time.monotonic_ns()
        second, ns = divmod(wall_ns + self.offset_ns, 1_000_000_000)
        if second != self._second:
            when = datetime.datetime.fromtimestamp(second, self.zone)
            self._second, self._text = second, when.strftime("%H:%M:%S")
            iso = when.isoformat(timespec="microseconds")
            self._iso, self._suffix = iso[:19], iso[26:]
        return second, ns // 1000

    def text(self, timestamp_ns: int | None) -> str:
        """``HH:MM:SS.ffffff``"""
        micro = self._at(timestamp_ns)[1]
        return f"{self._text}.{micro:06d}"

    def iso(self, timestamp_ns: int | None) -> str:
        """ISO 8601 with microseconds and the zone's offset."""
        micro = self._at(timestamp_ns)[1]
        return f"{self._iso}.{micro:06d}{self._suffix}"


def _thread_of(pid: int, tgid: int) -> str:
    return f" thread of {tgid}" if pid != tgid else ""


# The human column after the pid, by event name; other events (new ones from newer headers
# too) show their fields as name value.
_DETAILS: dict[str, Any] = {
    "fork": lambda e: f"parent {e.parent_pid}" + _thread_of(e.child_pid, e.child_tgid),
    "exit": lambda e: e.describe_status() + _thread_of(e.process_pid, e.process_tgid),
    "uid": lambda e: f"ruid {e.ruid} euid {e.euid}",
    "gid": lambda e: f"rgid {e.rgid} egid {e.egid}",
    "ptrace": lambda e: "detached" if e.tracer_pid == 0 else f"tracer {e.tracer_pid}",
    "coredump": lambda e: f"parent {e.parent_pid}",
    "ack": lambda e: f"err {e.err}",
    "unknown": lambda e: f"what {e.what:#x} data {e.data.hex()}",
    "exec": lambda e: "",
    "sid": lambda e: "",
}


def details(event: pc.ProcEvent, name: Callable[[str], str] = escape_name) -> str:
    """The event's own part of the detail column (``name`` escapes a process's name)."""
    if isinstance(event, pc.CommEvent):
        return f"comm {name(event.comm)}"
    formatter = _DETAILS.get(event.NAME)
    if formatter is not None:
        return str(formatter(event))
    fields = event.to_dict()
    for known in ("what", "cpu", "timestamp_ns", "process_pid"):
        fields.pop(known, None)
    return " ".join(f"{key} {value}" for key, value in fields.items())


class TextFormat:
    """Aligned columns: TIME EVENT PID [UID EUID USER CONTAINER] DETAILS; the command line
    shell-quoted,
    names escaped, so one entry is one line and nothing reaches the terminal raw."""

    def __init__(self, ids: bool, table: bool, ascii_only: bool = False) -> None:
        """``ascii_only``: the stream cannot encode more than ASCII (its locale says so), so
        every other character is escaped too, in a form bash reads back."""
        self.ids, self.table = ids, table
        self.clock = Clock()
        self.name = functools.partial(escape_name, ascii_only=ascii_only)
        self.join = functools.partial(shell_join, ascii_only=ascii_only)
        self._quoted: dict[int, tuple[list[str], str]] = {}  # id(argv) -> (argv, quoted)

    def header(self) -> str | None:
        columns = f"{'UID':>6} {'EUID':>6} {'USER':<10} {'CONTAINER':<12} " if self.ids else ""
        return f"{'TIME':<15} {'EVENT':<8} {'PID':>7}  {columns}DETAILS".rstrip()

    def _line(self, when: int | None, kind: str, pid: object, text: str) -> str:
        return f"{self.clock.text(when):<15} {kind:<8} {pid!s:>7}  {text}".rstrip()

    def command(self, process: Process | None) -> str:
        """What ran: the command line, shell-quoted (`` ...(truncated)`` when cut); ``[name]``
        for a kernel thread or when only the name is known; ``<unknown>`` (as forkstat says)
        when it ended before anything could be read."""
        if process is not None and process.argv and not process.kernel_thread:
            argv = process.argv
            known = self._quoted.get(id(argv))
            if known is None or known[0] is not argv:
                if len(self._quoted) >= _MAX_QUOTED:
                    self._quoted.clear()
                known = self._quoted[id(argv)] = (argv, self.join(argv))
            return known[1] + (" ...(truncated)" if process.argv_truncated else "")
        if process is not None and process.comm:
            return f"[{self.name(process.comm)}]"
        return "<unknown>"

    def program(self, process: Process | None) -> str:
        """What ran, for ``-S``: the executable's path (``argv[0]`` when it could not be read),
        ``[name]`` for a kernel thread or when only the name is known, else ``<unknown>``."""
        if process is not None and not process.kernel_thread:
            path = process.exe or (process.argv[0] if process.argv else None)
            if path:
                return self.name(path)
        if process is not None and process.comm:
            return f"[{self.name(process.comm)}]"
        return "<unknown>"

    def event(self, entry: EventEntry) -> str:
        event, process = entry.event, entry.process
        pid = subject_pid(event)
        text = details(event, self.name)
        if self.table and isinstance(event, pc.ExitEvent) and not entry.thread:
            # the process's end, which its last thread's exit may carry: the process's pid
            pid, text = event.process_tgid, event.describe_status()
        if self.table:
            what = self.command(process)
            if event.NAME == "exec":
                text = what if process is None or process.complete else f"{what} (gone)"
            elif event.NAME == "exit" and entry.lifetime_ns is not None:
                text = f"{text} after {entry.lifetime_ns / 1e9:.3f}s  {what}"
            else:
                text = f"{text}  {what}".strip()
            text = "  " * entry.depth + text
            if self.ids:
                uid, euid = (None, None) if process is None else (process.uid, process.euid)
                user = self.name(user_name(euid))
                found = None if process is None else process.container
                # Quoted as an argument: a name a delegated cgroup chose may hold spaces.
                container = "-" if found is None else self.join([found.short_id])
                text = f"{_dash(uid):>6} {_dash(euid):>6} {user:<10} {container:<12} {text}"
        if entry.proc is not None:
            text = " ".join(filter(None, [text, *self._proc_text(entry.proc)]))
        return self._line(
            event.timestamp_ns,
            "thread" if entry.thread else event.NAME,
            "-" if pid is None else pid,
            text,
        )

    def _proc_text(self, proc: dict[str, Any]) -> list[str]:
        """--raw --comm/--cmdline: ``[name]``, ``[command line]``, ``(gone)``."""
        known = [f"[{self.name(proc['comm'])}]"] if "comm" in proc else []
        if proc.get("cmdline"):
            known.append(f"[{self.join(proc['cmdline'])}]")
        return [*known, "(gone)" if proc["gone"] else ""]

    def lost(self, entry: LostEntry) -> str:
        return self._line(None, "LOST", "-", str(entry.lost))

    def resync(self, entry: ResyncEntry) -> str:
        record = entry.resync
        return self._line(
            None,
            "RESYNC",
            "-",
            f"/proc rescanned: {len(record.vanished)} ended "
            f"unseen, {len(record.appeared)} started unseen",
        )

    def vanished(self, entry: VanishedEntry) -> str:
        process = entry.exited.process
        return self._line(None, "VANISHED", process.pid, f"ended unseen  {self.command(process)}")


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


class JsonFormat:
    """One JSON object per line: ``event``, ``time``, the event's fields with the kernel's
    names, and what the command adds (decoded exit status, ``process``, ``duration_s``)."""

    def __init__(self, table: bool) -> None:
        self.table = table
        self.clock = Clock()
        self._encoded: dict[int, tuple[Process, str]] = {}  # id(process) -> (process, JSON)

    def _process(self, process: Process | None) -> str:
        """A process snapshot as JSON, encoded once (a snapshot never changes; encoding costs
        ~0.35 us per key here, and a fork and its exit share one snapshot under a storm)."""
        if process is None:
            return "null"
        known = self._encoded.get(id(process))
        if known is None or known[0] is not process:
            if len(self._encoded) >= _MAX_QUOTED:
                self._encoded.clear()
            known = self._encoded[id(process)] = (process, _JSON.encode(process_fields(process)))
        return known[1]

    def header(self) -> str | None:
        return None

    def event(self, entry: EventEntry) -> str:
        event = entry.event
        record: dict[str, Any] = {"event": event.NAME, "time": self.clock.iso(event.timestamp_ns)}
        record.update(event.to_dict())
        if event.NAME == "exit":
            record.update(exit_fields(event))  # type: ignore[arg-type]
            if entry.lifetime_ns is not None:
                record["duration_s"] = entry.lifetime_ns / 1e9
        if entry.proc is not None:
            record["proc"] = entry.proc
        if self.table:  # the same as record["process"] = process_fields(entry.process)
            return f'{_JSON.encode(record)[:-1]},"process":{self._process(entry.process)}}}'
        return _JSON.encode(record)

    def lost(self, entry: LostEntry) -> str:
        record = {"event": "lost", "time": self.clock.iso(None), **entry.lost._asdict()}
        return _JSON.encode(record)

    def resync(self, entry: ResyncEntry) -> str:
        vanished = [exited.process.pid for exited in entry.resync.vanished]
        appeared = [process.pid for process in entry.resync.appeared]
        return _JSON.encode(
            {
                "event": "resync",
                "time": self.clock.iso(None),
                "vanished": vanished,
                "appeared": appeared,
            }
        )

    def vanished(self, entry: VanishedEntry) -> str:
        process = entry.exited.process
        return _JSON.encode(
            {
                "event": "vanished",
                "time": self.clock.iso(None),
                "pid": process.pid,
                "process": process_fields(process),
            }
        )


Format = TextFormat | JsonFormat


class Output:
    """Entries to lines, in one format, to one sink; counts the events shown (for -S)."""

    def __init__(self, sink: Sink, format_: Format) -> None:
        self.sink, self.format = sink, format_
        self.counts: dict[str, int] = {}
        header = format_.header()
        if header is not None:
            sink.write(header)

    def write(self, entry: Entry) -> None:
        fmt = self.format
        if isinstance(entry, EventEntry):
            name = entry.event.NAME
            self.counts[name] = self.counts.get(name, 0) + 1
            line = fmt.event(entry)
        elif isinstance(entry, LostEntry):
            line = fmt.lost(entry)
        elif isinstance(entry, ResyncEntry):
            line = fmt.resync(entry)
        else:
            line = fmt.vanished(entry)
        self.sink.write(line)
