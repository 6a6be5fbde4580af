"""Prometheus metrics that more than one adapter feeds (each adapter's own live with it:
``solver/exchange/metrics.py``, ``solver/service/metrics.py``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import Histogram

MS_BUCKETS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)

RECONCILIATION_MS = Histogram(
    "reconciliation_duration_ms",
    "One reconciliation of our records with a venue's: a round of order queries on the "
    "exchange, or the ledger checked against the vault on the chain", ["venue"],
    buckets=MS_BUCKETS)


@contextlib.contextmanager
def timed_ms(histogram: Histogram) -> Iterator[None]:
    """Observe how long the block took, in milliseconds (``Histogram.time`` gives seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe((time.perf_counter() - start) * 1000)
