"""Runs a scenario through the engine, the event bus and the simulated exchange.

Sequence: books, deposits, quotes, orders, then what is due ``after_batch: 0`` (cancels,
reductions, withdrawals, book changes); then batch after batch: plan, the cancels, reductions
and withdrawals due after that batch (while its asset orders are in flight), the exchange's
reports, mint confirmations and the vault's payouts, the book changes due, book refresh.
Each input takes a millisecond. When no batch can be planned (or a batch changed nothing)
and the engine waits for a time (a remainder's wait, ``completion_wait_ms``), the clock jumps
there and ticks, and planning goes on. The run stops when nothing more can happen; what is
still due is applied, and orders still open are expired and report what they got.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from solver.core.bus import EventBus
from solver.core.commands import (
    BindWallet,
    BookUpdated,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    FeeAssetFunded,
    Input,
    MintConfirmed,
    PlanBatch,
    ReduceIndexOrder,
    RequestQuote,
    SubmitIndexOrder,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.engine import Engine
from solver.core.events import (
    AssetOrderRequested,
    BatchPlanned,
    Envelope,
    Event,
    MintRequested,
    MintRetryRequested,
    Transaction,
    WithdrawalReleaseRequested,
)
from solver.core.invariants import violations
from solver.core.inventory import lot_id
from solver.core.model import Collateral
from solver.core.money import ZERO, exact, plain
from solver.core.setup import EngineSetup
from solver.journal.store import Journal
from solver.service.sequencer import Sequencer
from solver.simulation.exchange import SimulatedExchange
from solver.simulation.scenario import Scenario


@dataclass(slots=True)
class SimulationResult:
    """A run as the journal would hold it: the engine and every transaction, in order."""

    engine: Engine
    transactions: list[Transaction]
    violations: list[str] = field(default_factory=list)
    exchange: SimulatedExchange | None = None
    """The exchange the run traded with (None when the run was rebuilt from a journal)."""

    @property
    def events(self) -> list[Envelope[Event]]:
        return [e for t in self.transactions for e in t.events]


@exact
def audit(engine: Engine, transactions: list[Transaction],
          exchange: SimulatedExchange | None = None) -> list[str]:
    """The architecture's laws on the final state, at most one mint request per order, every
    batch settled, and (given the exchange the run traded with) every trade recorded as a lot
    of its quantity."""
    requested = Counter(e.event.order_id for t in transactions for e in t.events
                        if isinstance(e.event, MintRequested))
    unsettled = [f"batch {b.id}: not settled at the end of the run"
                 for b in engine.batches.values() if not b.settled]
    return (violations(engine) + [f"order {order_id}: {n} mint requests"
                                  for order_id, n in requested.items() if n > 1]
            + unsettled + (_unrecorded_trades(engine, exchange) if exchange else []))


def _unrecorded_trades(engine: Engine, exchange: SimulatedExchange) -> list[str]:
    """Trades the exchange made that the engine holds no lot of, or a lot of another size
    (the lot is the trade less a commission paid in the asset itself)."""
    found = []
    for trade in exchange.trades:
        lot = engine.inventory.lot(lot_id(trade.symbol, trade.trade_id))
        paid_in_asset = trade.commission_asset == trade.asset
        bought = trade.quantity - (trade.commission if paid_in_asset else ZERO)
        if lot is None or lot.quantity != bought:
            found.append(f"trade {trade.symbol} {trade.trade_id} of {plain(trade.quantity)}: "
                         + ("no lot" if lot is None else f"lot of {plain(lot.quantity)}"))
    return found


def setup_of(scenario: Scenario) -> EngineSetup:
    return EngineSetup(
        tuple(scenario.indexes), tuple(m.rules for m in scenario.markets.values()),
        scenario.params,
        tuple(Collateral(a, d) for a, d in scenario.collateral_decimals.items()))


Arrangement = Callable[[list[Input]], list[Input]]


class Simulation:
    """``arrange`` may reorder each batch's exchange reports, as a real exchange's streams can:
    the outcome must not depend on it."""

    def __init__(self, scenario: Scenario, arrange: Arrangement | None = None,
                 journal: Journal | None = None, snapshot_every: int = 0) -> None:
        """With a ``journal`` (created from ``setup_of(scenario)``), every transaction is
        committed to it before its events reach the simulated exchange, and the engine's state
        is stored in it every ``snapshot_every`` transactions."""
        self.scenario = scenario
        self._arrange: Arrangement = arrange or list
        self.engine = (journal.setup if journal else setup_of(scenario)).build()
        self.exchange = SimulatedExchange(scenario.markets)
        self.bus = EventBus()
        self.sequencer = Sequencer(self.engine, self.bus, journal, snapshot_every)
        self.transactions: list[Transaction] = []
        self._clock = 0
        self._outbox: list[AssetOrderRequested] = []
        self._facts: deque[Input] = deque()
        self.bus.subscribe(AssetOrderRequested, self._send)
        self.bus.subscribe(MintRequested, self._confirm_mint)
        self.bus.subscribe(MintRetryRequested, self._confirm_mint)
        self.bus.subscribe(WithdrawalReleaseRequested, self._pay_out)

    def run(self) -> SimulationResult:
        s = self.scenario
        self._refresh_books()
        for account in sorted({w.account for w in s.withdrawals}):  # the vault knows them
            self.apply(BindWallet(self._tick(), account, account))
        for n, (account, asset, amount) in enumerate(s.deposits, 1):
            self.apply(DepositConfirmed(self._tick(), f"deposit-{n}", account, asset, amount))
        for asset, quantity in s.fee_funds.items():
            self.apply(FeeAssetFunded(self._tick(), f"fee-funds-{asset}", asset, quantity))
        for n, (index, amount) in enumerate(s.quotes, 1):
            self.apply(RequestQuote(self._tick(), f"quote-{n}", index, amount))
        for spec in s.orders:
            self.apply(SubmitIndexOrder(self._tick(), spec.account, spec.id, spec.index,
                                        spec.collateral, max_price=spec.max_price))
        self._changes(0)
        self._drain()
        batches = steps = 0
        while batches < s.max_batches and steps < 2 * s.max_batches:
            steps += 1
            if self._run_batch(batches + 1):
                batches += 1
            elif not self._wait():
                break
        self._changes(None, after=batches)
        self._drain()
        for order in self.engine.open_orders():
            self.apply(ExpireIndexOrder(self._tick(), order.account, order.client_order_id,
                                        "the run ended with no batch able to buy for it"))
        self._drain()
        return SimulationResult(self.engine, self.transactions,
                                audit(self.engine, self.transactions, self.exchange),
                                self.exchange)

    def apply(self, command: Input) -> Transaction:
        transaction = self.sequencer.apply(command)
        self.transactions.append(transaction)
        return transaction

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _run_batch(self, number: int) -> bool:
        """Plan and run one batch; False when none could be planned or it changed nothing."""
        planned = self.apply(PlanBatch(self._tick())).of_type(BatchPlanned)
        if not planned:
            return False
        self._changes(number, books=False)
        self.sequencer.flush()
        trades_before = len(self.exchange.trades)
        orders, self._outbox = self._outbox, []
        reports = [f for r in orders for f in self.exchange.execute(r, self._tick())]
        self._facts.extend(self._arrange(reports))
        self._drain()
        self.exchange.refill(only_refilling=True)
        self._changes(number, orders=False)
        self._refresh_books()
        batch = self.engine.batches[planned[0].batch_id]
        return any(batch.filled_units.values()) or len(self.exchange.trades) > trades_before

    def _wait(self) -> bool:
        """Let the clock run to the next time the engine waits for, if any, and tick; False
        when nothing waits for time or the tick brought nothing."""
        due = self.engine.next_due()
        if due is None:
            return False
        self._clock = max(self._clock, due - 1)
        self._refresh_books()
        brought = self.apply(ClockTicked(self._tick())).events
        self._drain()
        return bool(brought)

    def _drain(self) -> None:
        """Apply the facts waiting, as one group per round: the journal commits each group
        once, then its events go out (and may bring more facts)."""
        self.sequencer.flush()
        while self._facts:
            while self._facts:
                self.apply(self._facts.popleft())
            self.sequencer.flush()

    def _refresh_books(self) -> None:
        for symbol in self.exchange.books:
            self.apply(BookUpdated(self._tick(), self.exchange.book(symbol)))

    def _send(self, envelope: Envelope[AssetOrderRequested]) -> None:
        self._outbox.append(envelope.event)

    def _changes(self, batch: int | None, after: int = 0, orders: bool = True,
                 books: bool = True) -> None:
        """What the scenario says happens after ``batch`` (None: after any batch later than
        ``after``, at the end of the run): the users' cancels, reductions and withdrawals
        (``orders``), and the markets' moves (``books``)."""
        def due(at: int) -> bool:
            return at == batch if batch is not None else at > after

        s = self.scenario
        if orders:
            for c in s.cancels:
                if due(c.after_batch):
                    self.apply(CancelIndexOrder(self._tick(), c.account, c.id))
            for r in s.reductions:
                if due(r.after_batch):
                    self.apply(ReduceIndexOrder(self._tick(), r.account, r.id, r.collateral))
            for n, w in enumerate(s.withdrawals, 1):
                if due(w.after_batch):
                    self.apply(WithdrawalRequested(self._tick(), f"withdrawal-{n}", w.account,
                                                   w.asset, w.amount))
        if books:
            for change in s.book_changes:
                if due(change.after_batch):
                    self.exchange.move(change.book)
                    self.apply(BookUpdated(self._tick(), change.book))

    def _pay_out(self, envelope: Envelope[WithdrawalReleaseRequested]) -> None:
        event = envelope.event
        self._facts.append(WithdrawalPaid(envelope.ts, f"payout-{event.request_id}",
                                          event.wallet, event.asset, event.amount))

    def _confirm_mint(self, envelope: Envelope[MintRequested | MintRetryRequested]) -> None:
        event = envelope.event
        digest = hashlib.sha256(f"mint:{event.order_id}".encode()).hexdigest()
        self._facts.append(MintConfirmed(envelope.ts, event.order_id, "0x" + digest))


def simulate(scenario: Scenario, arrange: Arrangement | None = None,
             journal: Journal | None = None) -> SimulationResult:
    return Simulation(scenario, arrange, journal).run()
