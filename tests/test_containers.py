"""Containers by the runtimes' cgroup naming: the parser on the paths each runtime writes, then
the real kernel: cgroups named as each runtime names them (v2 and a v1 hierarchy), a process
moved in, its exec's record; and a pid namespace made with ``unshare``."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprocconn as pc
from pyprocconn.containers import Container, cgroup_paths, container_of

ID = "0123456789abcdef" * 4
POD = "5c9d6f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
NAMED = {
    "/system.slice/docker-{ID}.scope": Container("docker", ID),
    "/docker/{ID}": Container("docker", ID),
    "/machine.slice/libpod-{ID}.scope/container": Container("podman", ID),
    "/libpod_parent/libpod-{ID}": Container("podman", ID),
    "/system.slice/cri-containerd-{ID}.scope": Container("containerd", ID),
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{PODU}.slice/"
    "cri-containerd-{ID}.scope": Container("containerd", ID, POD, "burstable"),
    "/kubepods.slice/kubepods-pod{PODU}.slice/crio-{ID}.scope": Container(
        "cri-o", ID, POD, "guaranteed"
    ),
    "/kubepods/besteffort/pod{POD}/{ID}": Container("kubernetes", ID, POD, "besteffort"),
    "/kubepods/pod{POD}/{ID}": Container("kubernetes", ID, POD, "guaranteed"),
    "/lxc.payload.web1": Container("lxc", "web1"),
    "/lxc/web1/init.scope": Container("lxc", "web1"),
    "/machine.slice/machine-my\\x2dbox.scope/payload": Container("systemd-nspawn", "my-box"),
}
NOT_CONTAINERS = [
    "/",
    "/user.slice/user-0.slice/session-3.scope",
    "/system.slice/crio-conmon-{ID}.scope",
    "/system.slice/docker.service",
    "/kubepods.slice/kubepods-burstable.slice",
    "/lxc.monitor.web1",
    "/{ID}",  # 64 hex digits alone say no runtime
]


def _path(template: str) -> str:
    return template.format(ID=ID, POD=POD, PODU=POD.replace("-", "_"))


@pytest.mark.parametrize("template", sorted(NAMED))
def test_each_runtimes_naming_gives_its_container(template: str) -> None:
    assert container_of([_path(template)]) == NAMED[template]


@pytest.mark.parametrize("template", NOT_CONTAINERS)
def test_other_paths_name_no_container(template: str) -> None:
    assert container_of([_path(template)]) is None


def test_the_unified_line_is_shown_and_v1_lines_still_name_the_container() -> None:
    hybrid = (
        f"12:memory:/docker/{ID}\n1:name=systemd:/system.slice/docker.service\n"
        "0::/system.slice/docker.service\n"
    ).encode()
    paths = cgroup_paths(hybrid)
    assert paths[0] == "/system.slice/docker.service"  # the unified hierarchy's
    assert container_of(paths) == Container("docker", ID)
    assert cgroup_paths(b"1:name=systemd:/a\n2:cpu:/b\n") == ["/a", "/b"]  # v1 only: first
    # A cgroup's name may hold any byte but "/" and "\n": no other line break splits a line.
    forged = f"0::/user.slice/real\x1c0::/docker/{ID}\x85x\u2028y\n".encode()
    assert cgroup_paths(forged) == [f"/user.slice/real\x1c0::/docker/{ID}\x85x\u2028y"]
    assert container_of(cgroup_paths(forged)) is None
    assert Container("docker", ID).short_id == ID[:12]
    assert Container("lxc", "web1").short_id == "web1"


# -- on the real kernel ------------------------------------------------------------------------
UNIFIED = Path("/sys/fs/cgroup/unified")
V1_MEMORY = Path("/sys/fs/cgroup/memory")
live = pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups and namespaces needs root")


@contextlib.contextmanager
def _cgroup(root: Path, relative: str) -> Iterator[Path]:
    """A cgroup made for the test (its parents too), removed after."""
    if not (root / "cgroup.procs").is_file():
        pytest.skip(f"no cgroup hierarchy at {root}")
    top = root / f"pyprocconn-test-{os.getpid()}"
    made = top / relative.strip("/")
    made.mkdir(parents=True)
    try:
        yield made
    finally:
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _exec_record_in(cgroup: Path) -> pc.Process:
    """A child moved into ``cgroup`` execs /bin/sleep: its exec's record from a table."""
    child = subprocess.Popen(
        ["/bin/sh", "-c", "read go; exec /bin/sleep 0.5"], stdin=subprocess.PIPE
    )
    try:
        (cgroup / "cgroup.procs").write_text(str(child.pid))
        with pc.ProcessTable(snapshot=False) as table:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for record in table.feed(table.conn.recv_batch(0.2)):
                    if (
                        isinstance(record, pc.Seen)
                        and isinstance(record.event, pc.ExecEvent)
                        and record.event.process_tgid == child.pid
                        and record.process is not None
                        # not the sh's own exec, which a table made just after Popen may get
                        and record.process.argv == ["/bin/sleep", "0.5"]
                    ):
                        return record.process
        pytest.fail("the child's exec was not seen")
    finally:
        child.kill()
        child.wait()


