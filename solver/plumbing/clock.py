"""Wall-clock time for the adapters (the core never reads a clock: time comes with inputs)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Unix time in milliseconds."""
    return int(time.time() * 1000)
