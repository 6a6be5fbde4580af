"""Runs a scenario through the engine, the event bus and the simulated exchange.

Sequence: books, deposits, quotes, orders, cancels with ``after_batch: 0``; then batch after
batch: plan, cancels due after that batch (while its asset orders are in flight), the
exchange's reports, mint confirmations, book refresh. It stops when no batch can be planned
or a batch changed nothing; cancels still due are applied, and orders still open are expired
and report what they got.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from solver.bus import EventBus
from solver.commands import (
    BookUpdated,
    CancelIndexOrder,
    DepositConfirmed,
    ExpireIndexOrder,
    Input,
    MintConfirmed,
    PlanBatch,
    RequestQuote,
    SubmitIndexOrder,
)
from solver.engine import Engine
from solver.events import (
    AssetOrderRequested,
    BatchPlanned,
    Envelope,
    Event,
    IndexOrderRejected,
    MintRequested,
    MintRetryRequested,
    QuoteIssued,
    QuoteRejected,
    Transaction,
)
from solver.invariants import violations
from solver.model import Collateral
from solver.simulation.exchange import SimulatedExchange
from solver.simulation.scenario import CancelSpec, OrderSpec, Scenario


@dataclass(frozen=True, slots=True)
class SubmittedOrder:
    key: str
    """The order's name in the report: its id, made unique where ids repeat."""
    spec: OrderSpec
    order_id: int | None
    rejection: IndexOrderRejected | None


@dataclass(slots=True)
class SimulationResult:
    scenario: Scenario
    engine: Engine
    exchange: SimulatedExchange
    submitted: list[SubmittedOrder]
    quotes: list[QuoteIssued | QuoteRejected]
    events: list[Envelope]
    violations: list[str] = field(default_factory=list)


Arrangement = Callable[[list[Input]], list[Input]]


class Simulation:
    """``arrange`` may reorder each batch's exchange reports, as a real exchange's streams can:
    the outcome must not depend on it."""

    def __init__(self, scenario: Scenario, arrange: Arrangement | None = None) -> None:
        self.scenario = scenario
        self._arrange: Arrangement = arrange or list
        self.engine = Engine(
            scenario.indexes, [m.rules for m in scenario.markets.values()], scenario.params,
            [Collateral(a, d) for a, d in scenario.collateral_decimals.items()])
        self.exchange = SimulatedExchange(scenario.markets)
        self.bus = EventBus()
        self.events: list[Envelope] = []
        self._clock = 0
        self._outbox: list[AssetOrderRequested] = []
        self._facts: deque[Input] = deque()
        self.bus.subscribe(Event, self.events.append)
        self.bus.subscribe(AssetOrderRequested, self._send)
        self.bus.subscribe(MintRequested, self._confirm_mint)
        self.bus.subscribe(MintRetryRequested, self._confirm_mint)

    def run(self) -> SimulationResult:
        s = self.scenario
        self._refresh_books()
        for n, (account, asset, amount) in enumerate(s.deposits, 1):
            self.apply(DepositConfirmed(self._tick(), f"deposit-{n}", account, asset, amount))
        quotes = [self._quote(n, index, amount) for n, (index, amount) in enumerate(s.quotes, 1)]
        submitted = self._submit_orders()
        self._cancel(0)
        batches = 0
        while batches < s.max_batches and self._run_batch(batches + 1):
            batches += 1
        for cancel in s.cancels:
            if cancel.after_batch > batches:
                self._apply_cancel(cancel)
        for order in self.engine.open_orders():
            self.apply(ExpireIndexOrder(self._tick(), order.account, order.client_order_id))
        self._drain()
        found = violations(self.engine) + self.exchange.filter_failures + self._double_mints()
        return SimulationResult(s, self.engine, self.exchange, submitted, quotes, self.events,
                                found)

    def apply(self, command: Input) -> Transaction:
        transaction = self.engine.apply(command)
        self.bus.publish(transaction)
        return transaction

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _run_batch(self, number: int) -> bool:
        """Plan and run one batch; False when none could be planned or it changed nothing."""
        planned = self.apply(PlanBatch(self._tick())).of_type(BatchPlanned)
        if not planned:
            return False
        self._cancel(number)
        trades_before = len(self.exchange.trades)
        orders, self._outbox = self._outbox, []
        reports = [f for r in orders for f in self.exchange.execute(r, self._tick())]
        self._facts.extend(self._arrange(reports))
        self._drain()
        self.exchange.refill(only_refilling=True)
        self._refresh_books()
        batch = self.engine.batches[planned[0].batch_id]
        return any(batch.filled_units.values()) or len(self.exchange.trades) > trades_before

    def _drain(self) -> None:
        while self._facts:
            self.apply(self._facts.popleft())

    def _refresh_books(self) -> None:
        for symbol in self.exchange.books:
            self.apply(BookUpdated(self._tick(), self.exchange.book(symbol)))

    def _quote(self, n: int, index: str, amount: Decimal) -> QuoteIssued | QuoteRejected:
        answer = self.apply(RequestQuote(self._tick(), f"quote-{n}", index, amount))
        return next(e.event for e in answer.events
                    if isinstance(e.event, QuoteIssued | QuoteRejected))

    def _send(self, envelope: Envelope) -> None:
        assert isinstance(envelope.event, AssetOrderRequested)
        self._outbox.append(envelope.event)

    def _submit_orders(self) -> list[SubmittedOrder]:
        specs = self.scenario.orders
        accounts_per_id: dict[str, set[str]] = {}
        for o in specs:
            accounts_per_id.setdefault(o.id, set()).add(o.account)
        seen: Counter[str] = Counter()
        submitted = []
        for spec in specs:
            key = spec.id if len(accounts_per_id[spec.id]) == 1 else f"{spec.account}/{spec.id}"
            seen[key] += 1
            key = key if seen[key] == 1 else f"{key}#{seen[key]}"
            txn = self.apply(SubmitIndexOrder(self._tick(), spec.account, spec.id, spec.index,
                                              spec.collateral, max_price=spec.max_price))
            rejected = txn.of_type(IndexOrderRejected)
            order = None if rejected else self.engine.order(spec.account, spec.id)
            submitted.append(SubmittedOrder(key, spec, order.id if order else None,
                                            rejected[0] if rejected else None))
        return submitted

    def _cancel(self, after_batch: int) -> None:
        for cancel in self.scenario.cancels:
            if cancel.after_batch == after_batch:
                self._apply_cancel(cancel)

    def _apply_cancel(self, cancel: CancelSpec) -> None:
        self.apply(CancelIndexOrder(self._tick(), cancel.account, cancel.id))

    def _confirm_mint(self, envelope: Envelope) -> None:
        event = envelope.event
        assert isinstance(event, MintRequested | MintRetryRequested)
        digest = hashlib.sha256(f"mint:{event.order_id}".encode()).hexdigest()
        self._facts.append(MintConfirmed(envelope.ts, event.order_id, "0x" + digest))

    def _double_mints(self) -> list[str]:
        requested = Counter(e.event.order_id for e in self.events
                            if isinstance(e.event, MintRequested))
        return [f"order {order_id}: {n} mint requests" for order_id, n in requested.items()
                if n > 1]


def simulate(scenario: Scenario, arrange: Arrangement | None = None) -> SimulationResult:
    return Simulation(scenario, arrange).run()
