"""Prometheus metrics of the exchange layer (the process's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS_SENT = Counter("solver_asset_orders_sent_total", "Asset orders sent", ["symbol"])
ORDER_RESULTS = Counter("solver_asset_order_results_total",
                        "Answers to asset orders: placed, rejected or unknown", ["result"])
ACK_SECONDS = Histogram("solver_asset_order_ack_seconds",
                        "From sending an asset order to its answer",
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
FILLS = Counter("solver_exchange_fills_total", "Trades recorded, each once")
STREAM_LOSSES = Counter("solver_user_stream_losses_total",
                        "User data stream breaks (each followed by a reconciliation)")
NOT_FOUND = Counter("solver_order_not_found_total", "Order queries answered 'not found'")
RATE_LIMITED = Counter("solver_rate_limited_total", "429/418 answers", ["status"])
BOOK_RESYNCS = Counter("solver_book_resyncs_total", "Local book gaps (resnapshots)",
                       ["symbol"])
STALE_BOOKS = Gauge("solver_stale_books",
                    "Books stale now: the engine gets them empty before its next priced input")


def start_series(symbols: list[str]) -> None:
    """Every labelled series at 0 from the start, so rates and alerts see it before its first
    event (Prometheus' advice: missing is not zero)."""
    for symbol in symbols:
        ORDERS_SENT.labels(symbol)
        BOOK_RESYNCS.labels(symbol)
    for result in ("placed", "rejected", "unknown"):
        ORDER_RESULTS.labels(result)
    for status in ("418", "429"):
        RATE_LIMITED.labels(status)
