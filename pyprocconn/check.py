"""``pyprocconn --check``: why do I see no events? One line per fact, measured on this machine.

Exit status 0 when events will flow to this process, 1 when they will not.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Callable
from typing import NamedTuple

from pyprocconn import priority, procfs
from pyprocconn.connector import MAX_RCVBUF, ProcConnector
from pyprocconn.errors import ConnectorUnavailableError
from pyprocconn.events import EventType
from pyprocconn.kernel import connector, netlink

# The inode numbers of the initial namespaces (the kernel's include/linux/proc_ns.h:
# PROC_USER_INIT_INO, PROC_PID_INIT_INO): the connector answers only there.
_INITIAL_NAMESPACES = {"user": 0xEFFFFFFD, "pid": 0xEFFFFFFC}
_NOBODY = 65534


def _namespace(kind: str) -> str:
    try:
        inode = os.stat(f"/proc/self/ns/{kind}").st_ino
    except OSError as error:
        return f"unknown ({error.strerror})"
    return "initial" if inode == _INITIAL_NAMESPACES[kind] else f"not the initial one ({inode})"


def listener_registered(wait: float = 0.5) -> bool:
    """Whether the kernel counts any listener: a socket in the group that never subscribed gets
    events only while someone listens (tried with ``/bin/true``, waiting ``wait`` seconds)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink.NETLINK_CONNECTOR) as probe:
        probe.bind((0, connector.CN_IDX_PROC))
        probe.settimeout(wait)
        subprocess.run(["/bin/true"], check=True)
        try:
            probe.recv(4096)
        except TimeoutError:
            return False
        return True


class GroupSocket(NamedTuple):
    """A socket in the process events group: a row of ``/proc/net/netlink``."""

    port: int  # its netlink port id: a process's first netlink socket gets the pid
    queued: int  # bytes waiting to be read (Rmem)
    inode: int  # as /proc/PID/fd/N links name it: socket:[inode]


def group_sockets() -> list[GroupSocket]:
    """The sockets of any process that joined the process events group (NETLINK_CONNECTOR,
    group CN_IDX_PROC) now: subscribing, listening, or just probing."""
    group = 1 << (connector.CN_IDX_PROC - 1)
    found = []
    with open("/proc/net/netlink") as table:
        for line in table.readlines()[1:]:  # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
            fields = line.split()
            if int(fields[1]) == netlink.NETLINK_CONNECTOR and int(fields[3], 16) & group:
                found.append(GroupSocket(int(fields[2]), int(fields[4]), int(fields[9])))
    return found


def in_the_group(pid: int) -> bool:
    """Whether process ``pid`` has a socket in the process events group now (its port id is
    its pid): a process that is subscribing or listening."""
    return any(sock.port == pid for sock in group_sockets())


def _unprivileged_subscription() -> str:
    """Whether a process with no privilege can subscribe (kernels 6.6+), tried as nobody."""
    if os.geteuid() != 0:
        return "this process is unprivileged: see above"
    tried = _in_a_child(_subscribe_as_nobody)
    return "yes" if not tried.error else f"no ({tried.error})"


def _subscribe_as_nobody() -> None:
    """Drop every privilege, then subscribe like anyone would (in a child: see _in_a_child)."""
    os.setgroups([])
    os.setgid(_NOBODY)
    os.setuid(_NOBODY)
    ProcConnector(ack_timeout=1.0, rcvbuf=None).close()


class _Tried(NamedTuple):
    """What an attempt in a child gave: its result's text, or the error (errno, text)."""

    result: str = ""
    errno: int = 0
    error: str = ""


def _in_a_child(attempt: Callable[[], object]) -> _Tried:
    """Try ``attempt`` in a forked child, so nothing here changes (its priority, its slice).
    Any failure is an error: a child that dies or raises anything does not count as success."""
    read_end, write_end = os.pipe()
    try:
        child = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if child == 0:
        tried = _Tried(error="the attempt failed")
        try:
            tried = _Tried(result=str(attempt()))
        except OSError as error:
            tried = _Tried(errno=error.errno or 0, error=error.strerror or str(error))
        except BaseException as error:
            tried = _Tried(error=repr(error))
        finally:
            os.write(write_end, json.dumps(tried).encode())
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read()
    if not said or os.waitstatus_to_exitcode(status) != 0:
        return _Tried(error=f"the test process ended with status {status}")
    return _Tried(*json.loads(said))


