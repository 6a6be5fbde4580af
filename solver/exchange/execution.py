"""Execution: sends the engine's asset orders and turns what the exchange says into the
engine's inputs, reconciling until every order is final and every fill recorded.

It subscribes to transactions on the bus, so it only sees an ``AssetOrderRequested`` after the
journal holds it: the client order id is durable before the order is sent. Facts go back
through ``submit`` (the writer's inbox); a reject of one order is one fact, never an error.

Reconciliation, after nautilus_trader and hummingbot:

- an order with no news for ``grace_ms`` (pending, unknown outcome, or live) is queried by its
  client order id; "not found" counts a miss, and ``max_misses`` of them end it (rejected if it
  was never acked, canceled with its fills if it was);
- a live order missing from open orders is queried before anything is concluded;
- an order whose reported executed quantity exceeds its recorded trades gets ``myTrades``;
- after the user stream breaks, everything open is queried at once;
- at start-up, every asset order the journal has in flight is tracked again and queried; one
  the exchange does not know ``grace_ms`` after it was journaled was never sent (the process
  that would have sent it is gone): one "not found" ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from solver.core.batches import AssetOrder
from solver.core.commands import AssetOrderFilled, Input
from solver.core.events import AssetOrderRequested, Envelope
from solver.core.money import plain
from solver.exchange import metrics
from solver.exchange.connector import (
    TRANSPORT_ERRORS,
    BinanceConnector,
    ExchangeError,
    NotFound,
    Placed,
    Rejected,
    StreamLost,
)
from solver.exchange.tracker import (
    OrderReport,
    OrderTracker,
    TrackedOrder,
    TradeReport,
    recovered_facts,
)
from solver.plumbing.clock import now_ms
from solver.plumbing.metrics import RECONCILIATION_SECONDS
from solver.plumbing.tasks import cancel, wait_set

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    grace_ms: int = 5000
    """How long an order may go without news before it is queried."""
    max_misses: int = 3
    """Consecutive "not found" answers before an order is given up."""
    check_every_ms: int = 2000
    open_orders_every_ms: int = 10_000
    closed_ttl_ms: int = 30_000
    """Closed orders stay tracked this long, so late duplicates are recognised."""


class Execution:
    def __init__(self, connector: BinanceConnector, submit: Callable[[Input], None],
                 policy: ReconcilePolicy | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.connector = connector
        self.submit = submit
        self.policy = policy or ReconcilePolicy()
        self.clock = clock or now_ms
        self.tracker = OrderTracker()
        self.stream_losses = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._stream_lost = False
        self._round = asyncio.Lock()  # one reconciliation at a time: an order queried once
        self._found: list[Input] | None = None

    # --- orders out -------------------------------------------------------------------------

    def on_requested(self, envelope: Envelope[AssetOrderRequested]) -> None:
        """Bus handler for ``AssetOrderRequested``: journaled by now, so send it."""
        self._spawn(self.send(envelope.event))

    async def send(self, request: AssetOrderRequested) -> None:
        order = self.tracker.track(request, self.clock())
        metrics.ORDERS_SENT.labels(request.symbol).inc()
        order.sending = True
        try:
            with metrics.ACK_SECONDS.time():
                result = await self.connector.place(request)
        finally:  # the grace period runs from the answer, not from the wait for the limiter
            order.sending, order.last_update = False, self.clock()
        metrics.ORDER_RESULTS.labels(type(result).__name__.lower()).inc()
        cid = request.client_order_id
        if isinstance(result, Placed):
            self._apply(result.report, result.trades)
        elif isinstance(result, Rejected):
            log.warning("asset order rejected", client_order_id=cid, batch_id=request.batch_id,
                        code=result.code, reason=result.message)
            self._emit(self.tracker.on_rejected(cid, f"{result.code} {result.message}",
                                                self.clock()))
        else:
            log.warning("asset order outcome unknown", client_order_id=cid,
                        batch_id=request.batch_id, reason=result.reason)
            self.tracker.on_unknown(cid, result.reason, self.clock())

    async def cancel(self, client_order_id: str) -> None:
        """Cancel an order; one not acked yet is canceled as soon as its ack shows it live."""
        order = self.tracker.get(client_order_id)
        if order is None or order.state.is_terminal:
            return
        self.tracker.request_cancel(client_order_id)
        await self._send_cancel(order)

    async def _send_cancel(self, order: TrackedOrder) -> None:
        result = await self.connector.cancel(order.symbol, order.client_order_id)
        if isinstance(result, Placed):
            self._apply(result.report, result.trades)
        elif isinstance(result, NotFound):
            log.info("cancel before ack: waiting for the ack",
                     client_order_id=order.client_order_id)

    # --- facts in ---------------------------------------------------------------------------

    def _apply(self, report: OrderReport, trades: Iterable[TradeReport] = ()) -> None:
        order = self.tracker.get(report.client_order_id)
        was_unknown = order is not None and order.outcome_unknown
        self._emit(self.tracker.on_report(report, self.clock(), tuple(trades)))
        if was_unknown and order is not None and not order.outcome_unknown:
            log.info("asset order outcome resolved", client_order_id=order.client_order_id,
                     batch_id=order.request.batch_id, state=order.state.value,
                     executed=plain(report.executed))
        if order is not None and order.wants_cancel:
            order.cancel_requested = False  # one cancel per ack; a new request sets it again
            self._spawn(self._send_cancel(order))

    def _emit(self, facts: list[Input]) -> None:
        if self._found is not None:
            self._found.extend(facts)
        for fact in facts:
            if isinstance(fact, AssetOrderFilled):
                metrics.FILLS.inc()
                log.info("asset order filled", asset_order_id=fact.asset_order_id,
                         trade_id=fact.trade_id, price=str(fact.price),
                         quantity=str(fact.quantity), commission=str(fact.commission),
                         commission_asset=fact.commission_asset)
            self.submit(fact)

    async def follow_user_stream(self) -> None:
        """Apply execution reports; after a break, the reconcile loop's next round queries
        everything (meanwhile the connector has subscribed again)."""
        async for event in self.connector.user_events():
            if isinstance(event, StreamLost):
                self.stream_losses += 1
                self._stream_lost = True
                metrics.STREAM_LOSSES.inc()
                log.warning("user stream lost; reconciling", reason=event.reason)
            else:
                report, trade = event
                self._apply(report, (trade,) if trade else ())

    def recover(self, requests: Iterable[AssetOrderRequested]) -> None:
        """Hand the engine everything the exchange has of these orders again: their state and
        every trade (the engine keeps each once). For a batch that did not settle in time."""
        self._spawn(self._recover(list(requests)))

    async def _recover(self, requests: list[AssetOrderRequested]) -> None:
        for request in requests:
            answer = await self.connector.query(request.symbol, request.client_order_id)
            if not isinstance(answer, OrderReport):
                log.warning("asset order not found while recovering",
                            client_order_id=request.client_order_id)
                continue
            trades = await self.connector.trades(request.symbol, answer.exchange_order_id)
            self._emit(recovered_facts(request, answer, trades, self.clock()))

    # --- reconciliation ---------------------------------------------------------------------

    async def resume(self, orders: Iterable[AssetOrder], planned_at: Mapping[int, int]) -> None:
        """Track the journal's in-flight asset orders again and learn what became of them.
        ``planned_at``: when each one's batch was planned (ms), by batch id: an order the
        exchange does not know ``grace_ms`` after it was journaled never reached it (the
        process that would have sent it is gone), so one "not found" settles it."""
        now = self.clock()
        for order in orders:
            if order.is_done:
                continue
            tracked = self.tracker.track(order.requested(), now)
            tracked.outcome_unknown = True
            tracked.journaled_at = planned_at.get(order.batch_id, now)
        log.info("resuming in-flight asset orders", count=len(self.tracker.open()))
        await self.reconcile(everything=True)

    async def reconcile(self, everything: bool = False) -> None:
        """Query the orders that need it (all open ones if ``everything``), fetch missing
        trades, and forget closed orders past their TTL."""
        with RECONCILIATION_SECONDS.labels("exchange").time():
            await self._reconcile_all(everything)

    async def _reconcile_all(self, everything: bool) -> None:
        now = self.clock()
        for order in list(self.tracker.orders.values()):
            try:
                await self._reconcile(order, now, everything)
            except (ExchangeError, *TRANSPORT_ERRORS) as error:  # the next round tries again
                log.warning("reconciliation incomplete", client_order_id=order.client_order_id,
                            error=repr(error))

    async def _reconcile(self, order: TrackedOrder, now: int, everything: bool) -> None:
        if order.sending:
            return
        quiet = now - order.last_update >= self.policy.grace_ms
        if not order.state.is_terminal and (everything or quiet):
            await self._query(order)
        if order.missing_trades and order.exchange_order_id is not None:
            for trade in await self.connector.trades(order.symbol, order.exchange_order_id):
                self._emit(self.tracker.on_trade(trade, self.clock()))
        self._maybe_forget(order, now)

    async def reconcile_now(self) -> list[Input]:
        """Query every order not final and the exchange's open orders now (the operator's
        ``index-solver reconcile``); the facts this found that the engine did not have."""
        async with self._round:
            self._found = []
            try:
                await self.reconcile(everything=True)
                await self.check_open_orders()
                return self._found
            finally:
                self._found = None

    async def check_open_orders(self) -> None:
        """Live orders absent from the exchange's open orders are confirmed by a query."""
        live = [o for o in self.tracker.orders.values() if o.is_live]
        for symbol in sorted({o.symbol for o in live}):
            listed = {r.client_order_id for r in await self.connector.open_orders(symbol)}
            for order in live:
                if order.symbol == symbol and order.client_order_id not in listed:
                    await self._query(order)

    async def _query(self, order: TrackedOrder) -> None:
        answer = await self.connector.query(order.symbol, order.client_order_id)
        if isinstance(answer, OrderReport):
            self._apply(answer)
        elif isinstance(answer, NotFound):
            metrics.NOT_FOUND.inc()
            now = self.clock()
            gone = order.journaled_at is not None \
                and now - order.journaled_at >= self.policy.grace_ms
            facts = self.tracker.on_not_found(order.client_order_id, now,
                                              1 if gone else self.policy.max_misses)
            if facts:
                log.warning("asset order outcome resolved", client_order_id=order.client_order_id,
                            batch_id=order.request.batch_id, state=order.state.value,
                            reason=order.reason)
            self._emit(facts)

    def _maybe_forget(self, order: TrackedOrder, now: int) -> None:
        if order.state.is_terminal and not order.missing_trades \
                and now - order.last_update >= self.policy.closed_ttl_ms:
            self.tracker.forget(order.client_order_id)

    @property
    def settled(self) -> bool:
        """Every tracked order is final with all its trades recorded."""
        return all(o.state.is_terminal and not o.missing_trades
                   for o in self.tracker.orders.values())

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the user stream and reconcile on a timer, until ``stop``. A round holds
        ``_round`` (as does ``reconcile_now``), so an order is never queried twice at once."""
        stream = asyncio.create_task(self.follow_user_stream())
        last_open_check = self.clock()
        try:
            while not await wait_set(self._stopping, self.policy.check_every_ms / 1000):
                try:
                    async with self._round:
                        everything, self._stream_lost = self._stream_lost, False
                        await self.reconcile(everything)
                        if self.clock() - last_open_check >= self.policy.open_orders_every_ms:
                            last_open_check = self.clock()
                            await self.check_open_orders()
                except Exception:  # a service loop: log, and the next round tries again
                    log.exception("reconciliation round failed")
        finally:
            await cancel(stream)

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self) -> None:
        """Wait for the sends and cancels in progress."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("exchange task failed", error=repr(task.exception()))

