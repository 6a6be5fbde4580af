"""How far reports went, and how a report becomes a QuickFIX message.

QuickFIX's FileStore keeps every message it sent (``<store>/<session>.body``, indexed by
``.header`` entries ``seq,offset,length``). A report made from an event carries the event's
sequence number in ``EventSeqNum`` (20020) and each session's reports go out in that order,
so the newest such message in a session's store tells how far that session's reports went.
The checkpoint file says up to which event every session's reports were handed to QuickFIX,
so that a restart reads the journal from there instead of from the start.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import quickfix as fix

from fix_gateway.tags import (
    CASH_ORDER_QTY,
    CURRENCY,
    EVENT_SEQ_NUM,
    NO_RELATED_SYM,
    SIDE,
    SYMBOL,
)
from fix_gateway.wire import Outgoing

CHECKPOINT = "reports.checkpoint"
HEADER_AND_TRAILER = frozenset({8, 9, 35, 34, 49, 56, 52, 43, 97, 122, 115, 128, 50, 57, 142,
                                143, 116, 129, 144, 145, 90, 91, 212, 213, 347, 369, 627, 10,
                                93, 89})
_EVENT_SEQ = re.compile(rb"\x01" + str(EVENT_SEQ_NUM).encode() + rb"=(\d+)\x01")
_GROUPS = {NO_RELATED_SYM: (SYMBOL, SIDE, CASH_ORDER_QTY, CURRENCY)}
"""Repeating groups we send: count tag -> the tags of one entry (NoRelatedSym in AG)."""


def to_quickfix(report: Outgoing) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(fix.MsgType(report.msg_type))
    for tag, value in report.header:
        message.getHeader().setField(fix.StringField(tag, value))
    fields = iter(report.fields)
    group: fix.Group | None = None
    for tag, value in fields:
        if group is not None and tag in _GROUPS[group.field()]:
            group.setField(fix.StringField(tag, value))
            continue
        if group is not None:
            message.addGroup(group)
            group = None
        if tag in _GROUPS:
            group = fix.Group(tag, _GROUPS[tag][0])
            continue
        message.setField(fix.StringField(tag, value))
    if group is not None:
        message.addGroup(group)
    return message


def last_event_seq(store: Path, session_id: fix.SessionID) -> int:
    """The highest EventSeqNum among the messages the session's store holds (0 if none)."""
    prefix = store / "-".join((session_id.getBeginString().getValue(),
                               session_id.getSenderCompID().getValue(),
                               session_id.getTargetCompID().getValue()))
    header, body = prefix.with_name(prefix.name + ".header"), prefix.with_name(
        prefix.name + ".body")
    if not header.exists() or not body.exists():
        return 0
    entries = header.read_bytes().split()
    with body.open("rb") as data:
        for entry in reversed(entries):
            _, offset, length = (int(x) for x in entry.split(b","))
            data.seek(offset)
            found = _EVENT_SEQ.search(data.read(length))
            if found:
                return int(found.group(1))
    return 0


def read_checkpoint(store: Path) -> int:
    try:
        return int((store / CHECKPOINT).read_text().strip() or 0)
    except FileNotFoundError:
        return 0


def write_checkpoint(store: Path, seq: int) -> None:
    """Atomically: a crash leaves the old value or the new one."""
    path = store / CHECKPOINT
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{seq}\n")
    os.replace(temporary, path)
