"""Binance's request limits, counted in fixed windows as Binance counts them.

REQUEST_WEIGHT is per IP per minute, ORDERS per account per 10 seconds and per day. Going
over answers 429 with ``Retry-After``; requests sent while throttled are violations, and
``ban_after`` of them escalate to 418 (a ban) for ``ban_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mocks.binance.messages import Rejection

IP = "127.0.0.1"


@dataclass(slots=True)
class Window:
    limit: int
    seconds: int
    start: int = 0
    used: int = 0

    def roll(self, now_ms: int) -> None:
        start = now_ms // (self.seconds * 1000) * self.seconds * 1000
        if start != self.start:
            self.start, self.used = start, 0

    def retry_after(self, now_ms: int) -> int:
        return max(1, -(-(self.start + self.seconds * 1000 - now_ms) // 1000))


@dataclass(slots=True)
class RateLimits:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_after: int = 3
    ban_seconds: int = 120
    weight: Window = field(init=False)
    orders: Window = field(init=False)
    orders_day: Window = field(init=False)
    throttled_until: int = 0
    banned_until: int = 0
    violations: int = 0

    def __post_init__(self) -> None:
        self.weight = Window(self.weight_per_minute, 60)
        self.orders = Window(self.orders_per_10s, 10)
        self.orders_day = Window(self.orders_per_day, 86_400)

    def exchange_info(self) -> list[dict[str, object]]:
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": self.orders_per_day},
        ]

    def charge(self, weight: int, orders: int, now: int) -> dict[str, str]:
        """Count a request; return the usage headers or raise the 429/418 answer."""
        for window in (self.weight, self.orders, self.orders_day):
            window.roll(now)
        if now < self.banned_until:
            raise self._ban(now)
        if now >= self.throttled_until:
            self.violations = 0
        else:
            self.violations += 1
            if self.violations >= self.ban_after:
                self.banned_until = now + self.ban_seconds * 1000
                raise self._ban(now)
        self.weight.used += weight
        if self.weight.used > self.weight.limit:
            raise self._throttle(now, self.weight, -1003,
                                 f"Too many requests; current limit of IP({IP}) is "
                                 f"{self.weight.limit} requests per minute. Please use WebSocket "
                                 "Streams for live updates to avoid polling the API.")
        if orders:
            for window, unit in ((self.orders, "10 SECOND"), (self.orders_day, "1 DAY")):
                window.used += orders
                if window.used > window.limit:
                    raise self._throttle(now, window, -1015,
                                         f"Too many new orders; current limit is {window.limit} "
                                         f"orders per {unit}.")
        return self.headers(orders)

    def headers(self, orders: int = 0) -> dict[str, str]:
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.weight.used)}
        if orders:
            headers["X-MBX-ORDER-COUNT-10S"] = str(self.orders.used)
            headers["X-MBX-ORDER-COUNT-1D"] = str(self.orders_day.used)
        return headers

    def usage(self) -> list[dict[str, object]]:
        """The WebSocket API's ``rateLimits`` array."""
        return [dict(limit, count=window.used) for limit, window in
                zip(self.exchange_info(), (self.weight, self.orders, self.orders_day), strict=True)]

    def _throttle(self, now: int, window: Window, code: int, msg: str) -> Rejection:
        retry = window.retry_after(now)
        self.throttled_until = max(self.throttled_until, now + retry * 1000)
        return Rejection(429, code, msg, retry_after=retry)

    def _ban(self, now: int) -> Rejection:
        return Rejection(418, -1003, f"Way too many requests; IP({IP}) banned until "
                                     f"{self.banned_until}. Please use WebSocket Streams for live "
                                     "updates to avoid bans.",
                         retry_after=max(1, -(-(self.banned_until - now) // 1000)))
