"""Rebuilding the engine from its journal alone.

Replay starts from the latest usable snapshot (or the setup stored in the journal) and applies
the journaled inputs after it. Each replayed transaction must produce exactly the events the
journal holds: the engine is deterministic, so a difference means the code changed behaviour
and the journal cannot be trusted to describe what this code would do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solver.core.engine import Engine
from solver.core.events import Transaction
from solver.journal import codec
from solver.journal.snapshot import STATE_VERSION, restore
from solver.journal.store import Journal, JournalError, Row


class ReplayDivergence(JournalError):
    pass


@dataclass(slots=True)
class Replayed:
    engine: Engine
    snapshot: int
    """The transaction the snapshot replay started from (0: from the setup)."""
    replayed: int
    """Transactions applied after it."""
    transactions: list[Transaction] = field(default_factory=list)
    """Every replayed transaction, when asked to keep them."""
    projections: dict[str, Any] = field(default_factory=dict)
    """The projections checkpointed with the snapshot, by name (none without one)."""

    @property
    def checkpoint(self) -> Checkpoint:
        """The projections to resume from, with the transactions since if the replay kept
        them (``keep``: a start then reads the tail once, not twice)."""
        return Checkpoint(self.snapshot, self.projections,
                          self.transactions if self.transactions or not self.replayed else None)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The projections (the views' and adapters' memories of the events, by name) stored with
    the snapshot of transaction ``number``."""

    number: int = 0
    projections: dict[str, Any] = field(default_factory=dict)
    since: list[Transaction] | None = None
    """The transactions after ``number``, if at hand (else read from the journal)."""


def rebuild(
    journal: Journal,
    *,
    use_snapshot: bool = True,
    keep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Replayed:
    """The engine as of the journal's last transaction."""
    engine, start, projections = _starting_point(journal, use_snapshot)
    replayed = Replayed(engine, start, 0, projections=projections)
    last_seq = engine.last_seq
    for row in journal.rows(after=start):
        transaction = engine.apply(codec.decode_input(json.loads(row.input)))
        if transaction.events:
            last_seq = transaction.events[-1].seq
        again = Row.of(transaction, last_seq)
        if (again.number, again.last_seq) != (row.number, row.last_seq) \
                or not _same_events(again, row):
            raise ReplayDivergence(
                f"journal {journal.path}: replaying transaction {row.number} gave different "
                f"events than were journaled; this release does not reproduce the journal")
        replayed.replayed += 1
        if keep:
            replayed.transactions.append(transaction)
        if progress and replayed.replayed % 1000 == 0:
            progress(replayed.replayed)
    if progress:
        progress(replayed.replayed)
    return replayed


def _same_events(again: Row, row: Row) -> bool:
    """The text is the same, or (a journal written before a field was added, with its default)
    the events decode to the same records."""
    return again.events == row.events or again.transaction().events == row.transaction().events


def _starting_point(journal: Journal,
                    use_snapshot: bool) -> tuple[Engine, int, dict[str, Any]]:
    """The newest snapshot that loads (a snapshot is a cache: any that fails is passed over),
    else a fresh engine from the journal's setup."""
    for snapshot in journal.intact_snapshots(STATE_VERSION) if use_snapshot else ():
        try:
            engine, projections = restore(snapshot.state)
        except Exception:  # whatever breaks unpickling: start from further back
            continue
        if engine.transactions_applied == snapshot.number:
            return engine, snapshot.number, projections
    return journal.setup.build(), 0, {}
