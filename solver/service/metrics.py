"""The service's Prometheus metrics, and the endpoint that serves them (``[metrics]``).

Counted as transactions are published: every event by type (``execution_events_total``),
how long an exchange fact took to become a visible position (``position_delta_latency_ms``,
from its arrival to its transaction's publication, the journal's commit included), and the
settlement latency (a mint requested to its settlement confirmed). Read at each scrape from
the operator's view and the adapters: orders by status, batches in flight, the seconds since
the exchange last told the engine something (``callback_gap_seconds``), FIX sessions logged
on, deposits held, vault events a deep reorganisation took away, and whether the ledger and
the vault agree. ``ops/alerts.yml`` pages on them.
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
from solver.plumbing.clock import now_ms
from solver.plumbing.http import Listening
from solver.plumbing.metrics import MS_BUCKETS
from solver.service.wiring import Service

EVENTS = Counter("execution_events", "Events the engine published, by type", ["type"])
POSITION_DELTA_MS = Histogram(
    "position_delta_latency_ms",
    "From an exchange fill's arrival to the position it changes being visible",
    buckets=MS_BUCKETS)
SETTLEMENT_MS = Histogram("solver_settlement_latency_ms",
                          "From a mint requested to its settlement confirmed on-chain",
                          buckets=(*MS_BUCKETS, 30_000, 60_000))
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
            POSITION_DELTA_MS.observe(now - transaction.input.ts)
        for envelope in transaction.events:
            event = envelope.event
            EVENTS.labels(type(event).__name__).inc()
            if isinstance(event, ev.MintRequested | ev.MintRetryRequested):
                self._mint_asked.setdefault(event.order_id, envelope.ts)
            elif isinstance(event, ev.IndexOrderMinted):
                asked = self._mint_asked.pop(event.order_id, None)
                if asked is not None:
                    SETTLEMENT_MS.observe(envelope.ts - asked)


class StateCollector(Collector):
    """The service's state, read at each scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self.service.operations.view()
        orders = GaugeMetricFamily("solver_orders", "Index orders by status", labels=["status"])
        for status, count in view.orders.items():
            orders.add_metric([status], count)
        yield orders
        yield GaugeMetricFamily("solver_batches_in_flight", "Batches not settled",
                                value=len(view.batches_in_flight))
        last = view.last_exchange_ts
        yield GaugeMetricFamily(
            "callback_gap_seconds", "Seconds since the exchange last told the engine something "
            "(an order accepted, a fill, an order closed)",
            value=0 if last is None else (now_ms() - last) / 1000)
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
