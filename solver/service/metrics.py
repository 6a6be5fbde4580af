"""The service's Prometheus metrics, and the endpoint that serves them (``[metrics]``).

Every series starts with ``solver_``, durations are in seconds (``promtool check metrics``
passes), and every labelled counter has its series from the start (at 0). Counted as
transactions are published: every event by type (``solver_execution_events_total``), how long
an exchange fact took to become a visible position (``solver_position_delta_latency_seconds``,
from its arrival to its transaction's publication, the journal's commit included), and the
settlement latency (a mint requested to its settlement confirmed). Read at each scrape from
the operator's view and the adapters: orders by each status (0 included), batches in flight,
the seconds the exchange has been silent while batches are in flight
(``solver_callback_gap_seconds``), FIX sessions logged on, deposits held, vault events a deep
reorganisation took away, and whether the ledger and the vault agree.
``ops/prometheus/alerts.yml`` pages on them.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from solver.core import events as ev
from solver.core.commands import AssetOrderFilled
from solver.core.orders import OrderStatus
from solver.plumbing.clock import now_ms
from solver.plumbing.http import Listening
from solver.plumbing.metrics import SECONDS_BUCKETS
from solver.service.service import Service

ORDER_STATUSES = ("open", "ending", *(s.value for s in OrderStatus if s.value != "open"))
"""Each reported at every scrape, 0 included."""


def _event_types() -> list[type[ev.Event]]:
    found, todo = [], [ev.Event]
    while todo:
        for kind in todo.pop().__subclasses__():
            found.append(kind)
            todo.append(kind)
    return found


EVENTS = Counter("solver_execution_events", "Events the engine published, by type", ["type"])
for _kind in sorted(k.__name__ for k in _event_types()):  # every series from the start
    EVENTS.labels(_kind)
POSITION_DELTA_SECONDS = Histogram(
    "solver_position_delta_latency_seconds",
    "From an exchange fill's arrival to the position it changes being visible",
    buckets=SECONDS_BUCKETS)
SETTLEMENT_SECONDS = Histogram("solver_settlement_latency_seconds",
                               "From a mint requested to its settlement confirmed on-chain",
                               buckets=(*SECONDS_BUCKETS, 30, 60, 300))
RECOVERY_S = Gauge("solver_recovery_seconds",
                   "The last start: from the process starting to accepting orders")


class EventCounts:
    """A bus observer: counts the events and times what the transactions finish."""

    def __init__(self) -> None:
        self._mint_asked: dict[int, int] = {}

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        now = now_ms()
        if isinstance(transaction.input, AssetOrderFilled):
            POSITION_DELTA_SECONDS.observe((now - transaction.input.ts) / 1000)
        for envelope in transaction.events:
            event = envelope.event
            EVENTS.labels(type(event).__name__).inc()
            if isinstance(event, ev.MintRequested | ev.MintRetryRequested):
                self._mint_asked.setdefault(event.order_id, envelope.ts)
            elif isinstance(event, ev.IndexOrderMintRefused):
                self._mint_asked.pop(event.order_id, None)
            elif isinstance(event, ev.IndexOrderMinted):
                asked = self._mint_asked.pop(event.order_id, None)
                if asked is not None:
                    SETTLEMENT_SECONDS.observe((envelope.ts - asked) / 1000)


class StateCollector(Collector):
    """The service's state, read at each scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self.service.operations.view()
        orders = GaugeMetricFamily("solver_orders", "Index orders by status", labels=["status"])
        for status in ORDER_STATUSES:
            orders.add_metric([status], view.orders.get(status, 0))
        yield orders
        yield GaugeMetricFamily("solver_batches_in_flight", "Batches not settled",
                                value=len(view.batches_in_flight))
        since = view.exchange_silent_since
        yield GaugeMetricFamily(
            "solver_callback_gap_seconds", "While batches are in flight, seconds since the "
            "exchange last told the engine something (an order accepted, a fill, an order "
            "closed) or the first of them was sent, whichever is later; 0 with none in flight",
            value=0 if since is None else (now_ms() - since) / 1000)
        yield GaugeMetricFamily("solver_fix_sessions_logged_on", "FIX sessions logged on",
                                value=len(self.service.gateway.logged_on))
        yield GaugeMetricFamily("solver_wallets_with_held_deposits",
                                "Wallets no account has that deposited", value=len(view.held))
        yield GaugeMetricFamily(
            "solver_vanished_vault_facts", "Vault events the engine applied that a deep "
            "reorganisation took off the chain, not mined again nor resolved",
            value=len(view.vanished))
        chain = self.service.chain
        checks = {} if chain is None else chain.reconciler.checks
        yield GaugeMetricFamily(
            "solver_reconciliation_disagreeing_accounts",
            "Accounts whose last check found the vault and the ledger apart",
            value=sum(not c.agrees for c in checks.values()))


class MetricsEndpoint:
    """``GET /metrics`` on ``host:port``, with the service's state collected at each scrape."""

    def __init__(self, service: Service) -> None:
        self.collector = StateCollector(service)
        self.counts = EventCounts()
        service.runtime.bus.observe(self.counts)
        app = web.Application()
        app.add_routes([web.get("/metrics", self._metrics)])
        self.listening = Listening(app, "metrics endpoint")

    async def start(self, host: str, port: int) -> None:
        await self.listening.start(host, port)  # bound first: a taken port registers nothing
        REGISTRY.register(self.collector)

    async def stop(self) -> None:
        await self.listening.stop()
        REGISTRY.unregister(self.collector)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
