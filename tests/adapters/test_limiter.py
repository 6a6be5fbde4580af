"""The rate limiter: requests wait for their window instead of failing, headers correct the
count, and a 429/418 pauses everything for its Retry-After."""

from __future__ import annotations

import asyncio

from solver.exchange.limiter import RateLimiter
from solver.exchange.wire import RateLimit

LIMITS = [RateLimit("REQUEST_WEIGHT", 60, 100), RateLimit("ORDERS", 10, 10),
          RateLimit("ORDERS", 86_400, 1000)]


class FakeTime:
    def __init__(self) -> None:
        self.now = 20_000 * 86_400_000  # a day boundary, so a boundary of every window
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1000)


def limiter(time: FakeTime) -> RateLimiter:
    return RateLimiter(LIMITS, headroom=1.0, clock=time.clock, sleep=time.sleep)


def test_orders_past_the_window_wait_for_the_next_one() -> None:
    time = FakeTime()
    limits = limiter(time)

    async def burst() -> None:
        for _ in range(25):
            await limits.acquire(1, orders=1)

    asyncio.run(burst())
    assert time.sleeps == [10.0, 10.0]  # 10 per 10 s: the 11th and the 21st wait
    assert limits.waited_ms == 20_000


def test_headers_raise_the_local_count() -> None:
    time = FakeTime()
    limits = limiter(time)
    limits.observe({"X-MBX-USED-WEIGHT-1M": "95", "X-MBX-ORDER-COUNT-10S": "2"})
    asyncio.run(limits.acquire(10))
    assert time.sleeps == [60.0]  # 95 + 10 > 100: wait for the next minute
    weights = [p.used for p in limits.pools if p.kind == "REQUEST_WEIGHT"]
    assert weights == [10]


def test_a_pause_stops_every_request_until_retry_after() -> None:
    time = FakeTime()
    limits = limiter(time)
    limits.pause(7)
    asyncio.run(limits.acquire(1))
    assert time.sleeps == [7.0]


def test_headroom_keeps_a_margin_below_the_exchange_limit() -> None:
    limits = RateLimiter(LIMITS, headroom=0.9)
    assert [p.limit for p in limits.pools] == [90, 9, 900]


def test_a_request_larger_than_the_limit_goes_alone_into_an_empty_window() -> None:
    time = FakeTime()
    limits = limiter(time)
    asyncio.run(limits.acquire(250))  # depth with limit 5000 against a 100 budget
    assert time.sleeps == []
    asyncio.run(limits.acquire(1))
    assert time.sleeps == [60.0]
