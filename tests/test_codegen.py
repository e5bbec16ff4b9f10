"""The generator: golden output, --check, clear errors on constructs it does not know."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.__main__ import COMMAND, main
from codegen.cparse import parse_header
from codegen.render import render
from codegen.verify import layout_facts, load_generated
from tests.test_codegen_layout import SYNTHETIC_NEWER

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "tests" / "codegen" / "synthetic.h"
GOLDEN = ROOT / "tests" / "codegen" / "synthetic.py.golden"


def test_golden_output_of_a_synthetic_header() -> None:
    text = render([parse_header(SYNTHETIC)], COMMAND)["synthetic.py"]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "generator output changed; rerun with UPDATE_GOLDEN=1"


def test_synthetic_header_layout_matches_the_compiler() -> None:
    model = parse_header(SYNTHETIC)
    files = render([model], COMMAND)
    with load_generated(files) as modules:
        module = modules["synthetic"]
        assert module.SYN_ALL == 0x80000001  # a macro over enum constants defined after it
        assert module.SYN_LOCAL_B == 6  # the enum nested in the struct
        assert module.syn_outer.stamp.offset % 8 == 0
    got, expected, _ = layout_facts([SYNTHETIC], [model], files)
    assert got == expected


def test_untranslatable_macros_are_listed_not_dropped() -> None:
    text = render([parse_header(SYNTHETIC)], COMMAND)["synthetic.py"]
    assert "SYN_NAME (line 12)" in text
    assert "SYN_HDRLEN: Final = 48" in text  # sizeof(struct) through a function-like macro


def test_output_is_formatted_and_deterministic(
    all_header_sets: dict[str, Path], tmp_path: Path
) -> None:
    for name, headers in {**all_header_sets, "synthetic-newer": SYNTHETIC_NEWER}.items():
        first, second = tmp_path / f"{name}-1", tmp_path / f"{name}-2"
        assert main(["--headers", str(headers), "--output", str(first)]) == 0
        assert main(["--headers", str(headers), "--output", str(second)]) == 0
        for generated in sorted(first.iterdir()):
            assert generated.read_bytes() == (second / generated.name).read_bytes()
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--check", str(first)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_check_passes_on_the_checked_in_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0


def test_check_fails_after_a_header_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers, out = tmp_path / "headers", tmp_path / "kernel"
    shutil.copytree(ROOT / "headers", headers)
    assert main(["--headers", str(headers), "--output", str(out)]) == 0
    assert main(["--headers", str(headers), "--output", str(out), "--check"]) == 0
    netlink = headers / "netlink.h"
    netlink.write_text(
        netlink.read_text().replace("#define NETLINK_SMC\t\t22", "#define NETLINK_SMC\t\t23")
    )
    written = out / "netlink.py"
    before = written.stat().st_mtime_ns
    assert main(["--headers", str(headers), "--output", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale: netlink.py" in err and "NETLINK_SMC: Final = 23" in err
    assert written.stat().st_mtime_ns == before  # --check writes nothing


def test_check_fails_after_a_template_change(tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "codegen", copy / "codegen")
    shutil.copytree(ROOT / "headers", copy / "headers")
    shutil.copytree(ROOT / "pyprocconn" / "kernel", copy / "pyprocconn" / "kernel")

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codegen", "--check"],
            cwd=copy,
            capture_output=True,
            text=True,
            check=False,
        )

    assert check().returncode == 0
    template = copy / "codegen" / "templates" / "module.py.jinja"
    template.write_text(template.read_text().replace("Do not edit.", "Do not edit!"))
    result = check()
    assert result.returncode == 1
    assert "stale: cn_proc.py, connector.py, netlink.py" in result.stderr


def test_headers_readme_records_each_vendored_file() -> None:
    import hashlib

    readme = (ROOT / "headers" / "README.md").read_text()
    for header in sorted((ROOT / "headers").glob("*.h")):
        digest = hashlib.sha256(header.read_bytes()).hexdigest()
        assert f"`{header.name}`" in readme and digest in readme, header.name


def test_output_folder_is_a_self_contained_package(tmp_path: Path) -> None:
    package = tmp_path / "kernel_copy"
    assert main(["--output", str(package)]) == 0
    probe = (
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "import kernel_copy\n"
        "from kernel_copy import cn_proc\n"
        "assert cn_proc.EVENT_DATA_MEMBERS[cn_proc.PROC_EVENT_UID] == 'id'\n"
        "assert not [m for m in sys.modules if m.startswith(('pyprocconn', 'codegen'))]\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
