"""``python -m codegen.stubs``: the type stubs of the names ``pyprocconn`` builds at import.

The event classes, ``EventType``'s members and the seed names are made at run time from the
generated layer, which a type checker cannot follow. These stubs say what they are, rendered
from the package as it imports (so from the layer just generated): ``pyprocconn/_event_types.pyi``
and ``pyprocconn/_seed_names.pyi``. ``python -m codegen`` runs this in a fresh interpreter after
writing the layer and writes (or, with ``--check``, compares) what it prints: a JSON object,
file name -> text.
"""

from __future__ import annotations

import json
import sys
import textwrap

from codegen.render import GENERATED

BANNER = (
    f"{GENERATED} (python -m codegen) from the generated layer and pyprocconn's rules.\n"
    "# Do not edit.\n"
)


def _docstring(text: str) -> list[str]:
    lines = textwrap.wrap(text, 92, initial_indent='    """', subsequent_indent="    ")
    if len(lines) == 1:
        return [lines[0] + '"""']
    return [*lines, '    """']


def event_types() -> str:
    """``EventType`` with every member, and one typed class per event type."""
    from pyprocconn import events, layout

    lines = [
        BANNER + '"""What type checkers see of the event classes and EventType."""',
        "",
        "import enum",
        "from typing import Any",
        "",
        "from pyprocconn.events import ExitStatus, ProcEvent",
        "",
        "class EventType(enum.IntFlag):",
        '    """The kernel\'s event bits (``enum proc_cn_event``); also a subscription mask."""',
        "",
    ]
    members = events.EventType.__members__.items()
    lines += [f"    {name} = {int(member)}" for name, member in members]
    lines += [
        "    @classmethod",
        "    def from_name(cls, name: str) -> EventType: ...",
        "    @classmethod",
        "    def from_names(cls, names: str) -> EventType: ...",
    ]
    for spec in layout.EVENTS.values():
        cls = events.EVENT_CLASSES[spec.what]
        bases = [base.__name__ for base in cls.__bases__[1:]]  # past the namedtuple
        late = spec.late_fields  # None on a kernel older than the headers
        kinds = [(f.name, "str" if f.is_text else "int") for f in spec.fields]
        own = [(name, kind + (" | None" if name in late else "")) for name, kind in kinds]
        lines += [
            "",
            f"class {cls.__name__}({', '.join(bases)}):",
            *_docstring(cls.__doc__ or ""),
            "",
            *(f"    {name}: {kind}" for name, kind in own),
            "    def __new__(",
            "        cls,",
            "        what: int,",
            "        cpu: int,",
            "        timestamp_ns: int,",
            *(f"        {name}: {kind} | None = ...," for name, kind in kinds),
            f"    ) -> {cls.__name__}: ...",
            f"    def _replace(self, **changes: Any) -> {cls.__name__}: ...",
        ]
    lines += ["", "__all__ = [", '    "EventType",']
    lines += [f'    "{cls.__name__}",' for cls in events.EVENT_CLASSES.values()]
    return "\n".join([*lines, "]", ""])


def seed_names() -> str:
    """Each seed name ``pyprocconn`` forwards, imported from where it is defined."""
    import pyprocconn

    lines = [BANNER + '"""What type checkers see of the seed names pyprocconn forwards."""', ""]
    names = pyprocconn._forwarded()
    for module in dict.fromkeys(names.values()):
        lines.append(f"from pyprocconn.{module} import (")
        lines += [f"    {name} as {name}," for name, source in names.items() if source == module]
        lines.append(")")
    lines += ["", "__all__ = [", *(f'    "{name}",' for name in names), "]", ""]
    return "\n".join(lines)


def stubs() -> dict[str, str]:
    from pyprocconn.command import schema

    return {
        "_event_types.pyi": event_types(),
        "_seed_names.pyi": seed_names(),
        "command/events.schema.json": schema.text(),  # the --json lines' schema
    }


if __name__ == "__main__":
    json.dump(stubs(), sys.stdout)
