"""The solver as a service: one writer over the engine and its journal, with the exchange
adapter (execution and market data) around it.

Start-up resumes from the journal: the engine is the replay of the journal, and every asset
order it has in flight is tracked again and queried on the exchange before new batches are
planned. Then batches are planned as orders arrive (``planner``); every ``plan_every_ms``
orders still waiting are planned again if the books or the engine's state changed (a fallback
for those a plan could not serve); every ``tick_every_ms`` the clock ticks if that makes an
expiry or a mint's retry fall due.

The journal grows with what happens, not with time: the books that moved go to the engine
just before an input it prices on them (``PRICED_ON_BOOKS``), and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from solver.core.bus import EventBus, TransactionObserver
from solver.core.commands import PRICED_ON_BOOKS, ClockTicked, Input, PlanBatch
from solver.core.engine import Engine
from solver.core.events import (
    AccountInDoubt,
    AssetOrderRequested,
    InputFailed,
    Transaction,
    VaultOverpaid,
)
from solver.core.params import fee_problem
from solver.exchange import metrics as exchange_metrics
from solver.exchange.connector import BinanceConnector
from solver.exchange.execution import Execution, ReconcilePolicy
from solver.exchange.market_data import MarketData
from solver.journal.replay import Checkpoint
from solver.journal.store import Journal
from solver.plumbing.clock import now_ms
from solver.plumbing.tasks import cancel, wait_set
from solver.service.planner import Planner
from solver.service.sequencer import Sequencer, identity
from solver.service.settlement_watch import SettlementWatch
from solver.service.stall_watch import StallWatch

log = structlog.get_logger(__name__)
P = TypeVar("P", bound=TransactionObserver)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    plan_every_ms: int = 500
    gather_ms: float | None = 2
    """How long an order arriving while nothing is in flight waits for others to share its
    batch; None plans on the ``plan_every_ms`` timer only."""
    tick_every_ms: int = 1000
    snapshot_every: int = 2000
    reconcile: ReconcilePolicy = field(default_factory=ReconcilePolicy)
    book_max_age_ms: int = 10_000
    settle_within_ms: int = 60_000
    """A batch not settled by then is alarmed and recovered from the exchange."""
    stall_after_ms: int = 60_000
    """Orders that could be bought alone waiting this long with no batch planned is a stall
    (``stall_watch``)."""


class Runtime:
    def __init__(self, engine: Engine, connector: BinanceConnector,
                 journal: Journal | None = None, settings: RuntimeSettings | None = None,
                 clock: Callable[[], int] | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        """``checkpoint``: the projections stored with the snapshot the engine was rebuilt
        from (``rebuild(journal).checkpoint``)."""
        self.settings = settings or RuntimeSettings()
        self.clock = clock or now_ms
        self.engine = engine
        self.inbox: asyncio.Queue[Input] = asyncio.Queue()
        self.bus = EventBus()
        self._checkpoint = checkpoint or Checkpoint(engine.transactions_applied)
        self.sequencer = Sequencer(engine, self.bus, journal, self.settings.snapshot_every,
                                   self._checkpoint.number)
        self.execution = Execution(connector, self.submit, self.settings.reconcile, self.clock)
        self.bus.subscribe(AssetOrderRequested, self.execution.on_requested)
        self.bus.observe(_FailureLog())
        self.bus.observe(_AlarmLog())
        self._answers = _Answers()
        self.bus.observe(self._answers)
        self.settlement = SettlementWatch(self.bus, self.settings.settle_within_ms,
                                          self.execution.recover)
        symbols = sorted(rules.symbol for rules in engine.rules.values())
        exchange_metrics.start_series(symbols)
        self.market_data = MarketData(connector, symbols, self.settings.book_max_age_ms,
                                      clock=self.clock)
        self.planner = Planner(self.bus, self._plan, self.settings.gather_ms or 0, self.clock,
                               self.settings.reconcile.grace_ms)
        self.stalls = StallWatch(self.bus, self.settings.stall_after_ms,
                                 lambda: self.planner.waiting, lambda: self.planner.in_flight)
        self._stopping = asyncio.Event()
        self._read: dict[int, list[Transaction]] = {}
        if self._checkpoint.since is not None:
            self._read[self._checkpoint.number] = self._checkpoint.since
        self._started = False

    def resume(self, name: str, new: Callable[[], P]) -> P:
        """The projection ``name`` (a view's or an adapter's memory of the events, holding
        only what it folded from them) as of the journal's last transaction: its checkpoint
        fed the transactions since, or ``new()`` fed the whole journal. From now on it follows
        the bus and is checkpointed with every snapshot of the engine. Before ``run`` only."""
        if self._started or name in self.sequencer.projections:
            raise RuntimeError(f"projection {name} resumed twice, or after the writer started")
        saved: P | None = self._checkpoint.projections.get(name)
        projection = new() if saved is None else saved
        past = EventBus()
        past.observe(projection)
        for transaction in self._after(0 if saved is None else self._checkpoint.number):
            past.publish(transaction)
        self.bus.observe(projection)
        self.sequencer.projections[name] = projection
        return projection

    def _after(self, number: int) -> list[Transaction]:
        """The journal's transactions after ``number``, read once for every projection."""
        if number not in self._read:
            self._read[number] = list(self.transactions_after(number))
        return self._read[number]

    def transactions_after(self, number: int) -> Iterator[Transaction]:
        """The journal's transactions after transaction ``number`` (none without one)."""
        journal = self.sequencer.journal
        return journal.transactions(number) if journal is not None else iter(())

    def transactions_since(self, seq: int) -> Iterator[Transaction]:
        """The journal's transactions with events after event ``seq`` (none without one)."""
        journal = self.sequencer.journal
        return journal.transactions_since(seq) if journal is not None else iter(())

    def submit(self, command: Input) -> None:
        """Hand an input to the writer (from any coroutine on the loop); one the engine prices
        on its books goes after the books that moved since the engine last saw them."""
        if isinstance(command, PRICED_ON_BOOKS):
            for update in self.market_data.book_updates():
                self.inbox.put_nowait(update)
        self.inbox.put_nowait(command)

    async def apply(self, command: Input, timeout_s: float = 10) -> Transaction:
        """Submit ``command`` and wait for its transaction to be journaled and published (an
        operator's command, answered with what the engine made of it)."""
        answer = self._answers.expect(command)
        self.submit(command)
        try:
            return await asyncio.wait_for(answer, timeout_s)
        finally:
            self._answers.forget(command)

    async def run(self) -> None:
        """Serve until ``stop``: resume in-flight orders, then plan as orders arrive. On the way
        out, the sends in progress finish and their facts are journaled before the writer
        stops."""
        self._check_rules()
        await self._check_fees()
        self._read, self._started = {}, True
        writer = asyncio.create_task(self.sequencer.run(self.inbox))
        books = asyncio.create_task(self.market_data.run())
        reconciling: asyncio.Task[None] | None = None
        planning: asyncio.Task[None] | None = None
        try:
            unsettled = [b for b in self.engine.batches.values() if not b.settled]
            await self.execution.resume(self.engine.asset_orders.values(),
                                        {b.id: b.ts for b in unsettled})
            self.settlement.resume(self._unsettled_batches())
            self.planner.resume(
                (o.id for o in self.engine.open_orders() if o.is_ready),
                {b.id: frozenset(b.engagements) for b in unsettled},
                {b.id: b.ts for b in unsettled})
            reconciling = asyncio.create_task(self.execution.run())
            if self.settings.gather_ms is not None:
                planning = asyncio.create_task(self.planner.run())
            await self._plan_until_stopped(writer)
        finally:
            if planning is not None:
                await cancel(planning)
            self.execution.stop()
            if reconciling is not None:
                await reconciling
            await self.execution.drain()
            await self._written(writer)
            for task in (books, writer):
                await cancel(task)

    def stop(self) -> None:
        self._stopping.set()

    def _check_rules(self) -> None:
        """Refuse to trade on filters the exchange does not have: every order would fail."""
        for ours in self.engine.rules.values():
            problem = ours.differences(self.execution.connector.rules.get(ours.symbol))
            if problem is not None:
                raise ExchangeMismatch(problem)

    async def _check_fees(self) -> None:
        """Refuse to engage orders for more than they can pay: the fee reserve must cover the
        account's taker commission."""
        account = await self.execution.connector.account()
        problem = fee_problem(self.engine.params, account.taker_fee_rate)
        if problem is not None:
            raise ExchangeMismatch(problem)

    async def _plan_until_stopped(self, writer: asyncio.Task[None]) -> None:
        last_tick = 0
        while not await wait_set(self._stopping, self.settings.plan_every_ms / 1000):
            if writer.done():  # the single writer is gone: nothing more can be done
                writer.result()
                raise RuntimeError("the writer stopped")
            now = self.clock()
            self.planner.fall_back(books_moved=self.market_data.moved())
            self.settlement.check(now)
            self.stalls.check(now)
            if now - last_tick >= self.settings.tick_every_ms:
                # Time is journaled only when it brings something: an expiry, a mint's retry.
                if self.engine.is_due(now):
                    self.submit(ClockTicked(now))
                last_tick = now

    def _plan(self) -> None:
        self.submit(PlanBatch(self.clock()))

    def _unsettled_batches(self) -> list[tuple[int, int, tuple[int, ...],
                                              list[AssetOrderRequested]]]:
        """The batches the journal left in flight (read once, at start, before serving)."""
        return [(b.id, b.ts, tuple(b.engagements),
                 [self.engine.asset_orders[i].requested() for i in b.asset_order_ids])
                for b in self.engine.batches.values() if not b.settled]

    async def _written(self, writer: asyncio.Task[None], timeout_s: float = 5) -> None:
        """Wait until the writer has applied (and so journaled) every input waiting."""
        for _ in range(int(timeout_s / 0.01)):
            if self.inbox.empty() or writer.done():
                return
            await asyncio.sleep(0.01)


