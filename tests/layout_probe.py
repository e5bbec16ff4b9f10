"""Compare ctypes classes with what the C compiler says about the same declarations."""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

Record = type[ctypes.Structure] | type[ctypes.Union]


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def named_records(module: ModuleType) -> dict[str, Record]:
    """C type ("struct cn_msg") -> class, for the records that have a C tag."""
    found: dict[str, Record] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or not isinstance(value, type):
            continue
        if (value.__doc__ or "").startswith("The anonymous"):
            continue  # no C tag: reached through the field paths of the record holding it
        if issubclass(value, ctypes.Structure):
            found[f"struct {name}"] = value
        elif issubclass(value, ctypes.Union):
            found[f"union {name}"] = value
    return found


def constants(module: ModuleType) -> dict[str, int]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
    }


def field_paths(
    record: Record, prefix: str = "", base: int = 0
) -> Iterator[tuple[str, int, int | None, int]]:
    """(path, offset, size or None for a flexible array, alignment) for every member, nested."""
    for name, ctype, *_ in record._fields_:
        offset = base + getattr(record, name).offset
        path = f"{prefix}{name}"
        flexible = issubclass(ctype, ctypes.Array) and getattr(ctype, "_length_", None) == 0
        yield path, offset, None if flexible else ctypes.sizeof(ctype), ctypes.alignment(ctype)
        if issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            yield from field_paths(ctype, f"{path}.", offset)


def python_facts(modules: list[ModuleType]) -> set[str]:
    facts: set[str] = set()
    for module in modules:
        for c_type, record in named_records(module).items():
            facts.add(f"S {c_type} {ctypes.sizeof(record)} {ctypes.alignment(record)}")
            for path, offset, size, align in field_paths(record):
                facts.add(f"F {c_type} {path} {offset} {size if size is not None else '-'} {align}")
        for name, value in constants(module).items():
            facts.add(f"C {name} {value}")
    return facts


def c_probe_source(headers: list[Path], modules: list[ModuleType]) -> str:
    """A C program printing the same facts as :func:`python_facts`, from the compiler."""
    lines = ["#include <stddef.h>", "#include <stdio.h>"]
    lines += [f'#include "{h}"' for h in headers]
    lines += ["int main(void) {"]
    for module in modules:
        for c_type, record in named_records(module).items():
            lines.append(
                f'printf("S {c_type} %zu %zu\\n", sizeof({c_type}), __alignof__({c_type}));'
            )
            for path, _, size, _ in field_paths(record):
                member = f"((({c_type} *)0)->{path})"
                offset = f"offsetof({c_type}, {path})"
                if size is None:  # a flexible array has no sizeof
                    lines.append(
                        f'printf("F {c_type} {path} %zu - %zu\\n", {offset}, __alignof__{member});'
                    )
                else:
                    lines.append(
                        f'printf("F {c_type} {path} %zu %zu %zu\\n", {offset}, '
                        f"sizeof{member}, __alignof__{member});"
                    )
        for name in constants(module):
            lines.append(f'printf("C {name} %lld\\n", (long long)({name}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


def compiler_facts(source: str, workdir: Path) -> set[str]:
    """Compile with the system C compiler (real <linux/types.h>) and run the probe."""
    c_file, binary = workdir / "probe.c", workdir / "probe"
    c_file.write_text(source)
    subprocess.run(
        ["gcc", "-std=gnu11", "-Wall", "-Werror", "-Wno-format", "-o", str(binary), str(c_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return set(output.splitlines())
