"""The single writer: applies inputs, journals them, and only then lets their events out.

Durable before visible: ``apply`` changes the engine's state and buffers the transaction;
``flush`` commits every buffered transaction to the journal with one fsync (group commit) and
then publishes their events on the bus, in order. Under load the writer applies whatever inputs
are waiting before it flushes, so the number of fsyncs follows the load, not the order count.

Handlers on the bus must not call ``apply``: they put new inputs on the writer's inbox.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Histogram

from solver.core.bus import EventBus, TransactionObserver
from solver.core.commands import Input
from solver.core.engine import Engine
from solver.core.events import Transaction
from solver.journal import codec
from solver.journal.snapshot import STATE_VERSION, capture
from solver.journal.store import Journal
from solver.plumbing.metrics import SECONDS_BUCKETS

log = structlog.get_logger(__name__)

COMMIT_SECONDS = Histogram("solver_journal_commit_seconds",
                           "One group commit of the journal (one fsync)",
                           buckets=SECONDS_BUCKETS)


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        bus: EventBus,
        journal: Journal | None = None,
        snapshot_every: int = 0,
        last_snapshot: int | None = None,
    ) -> None:
        """``snapshot_every``: store the engine's state after at least that many transactions
        since the last snapshot (0: never); ``last_snapshot``: the transaction of the snapshot
        the engine was rebuilt from (so that a start never replays more than
        ``snapshot_every``; by default the engine's last transaction)."""
        self.engine = engine
        self.bus = bus
        self.journal = journal
        self.snapshot_every = snapshot_every
        self._pending: list[Transaction] = []
        self._last_snapshot = engine.transactions_applied if last_snapshot is None \
            else last_snapshot
        self.projections: dict[str, TransactionObserver] = {}
        """What the views and adapters folded from the events (pure data, by name):
        checkpointed with each snapshot, so that a start replays only the transactions after
        it."""

    def apply(self, command: Input) -> Transaction:
        """Apply ``command`` now; its events are published by the next ``flush``.

        An input the journal could not read back exactly (a float, an int where a Decimal
        belongs) raises ``CodecError`` and changes nothing.
        """
        if self.journal is not None:
            codec.check_input(command)
        transaction = self.engine.apply(command)
        if self.journal is not None:
            self.journal.append(transaction)
        self._pending.append(transaction)
        return transaction

    def flush(self) -> None:
        """Make every applied transaction durable, then publish its events; then, the
        projections having seen them too, store a snapshot if one is due."""
        pending, self._pending = self._pending, []
        if self.journal is not None:
            with COMMIT_SECONDS.time():
                self.journal.commit()
        for transaction in pending:
            self.bus.publish(transaction)
        if self.journal is not None:
            self._maybe_snapshot(self.journal)

    def _maybe_snapshot(self, journal: Journal) -> None:
        number = self.engine.transactions_applied
        if self.snapshot_every and number - self._last_snapshot >= self.snapshot_every:
            journal.save_snapshot(number, STATE_VERSION, capture(self.engine, self.projections))
            self._last_snapshot = number

    async def run(self, inbox: asyncio.Queue[Input], max_group: int = 512) -> None:
        """Serve ``inbox`` until cancelled: apply what is waiting (up to ``max_group``
        inputs), flush, repeat."""
        while True:
            self._apply_or_refuse(await inbox.get())
            while not inbox.empty() and len(self._pending) < max_group:
                self._apply_or_refuse(inbox.get_nowait())
            self.flush()

    def _apply_or_refuse(self, command: Input) -> None:
        try:
            self.apply(command)
        except codec.CodecError as error:  # a bad input must not stop the writer
            log.error("input refused", input=type(command).__name__, error=str(error),
                      **identity(command))
            self.bus.refuse(command, str(error))


def identity(command: Input) -> dict[str, str]:
    """The fields that name an input and who sent it, for the logs."""
    return {name: repr(value) for name in _NAMES
            if isinstance(value := getattr(command, name, None), str) and value}


_NAMES = ("account", "client_order_id", "request_id", "quote_id", "deposit_id", "funding_id")
