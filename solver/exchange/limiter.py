"""The client side of Binance's request limits, so that the solver waits instead of failing.

Pools come from ``exchangeInfo.rateLimits`` (REQUEST_WEIGHT per minute, ORDERS per 10 s and per
day) and count in fixed windows aligned to the clock, as Binance counts. Every answer's
``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-*`` headers correct the local count. A 429 or
418 stops every request until its ``Retry-After`` has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from solver.exchange.wire import RateLimit
from solver.plumbing.clock import now_ms

HEADERS = {"X-MBX-USED-WEIGHT-1M": ("REQUEST_WEIGHT", 60),
           "X-MBX-ORDER-COUNT-10S": ("ORDERS", 10), "X-MBX-ORDER-COUNT-1D": ("ORDERS", 86_400)}


@dataclass(slots=True)
class Pool:
    kind: str
    seconds: int
    limit: int
    window: int = 0
    used: int = 0

    def roll(self, now_ms: int) -> None:
        window = now_ms // (self.seconds * 1000)
        if window != self.window:
            self.window, self.used = window, 0

    def wait_ms(self, now_ms: int) -> int:
        return (self.window + 1) * self.seconds * 1000 - now_ms


class RateLimiter:
    def __init__(self, limits: Iterable[RateLimit] = (), headroom: float = 0.9,
                 clock: Callable[[], int] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """``headroom``: the share of each limit the solver allows itself."""
        self.headroom = headroom
        self.clock = clock or now_ms
        self.sleep = sleep
        self.pools: list[Pool] = []
        self.paused_until = 0
        self.waited_ms = 0
        self.configure(limits)

    def configure(self, limits: Iterable[RateLimit]) -> None:
        self.pools = [Pool(r.kind, r.seconds, max(1, int(r.limit * self.headroom)))
                      for r in limits if r.kind in ("REQUEST_WEIGHT", "ORDERS")]

    async def acquire(self, weight: int, orders: int = 0) -> None:
        """Wait until the request fits every pool (and any pause is over), then count it."""
        while True:
            now = self.clock()
            wait = self.paused_until - now
            for pool in self.pools:
                pool.roll(now)
                cost = weight if pool.kind == "REQUEST_WEIGHT" else orders
                # a request larger than the whole limit goes alone into an empty window
                if cost and pool.used + cost > pool.limit and pool.used:
                    wait = max(wait, pool.wait_ms(now))
            if wait <= 0:
                break
            self.waited_ms += wait
            await self.sleep(wait / 1000)
        for pool in self.pools:
            pool.used += weight if pool.kind == "REQUEST_WEIGHT" else orders

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the exchange's own count where it reports one."""
        now = self.clock()
        for header, (kind, seconds) in HEADERS.items():
            value = headers.get(header)
            if value is None or not value.isdigit():
                continue
            for pool in self.pools:
                if (pool.kind, pool.seconds) == (kind, seconds):
                    pool.roll(now)
                    pool.used = max(pool.used, int(value))

    def pause(self, retry_after_s: int) -> None:
        """Stop all requests for ``retry_after_s`` seconds (a 429 or a 418 ban)."""
        self.paused_until = max(self.paused_until, self.clock() + retry_after_s * 1000)
