"""Which container a process runs in, from its cgroup path, by the runtimes' own naming.

``/proc/PID/cgroup`` has one line per hierarchy (``ID:CONTROLLERS:PATH``). The path shown for a
process is the unified hierarchy's (``0::``) where the host has one: on a cgroup v2 host it is
the only line, and on a hybrid host systemd keeps its units there too. Otherwise (a v1-only host)
it is the first line. The container is looked for in that path first, then in every other
line's (a runtime using cgroupfs on a hybrid host names its cgroups in the v1 controllers only);
the first that matches a runtime's naming wins. A path that matches none gives no container (the
process runs on the host, or under a runtime not known here): the path itself is still shown.

Naming, as the runtimes write it (systemd cgroup driver, then cgroupfs):

- Docker: ``docker-<id>.scope``, ``/docker/<id>``; Podman: ``libpod-<id>.scope``,
  ``/libpod_parent/libpod-<id>``; containerd (CRI): ``cri-containerd-<id>.scope``; CRI-O:
  ``crio-<id>.scope`` (their ``conmon`` helpers, ``*-conmon-<id>.scope``, are not the container);
- Kubernetes pods: ``kubepods[-<qos>]-pod<uid>.slice`` (``_`` for ``-`` in the uid) or
  ``/kubepods[/<qos>]/pod<uid>/<id>``; the QoS class is ``guaranteed`` where no class is named;
- LXC: ``lxc.payload.<name>`` (LXC 4+) or ``/lxc/<name>``; systemd-nspawn:
  ``machine-<name>.scope`` (systemd's escaping, ``\\x2d`` for ``-``, undone).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

_ID = r"[0-9a-f]{64}"
_SCOPES = (
    ("docker", re.compile(rf"docker-({_ID})\.scope")),
    ("podman", re.compile(rf"libpod-({_ID})\.scope")),
    ("containerd", re.compile(rf"cri-containerd-({_ID})\.scope")),
    ("cri-o", re.compile(rf"crio-({_ID})\.scope")),
)
_CGROUPFS = (("docker", "docker"), ("podman", "libpod_parent"))  # runtime, parent directory
_POD_SLICE = re.compile(r"kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_]{36})\.slice")
_POD_DIR = re.compile(r"pod([0-9a-f-]{36})")
_QOS = ("burstable", "besteffort")
_LXC_PAYLOAD = re.compile(r"lxc\.payload\.(.+)")
_MACHINE = re.compile(r"machine-(.+)\.scope")


class Container(NamedTuple):
    """A container a process runs in: its runtime (``docker``, ``podman``, ``containerd``,
    ``cri-o``, ``lxc``, ``systemd-nspawn``, or ``kubernetes`` for a pod's container whose
    runtime its cgroupfs path does not say), its id (the runtime's: 64 hex digits, or a name),
    and, in a Kubernetes pod, the pod's uid and QoS class."""

    runtime: str
    id: str
    pod_uid: str | None = None
    qos: str | None = None

    @property
    def short_id(self) -> str:
        """What ``docker ps`` shows: the first 12 hex digits of an id (a name as it is)."""
        return self.id[:12] if re.fullmatch(_ID, self.id) else self.id


def cgroup_paths(raw: bytes) -> list[str]:
    """``/proc/PID/cgroup``'s paths, the one shown first: the unified hierarchy's (``0::``)
    where present, else the first line's; the others after it, in the file's order."""
    unified: list[str] = []
    others: list[str] = []
    # Lines end at "\n" only: a cgroup's name may hold any other line break (str.splitlines
    # would split at \x1c, \x85, ... and let a delegated cgroup's name forge a line).
    for line in (os.fsdecode(part) for part in raw.split(b"\n") if part):
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        (unified if number == "0" and not controllers else others).append(path)
    return unified + others


def container_of(paths: list[str]) -> Container | None:
    """The container the first path that names one names (see the module doc)."""
    for path in paths:
        found = _in_path(path)
        if found is not None:
            return found
    return None


def _in_path(path: str) -> Container | None:
    parts = [part for part in path.split("/") if part]
    pod: tuple[str, str] | None = None  # (uid, QoS class) once a pod's level is passed
    for index, part in enumerate(parts):
        in_pod = _pod(parts, index)
        if in_pod is not None:
            pod = in_pod
            continue
        found = _named(part, parts[index - 1] if index else "", index, pod)
        if found is not None:
            return found
    return None


def _pod(parts: list[str], index: int) -> tuple[str, str] | None:
    """(uid, QoS class) when ``parts[index]`` is a Kubernetes pod's level."""
    part = parts[index]
    named = _POD_SLICE.fullmatch(part)
    if named:
        return named.group(2).replace("_", "-"), named.group(1) or "guaranteed"
    named = _POD_DIR.fullmatch(part)
    if named and index and parts[0] == "kubepods":
        return named.group(1), parts[1] if parts[1] in _QOS else "guaranteed"
    return None


def _named(part: str, parent: str, index: int, pod: tuple[str, str] | None) -> Container | None:
    """The container one level of a path names, if any."""
    uid, qos = pod if pod is not None else (None, None)
    for runtime, scope in _SCOPES:
        named = scope.fullmatch(part)
        if named:
            return Container(runtime, named.group(1), uid, qos)
    if re.fullmatch(rf"(?:libpod-)?{_ID}", part):
        container_id = part.removeprefix("libpod-")
        for runtime, directory in _CGROUPFS:
            if parent == directory:
                return Container(runtime, container_id)
        if uid is not None:
            return Container("kubernetes", container_id, uid, qos)
    payload = _LXC_PAYLOAD.fullmatch(part)
    if payload or (parent == "lxc" and index == 1):
        return Container("lxc", payload.group(1) if payload else part)
    machine = _MACHINE.fullmatch(part)
    if machine and parent == "machine.slice":
        return Container("systemd-nspawn", machine.group(1).replace("\\x2d", "-"))
    return None
