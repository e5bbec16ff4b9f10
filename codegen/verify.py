"""Prove generated layouts equal the C compiler's: the facts both sides print must be the same.

A fact is one line: ``S <c type> <size> <align>`` for each struct or union with a C tag,
``F <c type> <path> <offset> <size or -> <align>`` for each member at any depth (``-``: a
flexible array has no size), ``C <name> <value>`` for each constant. The Python side reads
them from the generated modules (the text just rendered, imported from a temporary folder);
the C side from a probe program that includes the headers and is compiled with gcc.
``python -m codegen`` runs this after every generation; the layout tests call it too.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from codegen.errors import GeneratorError
from codegen.model import EnumBlock, HeaderModule
from codegen.preprocess import STUB_GUARD, stub_include_dir

COMPILER = "gcc"
LiveRecord = type[ctypes.Structure] | type[ctypes.Union]
Pair = tuple[HeaderModule, ModuleType]  # a header's model and its generated module


class VerificationError(GeneratorError):
    """The generated layout differs from the compiler's, or the probe did not build."""


class CompilerUnavailableError(Exception):
    """No C compiler that can build and run a program here: verification cannot run."""


@dataclass(frozen=True)
class Verified:
    facts: int  # how many facts agreed
    kernel_types: str  # where the probe's <linux/types.h> came from


def field_paths(
    record: LiveRecord, prefix: str = "", base: int = 0
) -> Iterator[tuple[str, int, int | None, int]]:
    """(path, offset, size or None for a flexible array, alignment) for every member, nested."""
    for name, ctype, *_ in record._fields_:
        offset = base + getattr(record, name).offset
        path = f"{prefix}{name}"
        flexible = issubclass(ctype, ctypes.Array) and ctypes.sizeof(ctype) == 0
        yield path, offset, None if flexible else ctypes.sizeof(ctype), ctypes.alignment(ctype)
        if issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            yield from field_paths(ctype, f"{path}.", offset)


def tagged_records(pair: Pair) -> Iterator[tuple[str, LiveRecord]]:
    """(C type, class) for the records with a C tag ("struct cn_msg"); anonymous ones are
    reached through the paths of the record holding them."""
    model, module = pair
    for record in model.records:
        if not record.anonymous:
            yield record.c_name, getattr(module, record.name)


def constant_names(model: HeaderModule) -> Iterator[str]:
    for entry in model.constants:
        if isinstance(entry, EnumBlock):
            yield from (constant.name for constant in entry.constants)
        else:
            yield entry.name


def python_facts(pairs: Sequence[Pair]) -> set[str]:
    """The facts as the generated modules give them."""
    facts: set[str] = set()
    for pair in pairs:
        for c_type, record in tagged_records(pair):
            facts.add(f"S {c_type} {ctypes.sizeof(record)} {ctypes.alignment(record)}")
            for path, offset, size, align in field_paths(record):
                facts.add(f"F {c_type} {path} {offset} {'-' if size is None else size} {align}")
        facts.update(f"C {name} {getattr(pair[1], name)}" for name in constant_names(pair[0]))
    return facts


def _record_probe(c_type: str, record: LiveRecord) -> Iterator[str]:
    yield f'printf("S {c_type} %zu %zu\\n", sizeof({c_type}), __alignof__({c_type}));'
    for path, _, size, _ in field_paths(record):
        member = f"((({c_type} *)0)->{path})"
        offset = f"offsetof({c_type}, {path})"
        if size is None:  # a flexible array has no sizeof
            yield f'printf("F {c_type} {path} %zu - %zu\\n", {offset}, __alignof__{member});'
        else:
            yield (
                f'printf("F {c_type} {path} %zu %zu %zu\\n", {offset}, '
                f"sizeof{member}, __alignof__{member});"
            )


def c_probe_source(headers: Sequence[Path], pairs: Sequence[Pair]) -> str:
    """A C program printing the same facts as :func:`python_facts`, from the compiler."""
    lines = ["#include <stddef.h>", "#include <stdio.h>"]
    lines += [f'#include "{header.resolve()}"' for header in headers]
    lines += ["int main(void) {"]
    lines += [f"#ifdef {STUB_GUARD}", 'puts("T stub");', "#endif"]
    for pair in pairs:
        for c_type, record in tagged_records(pair):
            lines.extend(_record_probe(c_type, record))
        lines += [
            f'printf("C {name} %lld\\n", (long long)({name}));' for name in constant_names(pair[0])
        ]
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


