"""The service (``contrib/pyprocconn.service``): systemd's own checks of the unit, and the command
run as the unit runs it: an unprivileged user with only the unit's ambient capabilities, no new
privileges and no writable executable memory. What each capability adds is measured: without
CAP_SYS_PTRACE other users' exe and cwd are refused, without CAP_SYS_NICE the nice value stays."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.test_cli import Cli, _subscribed

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "pyprocconn.service"
NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the command as another user")


def _unit_for_here(scratch: Path) -> Path:
    """The unit with ExecStart pointing at this environment's command (verify checks it)."""
    command = Path(sys.executable).parent / "pyprocconn"
    text = UNIT.read_text().replace("/usr/local/bin/pyprocconn", str(command))
    unit = scratch / UNIT.name
    unit.write_text(text)
    return unit


def _setting(name: str) -> list[str]:
    return [
        value
        for line in UNIT.read_text().splitlines()
        if line.startswith(f"{name}=")
        for value in line.partition("=")[2].split()
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_verifies_the_unit_and_rates_it_ok_or_better(tmp_path: Path) -> None:
    unit = _unit_for_here(tmp_path)
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    rated = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", rated.stdout)
    assert level is not None, rated.stdout[-500:] + rated.stderr
    assert level.group(2) in ("SAFE", "OK") and float(level.group(1)) < 2.0, level.group(0)


# The unit's sandbox, as far as it is this process's own: its user, no new privileges, no
# writable executable memory (prctl PR_SET_MDWE, kept across exec), its ambient capabilities.
# PR_SET_MDWE (65) and PR_MDWE_REFUSE_EXEC_GAIN (1) are <linux/prctl.h>'s (Linux 6.3+), which
# this project does not vendor: the test's own setting, refused loudly if the kernel has none.
_MDWE = (
    "import ctypes, runpy, sys\n"
    "if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit('PR_SET_MDWE refused')\n"
    "sys.argv = ['pyprocconn', *sys.argv[sys.argv.index('pyprocconn') + 1 :]]; "
    "runpy.run_module('pyprocconn', run_name='__main__')"
)


def _as_the_unit(capabilities: list[str]) -> tuple[str, ...]:
    caps = ",".join(f"+{name.removeprefix('CAP_').lower()}" for name in capabilities)
    granted = (f"--inh-caps={caps}", f"--ambient-caps={caps}") if capabilities else ()
    return (
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--no-new-privs",
        *granted,
        sys.executable,
        "-c",
        _MDWE,
    )  # it runs what follows "pyprocconn" in its arguments (Cli adds python -m pyprocconn ...)


def _one_exec_as_root(*args: str, capabilities: list[str]) -> tuple[dict[str, object], str]:
    """A root process's exec, as the command sees it under the unit's sandbox, and -S's
    priority line."""
    cli = Cli("--json", "-S", "-e", "exec", *args, prefix=_as_the_unit(capabilities))
    _subscribed(cli.process.pid)
    with tempfile.TemporaryDirectory() as where:
        # It lives until its exec is shown: its exe, cwd and command line are read from /proc
        # then, and a process that has ended has taken them with it. Its mark is a fraction of a
        # second more to sleep (given an argument it cannot read, sleep exits at once).
        seconds = f"0.{os.getpid()}s"
        mark = json.dumps(seconds)  # as the JSON line shows it: in the argv only
        child = subprocess.Popen(["/bin/sleep", "30", seconds], cwd=where)
        try:
            assert cli.wait_for(lambda lines: any(mark in line for line in lines), timeout=15)
        finally:
            child.kill()
            child.wait()
        code, err = cli.finish()
    assert code == 0, err
    (record,) = [json.loads(line) for line in cli.lines if mark in line]
    (priority,) = [line for line in err.splitlines() if line.startswith("priority:")]
    process = record["process"]
    assert isinstance(process, dict) and process["uid"] == 0
    return {**process, "where": os.path.realpath(where)}, priority


def test_with_the_units_capabilities_it_reads_every_process_and_runs_first() -> None:
    capabilities = _setting("AmbientCapabilities")
    assert set(capabilities) == set(_setting("CapabilityBoundingSet"))
    process, priority = _one_exec_as_root(capabilities=capabilities)
    assert process["exe"] == os.path.realpath("/bin/sleep") and process["cwd"] == process["where"]
    assert process["refused"] == []
    assert priority.startswith("priority: nice -20, time slice")


def test_without_them_the_record_says_less_and_the_command_says_why_not() -> None:
    process, priority = _one_exec_as_root(capabilities=[])
    assert process["exe"] is None and process["cwd"] is None  # refused: root's process
    assert process["refused"] == ["exe", "cwd", "pid_ns"]  # said, not taken for gone
    assert process["ns_pid"] == process["pid"]  # NSpid is anyone's to read
    assert process["argv"] is not None  # the command line is anyone's to read
    assert priority.startswith("priority: nice 0 (not raised: needs CAP_SYS_NICE), time slice")


@pytest.mark.parametrize("granted", [True, False])
def test_check_says_what_this_process_may_do_and_what_for(granted: bool) -> None:
    capabilities = _setting("AmbientCapabilities") if granted else []
    done = subprocess.run(
        [*_as_the_unit(capabilities), "pyprocconn", "--check", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    facts = json.loads(done.stdout)
    assert done.returncode == 0 and facts["events_will_flow"] is True, done.stderr
    exe, nice = facts["other_users_exe_and_cwd"], facts["raise_priority"]
    if granted:
        assert (exe, nice) == ("readable", "yes")
    else:
        assert exe.startswith("refused") and exe.endswith("needs CAP_SYS_PTRACE)")
        assert nice.startswith("no") and nice.endswith("needs CAP_SYS_NICE)")
    assert facts["shortest_time_slice"] == "0.1 ms (no privilege needed)"