class _FailureLog:
    """Says loudly, with the input's identity, when the engine failed on an input."""

    def transaction_began(self, transaction: Transaction) -> None:
        pass

    def transaction_ended(self, transaction: Transaction) -> None:
        for refused in transaction.of_type(InputFailed):
            log.error("input refused by the engine", input=type(transaction.input).__name__,
                      transaction=transaction.number, reason=refused.reason,
                      **identity(transaction.input))


class _AlarmLog:
    """Says loudly when the ledger and the vault part: a vault event gone from the chain, a
    payout beyond what the ledger had."""

    def transaction_began(self, transaction: Transaction) -> None:
        pass

    def transaction_ended(self, transaction: Transaction) -> None:
        for gone in transaction.of_type(AccountInDoubt):
            log.error("vault event applied and gone from the chain: the account's new orders "
                      "are refused until it is mined again or resolved", fact_id=gone.fact_id,
                      kind=gone.kind.value, account=gone.account, wallet=gone.wallet,
                      amount=str(gone.amount), asset=gone.asset)
        for over in transaction.of_type(VaultOverpaid):
            log.error("the vault paid more than the ledger could account for",
                      payout_id=over.payout_id, wallet=over.wallet, amount=str(over.amount),
                      asset=over.asset)


class _Answers:
    """The transactions of inputs someone waits for, matched by the input itself (its
    identity: two equal commands are two inputs)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Input, asyncio.Future[Transaction]]] = []

    def expect(self, command: Input) -> asyncio.Future[Transaction]:
        answer: asyncio.Future[Transaction] = asyncio.get_running_loop().create_future()
        self._waiting.append((command, answer))
        return answer

    def forget(self, command: Input) -> None:
        self._waiting = [(c, a) for c, a in self._waiting if c is not command]

    def transaction_began(self, transaction: Transaction) -> None:
        pass

    def transaction_ended(self, transaction: Transaction) -> None:
        for command, answer in self._waiting:
            if command is transaction.input and not answer.done():
                answer.set_result(transaction)


class ExchangeMismatch(RuntimeError):
    """The exchange's symbols or filters are not those the engine was set up with."""
