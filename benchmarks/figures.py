"""Printing benchmark figures the same way in every script."""

from __future__ import annotations

import statistics


def percentiles(samples_s: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples_s)

    def rank(q: float) -> float:
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    return (f"p50 {statistics.median(ms):.2f} ms, p90 {rank(0.9):.2f} ms, "
            f"p99 {rank(0.99):.2f} ms, min {ms[0]:.2f} ms, max {ms[-1]:.2f} ms, n={len(ms)}")