@live
@pytest.mark.parametrize(
    "relative",
    [
        f"system.slice/docker-{ID}.scope",
        f"kubepods-pod{POD.replace('-', '_')}.slice/crio-{ID}.scope",
    ],
)
def test_a_process_moved_into_a_runtimes_cgroup_is_in_its_container(relative: str) -> None:
    with _cgroup(UNIFIED, relative) as cgroup:
        process = _exec_record_in(cgroup)
    assert process.cgroup is not None and process.cgroup.endswith(relative)
    runtime = "docker" if "docker" in relative else "cri-o"
    assert process.container is not None and process.container.runtime == runtime
    assert process.container.id == ID


@live
def test_a_v1_hierarchy_names_the_container_where_the_unified_one_does_not() -> None:
    with _cgroup(V1_MEMORY, f"docker/{ID}") as cgroup:
        process = _exec_record_in(cgroup)
    assert process.container == Container("docker", ID)
    assert process.cgroup is not None and ID not in process.cgroup  # the unified path shown


@live
@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare")
def test_a_process_in_its_own_pid_namespace_carries_its_pid_there() -> None:
    with pc.ProcessTable(snapshot=False) as table:
        seconds = f"30.{os.getpid()}"  # this test's own sleep, whatever else runs
        # The sleep lives until the table has its exec (its command line is read from /proc
        # then, and leaves with it), then ends with unshare (--kill-child).
        unshare = ["unshare", "--pid", "--fork", "--kill-child"]
        child = subprocess.Popen([*unshare, "/bin/sh", "-c", f"exec /bin/sleep {seconds}"])
        try:
            found = None
            deadline = time.monotonic() + 10
            while found is None and time.monotonic() < deadline:
                for record in table.feed(table.conn.recv_batch(0.2)):
                    process = getattr(record, "process", None)
                    event = getattr(record, "event", None)
                    if (
                        isinstance(event, pc.ExecEvent)
                        and process
                        and process.argv == ["/bin/sleep", seconds]
                    ):
                        found = process
        finally:
            child.kill()
            child.wait(timeout=10)
    assert found is not None, "the sleep's exec was not seen"
    assert found.ns_pid == 1  # the namespace's first process
    assert found.pid_ns is not None and found.pid_ns != os.stat("/proc/self/ns/pid").st_ino


@live
def test_the_command_shows_filters_and_names_the_container() -> None:
    from tests.test_cli import Cli, _subscribed

    with _cgroup(UNIFIED, f"system.slice/docker-{ID}.scope") as cgroup:
        as_json = Cli("--json", "-e", "exec", "--container", ID[:8])
        as_text = Cli("-x", "-e", "exec", "--container", ID[:8])
        _subscribed(as_json.process.pid)
        _subscribed(as_text.process.pid)
        subprocess.run(["/bin/true", "outside"], check=True)
        # The child lives (and stays unreaped) until both commands have shown it: the filter
        # needs its cgroup from /proc, which a /bin/true reaped at once may take with it.
        child = subprocess.Popen(
            ["/bin/sh", "-c", "read go; exec /bin/sleep 30"], stdin=subprocess.PIPE
        )
        try:
            (cgroup / "cgroup.procs").write_text(str(child.pid))
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            assert as_json.wait_for(lambda lines: any('"exec"' in line for line in lines))
            assert as_text.wait_for(lambda lines: any(" exec " in line for line in lines))
        finally:
            child.kill()
            child.wait(timeout=10)
        as_json.finish()
        as_text.finish()
    import json

    records = [json.loads(line) for line in as_json.lines]
    assert [r["process"]["argv"] for r in records] == [["/bin/sleep", "30"]]  # not "outside"
    container = records[0]["process"]["container"]
    assert container == {"runtime": "docker", "id": ID, "pod_uid": None, "qos": None}
    assert records[0]["process"]["pid_ns"] == os.stat("/proc/self/ns/pid").st_ino
    header, *lines = as_text.lines
    assert "CONTAINER" in header and len(lines) == 1 and f" {ID[:12]} " in lines[0], lines


@live
def test_a_cgroup_name_cannot_forge_a_line_or_a_container() -> None:
    # Anyone with a delegated subtree names cgroups: a line break other than "\n" is a name.
    name = f"real\x1c0::docker-{ID}.scope"
    with _cgroup(UNIFIED, name) as cgroup:
        process = _exec_record_in(cgroup)
    assert process.cgroup is not None and process.cgroup.endswith(name)
    assert process.container is None
