"""The inbound log: every application message as QuickFIX handed it over, kept before
``fromApp`` returns.

QuickFIX counts a message as received once ``fromApp`` returns and never asks the client for
it again, so by then the message must be kept somewhere. Appending it here and handing it to
the OS (no fsync: QuickFIX's own store gives the same guarantee, it survives a crash of the
process, not of the machine) costs microseconds, so ``fromApp`` returns at once and the writer
can group-commit a session's pipelined orders into one journal fsync.

The gateway marks a record handled once what it asked for is journaled or answered. The mark
is the highest record number with every record up to it handled, together with the number of
the last journal transaction published then. At start-up the records after the mark are
handled again, except those whose commands the journal already holds: the journal's FIX
commands after that transaction are exactly the commands of those records, in order.

Files in the directory: segments named ``<first record number>.log`` of JSON lines
``{"n": number, "session": key, "text": message}``, and ``handled``: the mark.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

SEGMENT_BYTES = 4 * 2**20
_MARK_FILE = "handled"


@dataclass(frozen=True, slots=True)
class Record:
    number: int
    session: str
    text: str


@dataclass(frozen=True, slots=True)
class Mark:
    record: int
    """Every record numbered up to this one is handled."""
    transaction: int
    """The last journal transaction published when the mark was set."""


class InboundLog:
    def __init__(self, directory: Path, journal_transaction: int) -> None:
        """Open the log in ``directory``; a new one starts marked at ``journal_transaction``,
        the journal's last (every command journaled so far came before it)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._mark_fd = os.open(directory / _MARK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        mark = _read_mark(directory / _MARK_FILE)
        records = [r for segment in self._segments() for r in _read_segment(segment)]
        if mark is None:
            self.set_mark(Mark(max([0] + [r.number for r in records]), journal_transaction))
        else:
            self.mark = mark
        self._unhandled = [r for r in records if r.number > self.mark.record]
        self.next_number = max([self.mark.record] + [r.number for r in records]) + 1
        self._segment_fd = self._open_segment(self.next_number)
        self._segment_bytes = 0

    def unhandled(self) -> list[Record]:
        """The records after the mark found at opening, in order."""
        return list(self._unhandled)

    @property
    def backlog(self) -> int:
        """How many records are not known to be handled."""
        return self.next_number - 1 - self.mark.record

    def append(self, session: str, text: str) -> int:
        """Keep one message and return its record number. Not thread-safe: the caller
        serialises. A failed write is logged, not raised: the message is still handled, it is
        only not kept for a crash."""
        number, self.next_number = self.next_number, self.next_number + 1
        line = json.dumps({"n": number, "session": session, "text": text}).encode() + b"\n"
        try:
            if self._segment_bytes + len(line) > SEGMENT_BYTES:
                self._rotate(number)
            os.write(self._segment_fd, line)
            self._segment_bytes += len(line)
        except OSError:
            log.exception("inbound message not kept", session=session, record=number)
        return number

    def set_mark(self, mark: Mark) -> None:
        # Fixed width at offset 0, like QuickFIX's seqnums file: one small write, no rename.
        os.pwrite(self._mark_fd, f"{mark.record:020d} {mark.transaction:020d}\n".encode(), 0)
        self.mark = mark

    def prune(self) -> None:
        """Delete the segments whose every record is handled (never the one being written)."""
        segments = self._segments()
        for segment, following in itertools.pairwise(segments):
            if _first_number(following) - 1 <= self.mark.record:
                segment.unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._segment_fd)
        os.close(self._mark_fd)

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.log"), key=_first_number)

    def _open_segment(self, first_number: int) -> int:
        path = self.directory / f"{first_number:020d}.log"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _rotate(self, first_number: int) -> None:
        fd = self._open_segment(first_number)
        os.close(self._segment_fd)
        self._segment_fd, self._segment_bytes = fd, 0


def _first_number(segment: Path) -> int:
    return int(segment.stem)


def _read_mark(path: Path) -> Mark | None:
    """The mark, or None for a new log (the file is created empty and written at once)."""
    text = path.read_text()
    if not text:
        return None
    try:
        record, transaction = text.split()
        return Mark(int(record), int(transaction))
    except ValueError:
        log.error("inbound mark unreadable: every kept record is handled again, matched "
                  "against the whole journal", path=str(path))
        return Mark(0, 0)


def _read_segment(path: Path) -> list[Record]:
    records = []
    for line in path.read_bytes().splitlines():
        try:
            fields = json.loads(line)
            records.append(Record(int(fields["n"]), str(fields["session"]), str(fields["text"])))
        except (ValueError, KeyError, TypeError):
            # A torn write (a crash or a full disk mid-write): the message was either never
            # handed over or handled without being kept; its number has nothing to redo.
            log.warning("inbound record unreadable, skipped", segment=str(path))
    return records
