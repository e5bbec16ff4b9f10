"""The types reach the user: a typed program using events passes ``mypy --strict``, and the same
program with a misspelt field, event type or name fails it. The public face is one list: what
``__all__``, ``dir()`` and the type checker see agree, and nothing else resolves."""

from __future__ import annotations

import ast
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyprocconn as pc
from pyprocconn import kernel

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import pyprocconn as pc

def describe(item: pc.ProcEvent | pc.EventsLost) -> str:
    if isinstance(item, pc.ExitEvent):
        code: int = item.exit_code
        return f"{item.process_tgid} {code} {item.describe_status()}"
    if isinstance(item, pc.ForkEvent):
        return str(item.child_tgid + item.parent_tgid)
    if isinstance(item, pc.CommEvent):
        return item.comm.upper()
    return str(item)

mask: pc.EventType = pc.EventType.EXEC | pc.EventType.EXIT
with pc.ProcConnector(events=mask) as conn:
    for item in conn.recv_batch(0.1):
        print(describe(item))
size: int = pc.SIZE_NLMSGHDR + pc.kernel.cn_proc.PROC_EVENT_FORK
"""
BROKEN = {
    "a misspelt field": ("item.exit_code", "item.exit_cod"),
    "a misspelt event type": ("pc.EventType.EXEC |", "pc.EventType.EXCE |"),
    "a misspelt class": ("pc.ProcConnector(", "pc.ProcConector("),
    "a misspelt seed name": ("pc.SIZE_NLMSGHDR", "pc.SIZE_NLMSGHEADER"),
    "a field of another event": ("item.child_tgid +", "item.exit_code +"),
}


def test_a_typed_program_passes_and_each_misspelling_fails(tmp_path: Path) -> None:
    files = {"good": PROGRAM}
    for name, (right, wrong) in BROKEN.items():
        assert right in PROGRAM, name
        files[name] = PROGRAM.replace(right, wrong)
    paths = {}
    for index, (name, text) in enumerate(files.items()):
        paths[name] = tmp_path / f"program_{index}.py"
        paths[name].write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, paths.values())],
        cwd=tmp_path,  # the package as installed (the README's editable install), not ROOT's
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failing = set(re.findall(r"^.*?(program_\d+)\.py:\d+: error", done.stdout, re.MULTILINE))
    assert f"program_{list(files).index('good')}" not in failing, done.stdout
    for name in BROKEN:
        assert paths[name].stem in failing, f"{name} passed mypy: {done.stdout}"


def _type_checked_names() -> set[str]:
    """What the package's TYPE_CHECKING imports give a type checker (the stubs' by __all__)."""
    tree = ast.parse((ROOT / "pyprocconn" / "__init__.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name == "*":
                    names |= set(importlib_all(node.module))
                else:
                    names.add(alias.asname or alias.name)
    return names - {"_import_module", "TYPE_CHECKING"}  # the module's own imports


def importlib_all(module: str) -> list[str]:
    stub = ROOT / (module.replace(".", "/") + ".pyi")
    tree = ast.parse(stub.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return [ast.literal_eval(element) for element in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError(f"{stub} has no __all__")


def test_all_dir_and_the_type_checker_see_one_face() -> None:
    public = set(getattr(pc, "__all__"))  # noqa: B009 - resolved lazily: unknown to mypy
    assert public == set(pc._API) | set(pc._event_class_names())
    assert set(dir(pc)) == public | {"__version__", "kernel"}
    seeds = set(pc._forwarded())
    assert _type_checked_names() == public | seeds | {"kernel"}
    for name in public | seeds:
        assert getattr(pc, name) is not None, name


# (A submodule once imported is an attribute of its package, as anywhere in Python.)
@pytest.mark.parametrize("name", ["ctypes", "Final", "annotations", "offsetof", "Any", "importlib"])
def test_nothing_else_resolves(name: str) -> None:
    with pytest.raises(AttributeError):
        getattr(pc, name)


def test_the_seed_names_are_the_modules_own() -> None:
    for name, module in pc._forwarded().items():
        value = getattr(pc, name)
        if isinstance(value, type) or callable(value):
            assert value.__module__ in (f"pyprocconn.{module}", "pyprocconn.layout"), name
        else:
            assert isinstance(value, (int, dict)), name  # constants, EVENT_DATA_MEMBERS
    assert pc.PROC_EVENT_FORK == kernel.cn_proc.PROC_EVENT_FORK


def test_help_is_a_page_of_this_package_not_of_the_builtins() -> None:
    # help() lists dir() of each class: the events, EventType, EventsLost and the errors show
    # their own names (fields with their C type and offset), not tuple's, int's, Exception's.
    page = pydoc.plain(pydoc.render_doc(pc))
    for boilerplate in ("inherited from builtins.", "Alias for field number"):
        assert boilerplate not in page, boilerplate
    for name in getattr(pc, "__all__"):  # noqa: B009
        assert re.search(rf"\b{name}\b", page), name
    assert "ctypes.c_uint at byte 8 of event_data.exit (item 5)" in page  # ExitEvent.exit_code
    # 3,317 lines before (2,300 of them boilerplate); 1,506 on 3.11, 1,725 on 3.13 (which wraps).
    assert len(page.splitlines()) < 2000
    # Instances keep every name: only the class listing is the package's own.
    fork = pc.ForkEvent(1, 0, 0, 1, 1, 2, 2)
    assert {"count", "_asdict", "child_pid"} <= set(dir(fork))
    assert "count" not in dir(pc.ForkEvent) and "child_pid" in dir(pc.ForkEvent)
    assert dir(pc.EventType) == sorted([*pc.EventType.__members__, "from_name", "from_names"])

    class AppError(pc.Error):  # a subclass of the user's keeps its own names
        def retry_after(self) -> float:
            return 1.0

    assert dir(AppError) == ["retry_after"]
