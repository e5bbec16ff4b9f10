"""The JSON Schema of the command's ``--json`` lines, built from the event classes (so from the
generated layer) and the command's own additions. ``python -m codegen`` writes it beside this
module (``events.schema.json``, shipped with the package) and ``--check`` fails when it is
stale; the tests validate every JSON line the command writes in them against it."""

from __future__ import annotations

import json
from typing import Any, get_args

import pyprocconn as pc
from pyprocconn.processes import Origin

SCHEMA_ID = "urn:pyprocconn:json-lines:1"  # a name, not a place: the file ships with the package

_INT = {"type": "integer"}
_TEXT = {"type": "string"}


def _maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


CONTAINER = _object(
    {
        "runtime": _TEXT,
        "id": _TEXT,
        "pod_uid": _maybe(_TEXT),
        "qos": _maybe({"enum": ["guaranteed", "burstable", "besteffort"]}),
    }
)
PROCESS = _object(
    {
        "pid": _INT,
        "ppid": _INT,
        "start_ns": _maybe(_INT),
        "origin": {"enum": list(get_args(Origin))},
        "argv": _maybe({"type": "array", "items": _TEXT}),
        "argv_truncated": {"type": "boolean"},
        "comm": _maybe(_TEXT),
        "exe": _maybe(_TEXT),
        "cwd": _maybe(_TEXT),
        "refused": {"type": "array", "items": {"enum": ["exe", "cwd", "pid_ns"]}},
        "uid": _maybe(_INT),
        "euid": _maybe(_INT),
        "user": _maybe(_TEXT),
        "gid": _maybe(_INT),
        "egid": _maybe(_INT),
        "sid": _maybe(_INT),
        "cgroup": _maybe(_TEXT),
        "container": _maybe(CONTAINER),
        "ns_pid": _maybe(_INT),
        "pid_ns": _maybe(_INT),
        "kernel_thread": {"type": "boolean"},
        "complete": {"type": "boolean"},
    }
)
# --raw --comm/--cmdline: what /proc had, best effort.
PROC = _object(
    {"comm": _TEXT, "cmdline": {"type": "array", "items": _TEXT}, "gone": {"type": "boolean"}},
    required=["gone"],
)
_EXIT_ADDED = {
    "exit_status": _maybe(_INT),
    "term_signal": _maybe(_TEXT),
    "core_dumped": {"type": "boolean"},
    "duration_s": {"type": "number"},
}


def _event(cls: type[pc.ProcEvent]) -> dict[str, Any]:
    head = {"event": {"const": cls.NAME}, "time": _TEXT}
    fields = {name: _INT for name in ("what", "cpu", "timestamp_ns")}
    for field in cls.SPEC.fields:  # None: a field an older kernel did not send
        fields[field.name] = _maybe(_TEXT if field.is_text else _INT)
    added = _EXIT_ADDED if issubclass(cls, pc.ExitStatus) else {}
    properties = {**head, **fields, **added, "proc": PROC, "process": _maybe(PROCESS)}
    required = [*head, *fields, *(name for name in added if name != "duration_s")]
    return _object(properties, required)


def _marker(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return _object({"event": {"const": name}, "time": _TEXT, **properties})


def schema() -> dict[str, Any]:
    events = [_event(cls) for cls in pc.EVENT_CLASSES.values()]
    markers = [
        _marker("lost", {"lost": _maybe(_INT), "cpu": _maybe(_INT)}),
        _marker(
            "resync", {name: {"type": "array", "items": _INT} for name in ("vanished", "appeared")}
        ),
        _marker("vanished", {"pid": _INT, "process": PROCESS}),
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "pyprocconn --json: one object per line",
        "description": "An event (the kernel's fields with the kernel's names; an exit's status "
        "decoded; the process as it was then, without --raw), or a marker: events lost, the "
        "rescan after a loss, a process that ended unseen.",
        "oneOf": [*events, *markers],
    }


def text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
