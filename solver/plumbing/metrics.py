"""Prometheus metrics that more than one adapter feeds (each adapter's own live with it:
``solver/exchange/metrics.py``, ``solver/service/metrics.py``). Durations are in seconds, as
Prometheus' conventions ask (``promtool check metrics``)."""

from __future__ import annotations

from prometheus_client import Histogram

SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10)

RECONCILIATION_SECONDS = Histogram(
    "solver_reconciliation_duration_seconds",
    "One reconciliation of our records with a venue's: a round of order queries on the "
    "exchange, or the ledger checked against the vault on the chain", ["venue"],
    buckets=SECONDS_BUCKETS)
