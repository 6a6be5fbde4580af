"""Printing benchmark figures the same way in every script."""

from __future__ import annotations

import statistics


def percentiles(samples_s: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples_s)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (f"p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, "
            f"min {ms[0]:.2f} ms, n={len(ms)}")