def _compile(
    source: Path, binary: Path, stubs: Path, stubs_first: bool = False
) -> subprocess.CompletedProcess[str]:
    # The system's <linux/types.h> when installed (an independent check of the type table);
    # the generator's stubs only after it (-idirafter), where there is none, or when asked.
    command = [COMPILER, "-std=gnu11", "-Wall", "-Werror", "-Wno-format"]
    command += ["-I" if stubs_first else "-idirafter", str(stubs), "-o", str(binary), str(source)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _toolchain_problem(workdir: Path, stubs: Path) -> str | None:
    """Why gcc cannot build even an empty C program here, or None when it can."""
    hello = workdir / "hello.c"
    hello.write_text("#include <stddef.h>\n#include <stdio.h>\nint main(void) { return 0; }\n")
    done = _compile(hello, workdir / "hello", stubs)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return f"{COMPILER} cannot build a C program here ({lines[0] if lines else 'no message'})"


def compiler_facts(source: str, workdir: Path, stubs_first: bool = False) -> tuple[set[str], str]:
    """Compile and run the probe: (facts, where <linux/types.h> came from)."""
    if shutil.which(COMPILER) is None:
        raise CompilerUnavailableError(f"no C compiler ({COMPILER}) on PATH")
    c_file, binary = workdir / "probe.c", workdir / "probe"
    c_file.write_text(source)
    with stub_include_dir() as stubs:
        built = _compile(c_file, binary, stubs, stubs_first)
        if built.returncode != 0:
            problem = _toolchain_problem(workdir, stubs)
            if problem:
                raise CompilerUnavailableError(problem)
            details = "\n".join(built.stderr.strip().splitlines()[:20])
            raise VerificationError(f"the layout probe did not compile:\n{details}")
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=False)
    if ran.returncode != 0:
        raise VerificationError(f"the layout probe failed (exit {ran.returncode}): {ran.stderr}")
    facts = set(ran.stdout.splitlines())
    stub = "T stub" in facts
    facts.discard("T stub")
    return facts, "the generator's type table" if stub else "the system's <linux/types.h>"


@contextmanager
def load_generated(files: Mapping[str, str]) -> Iterator[dict[str, ModuleType]]:
    """Import generated text (``{"cn_proc.py": ...}``) as a temporary package: module name ->
    module. Nothing installed is read, and nothing stays in ``sys.modules`` afterwards."""
    package = f"_codegen_verify_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="pyprocconn-verify-") as scratch:
        folder = Path(scratch) / package
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        if "__init__.py" not in files:
            (folder / "__init__.py").write_text("")
        try:
            spec = importlib.util.spec_from_file_location(
                package, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            assert spec is not None and spec.loader is not None
            sys.modules[package] = importlib.util.module_from_spec(spec)
            modules = {}
            for name in sorted(files, key=lambda n: (n == "__init__.py", n)):  # package last
                try:
                    if name == "__init__.py":
                        spec.loader.exec_module(sys.modules[package])
                    else:
                        modules[Path(name).stem] = importlib.import_module(
                            f"{package}.{Path(name).stem}"
                        )
                except Exception as error:  # the generated text itself is broken
                    message = f"the generated {name} does not import: {error!r}"
                    raise VerificationError(message) from error
            yield modules
        finally:
            for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
                del sys.modules[name]


def compare(expected: set[str], got: set[str]) -> None:
    """Raise :class:`VerificationError` listing the facts that differ."""
    if got == expected:
        return
    lines = [f"  ctypes: {fact}" for fact in sorted(got - expected)[:20]]
    lines += [f"  gcc:    {fact}" for fact in sorted(expected - got)[:20]]
    raise VerificationError(
        "the generated layout differs from the compiler's:\n" + "\n".join(lines)
    )


def layout_facts(
    headers: Sequence[Path],
    models: Sequence[HeaderModule],
    files: Mapping[str, str],
    stubs_first: bool = False,
) -> tuple[set[str], set[str], str]:
    """(ctypes facts, gcc facts, where the kernel types came from) for generated ``files``;
    ``stubs_first``: compile with the generator's own <linux/types.h> even where one is
    installed."""
    with load_generated(files) as modules, tempfile.TemporaryDirectory() as scratch:
        pairs = [(model, modules[model.module]) for model in models]
        source = c_probe_source(headers, pairs)
        expected, kernel_types = compiler_facts(source, Path(scratch), stubs_first)
        return python_facts(pairs), expected, kernel_types


def verify(
    headers: Sequence[Path], models: Sequence[HeaderModule], files: Mapping[str, str]
) -> Verified:
    """Check generated ``files`` against gcc. Raises :class:`VerificationError` on any
    difference, :class:`CompilerUnavailableError` where no compiler can run."""
    got, expected, kernel_types = layout_facts(headers, models, files)
    compare(expected, got)
    return Verified(len(expected), kernel_types)
