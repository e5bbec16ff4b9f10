"""Which member of ``proc_event.event_data`` each event type fills: derived, never typed."""

from __future__ import annotations

from collections.abc import Sequence

from codegen.model import EnumBlock, EventMember, Record, RecordRef

EVENT_RECORD = "proc_event"  # the struct holding the event type and its data
EVENT_TYPE_FIELD = "what"  # typed with the event enum (enum proc_cn_event; 6.1: enum what)
EVENT_DATA_FIELD = "event_data"  # the union of the per-event structs
EVENT_PREFIX = "PROC_EVENT_"
ACK_MEMBER = "ack"  # PROC_EVENT_NONE (0) is the kernel's answer to a subscription


def event_data_member(enumerator: str, value: int, members: Sequence[str]) -> str | None:
    """The union member that event ``enumerator`` (``PROC_EVENT_<X>``) fills, or None.

    The rule, in order:

    1. the member named ``x`` (``<X>`` lower-cased): ``PROC_EVENT_FORK`` -> ``fork``;
    2. value 0 (``PROC_EVENT_NONE``) is the kernel's ack: the member ``ack``;
    3. the member whose name is a suffix inside the last word of ``x``: ``uid``/``gid`` -> ``id``
       (a type letter before the member's name). A suffix at a word boundary does not count:
       ``nonzero_exit`` ends in ``exit`` but names a filter bit of exit events, which the
       kernel never sends as an event type, so ``PROC_EVENT_NONZERO_EXIT`` fills nothing.

    Names without the ``PROC_EVENT_`` prefix, and events no rule matches, give None.
    """
    if not enumerator.startswith(EVENT_PREFIX):
        return None
    x = enumerator.removeprefix(EVENT_PREFIX).lower()
    if x in members:
        return x
    if value == 0:
        return ACK_MEMBER if ACK_MEMBER in members else None
    last_word = x.rsplit("_", 1)[-1]
    matches = [m for m in members if len(m) < len(last_word) and last_word.endswith(m)]
    return max(matches, key=len) if matches else None  # the longest, should two ever match


def event_members(
    records: Sequence[Record], field_enums: dict[tuple[str, str], EnumBlock]
) -> list[EventMember]:
    """``EVENT_DATA_MEMBERS`` rows for a module that has the event enum and the union, else []."""
    by_name = {record.name: record for record in records}
    event = by_name.get(EVENT_RECORD)
    enum = field_enums.get((EVENT_RECORD, EVENT_TYPE_FIELD))
    data = next((f for f in event.fields if f.name == EVENT_DATA_FIELD), None) if event else None
    if enum is None or data is None or not isinstance(data.ctype, RecordRef):
        return []
    members = [f.name for f in by_name[data.ctype.name].fields]
    rows = []
    for constant in enum.constants:
        member = event_data_member(constant.name, constant.value, members)
        if member is not None:
            rows.append(EventMember(constant.name, member))
    return rows