_REFUSED = (errno.EACCES, errno.EPERM)
_GONE = (errno.ENOENT, errno.ESRCH)


def _others_processes() -> list[int]:
    """Ordinary processes of other users, newest first, to read /proc of (init and kernel
    threads have their own rules)."""
    me = os.geteuid()
    found = []
    for pid in sorted((int(name) for name in os.listdir("/proc") if name.isdigit()), reverse=True):
        with contextlib.suppress(OSError):
            if pid > 1 and os.stat(f"/proc/{pid}").st_uid != me and procfs.argv(pid):
                found.append(pid)
    return found


def _others_exe() -> str:
    for pid in _others_processes():
        tried = _in_a_child(functools.partial(os.readlink, f"/proc/{pid}/exe"))
        if tried.errno in _GONE:
            continue  # it ended meanwhile: try another
        if tried.errno in _REFUSED:
            return f"refused ({tried.error}: needs CAP_SYS_PTRACE)"
        return "readable" if not tried.error else f"unknown ({tried.error})"
    return "readable (every process is this user's)"


def privileges() -> list[tuple[str, str]]:
    """What this process may do beyond subscribing, tried (not read off capability bits)."""
    lines = [("other users' exe and cwd", _others_exe())]
    tried = _in_a_child(lambda: priority.raise_priority(priority.HIGHEST_NICE))
    if not tried.error:
        said = "yes"
    elif tried.errno in _REFUSED:
        said = f"no ({tried.error}: needs CAP_SYS_NICE)"
    else:
        said = f"unknown ({tried.error})"
    lines.append(("raise priority (nice -20, -r)", said))
    tried = _in_a_child(priority.shorten_slice)  # the slice granted, or None
    granted = None if tried.error or tried.result == "None" else float(tried.result)
    said = "no" if granted is None else f"{granted * 1e3:g} ms (no privilege needed)"
    lines.append(("shortest time slice", said))
    return lines


def facts() -> tuple[list[tuple[str, str]], bool]:
    """(fact, value) lines, and whether events will flow to this process."""
    lines = [("kernel", f"Linux {platform.release()} {platform.machine()}")]
    lines.append(("user namespace", _namespace("user")))
    lines.append(("pid namespace", _namespace("pid")))
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink.NETLINK_CONNECTOR).close()
        lines.append(("netlink connector", "present"))
    except OSError as error:
        lines.append(("netlink connector", f"absent ({error.strerror}: CONFIG_CONNECTOR)"))
        return lines, False
    lines.append(("other listeners", "yes" if listener_registered() else "none"))
    try:
        conn = ProcConnector(ack_timeout=1.0)
    except ConnectorUnavailableError as error:
        lines.append(("subscription", f"no answer from the kernel: {error.strerror}"))
        return lines, False
    except OSError as error:
        name = errno.errorcode.get(error.errno or 0, "?")
        lines.append(("subscription", f"refused ({name}: {error.strerror})"))
        return lines, False
    with conn:
        lines.append(("subscription", "acknowledged by the kernel"))
        conn.rcvbuf = MAX_RCVBUF
        lines.append(("largest receive buffer granted", f"{conn.rcvbuf} bytes"))
    with ProcConnector(events=EventType.EXEC, ack_timeout=1.0) as filtered:
        mode = filtered.filter_mode
    lines.append(("kernel-side event filter", "yes" if mode == "kernel" else f"no ({mode} space)"))
    lines.append(("unprivileged subscription", _unprivileged_subscription()))
    return [*lines, *privileges()], True


def _key(name: str) -> str:
    """A fact's JSON key: its name before any bracket, in snake case."""
    return re.sub(r"\W+", "_", name.split(" (", maxsplit=1)[0]).strip("_").lower()


def main(write: Callable[[str], object] = print, as_json: bool = False) -> int:
    """The facts as aligned lines, or (``as_json``) one JSON object keyed by the facts' names
    in snake case, with ``events_will_flow`` a boolean; exit status 0 when events will flow."""
    lines, flowing = facts()
    if as_json:
        found: dict[str, object] = {_key(name): value for name, value in lines}
        write(json.dumps({**found, "events_will_flow": flowing}))
        return 0 if flowing else 1
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        write(f"{name:<{width}}  {value}")
    write(f"{'events will flow':<{width}}  {'yes' if flowing else 'no'}")
    return 0 if flowing else 1
