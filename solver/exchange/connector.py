"""The one Binance connector: python-binance 1.0.37's ``AsyncClient`` and
``BinanceSocketManager`` behind our own types, the same code for production, testnet and the
local mock (``Endpoints``).

What the library leaves to us is done here: every call waits on the rate limiter and feeds it
the usage headers; 429/418 pause every request for ``Retry-After`` and the call waits and
tries again (a throttled request was not executed); -1021 resyncs the clock once; timeouts,
dropped connections and 5xx are ``Unknown`` (the order may exist), never a reject. The user
stream is supervised: any error frame from python-binance (which silently loses the
subscription when its WebSocket API reconnects) ends the socket, a ``StreamLost`` is yielded
so the caller reconciles, and a fresh subscription is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import structlog
from binance import BinanceSocketManager
from binance.exceptions import BinanceAPIException, BinanceWebsocketUnableToConnect
from binance.ws.constants import WSListenerState

from solver.core.events import AssetOrderRequested
from solver.core.market import MarketRules
from solver.core.money import plain
from solver.exchange import metrics, wire
from solver.exchange.endpoints import ApiKey, Endpoints, client_class
from solver.exchange.limiter import RateLimiter
from solver.exchange.tracker import OrderReport, TradeReport
from solver.plumbing.clock import now_ms

log = structlog.get_logger(__name__)

RECV_WINDOW_MS = 5000


@dataclass(frozen=True, slots=True)
class Placed:
    report: OrderReport
    trades: tuple[TradeReport, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A definite answer: the exchange did not act (no order, or no cancel)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """No definite answer: the request may or may not have been executed."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotFound:
    message: str


@dataclass(frozen=True, slots=True)
class StreamLost:
    """The user stream broke; events may have been missed and must be reconciled."""

    reason: str


UserEvent = tuple[OrderReport, TradeReport | None] | StreamLost

TRANSPORT_ERRORS = (asyncio.TimeoutError, aiohttp.ClientError, BinanceWebsocketUnableToConnect,
                   ConnectionError)
_UNKNOWN_CODES = {-1006, -1007}
_NOT_FOUND_CODES = {-2013, -2011}


class ExchangeError(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status

    @property
    def outcome_unknown(self) -> bool:
        """5xx, -1006/-1007 and "Duplicate order sent." (perhaps our own order whose answer
        was lost) say nothing definite about execution."""
        return (self.status >= 500 or self.code in _UNKNOWN_CODES
                or "Duplicate order" in self.message)


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    free: dict[str, Decimal]
    taker_fee_rate: Decimal


class BinanceConnector:
    def __init__(self, endpoints: Endpoints, api_key: ApiKey,
                 limiter: RateLimiter | None = None, request_timeout_s: float = 10) -> None:
        self.endpoints = endpoints
        self._api_key = api_key
        self.limiter = limiter or RateLimiter()
        self.request_timeout_s = request_timeout_s
        self.rules: dict[str, MarketRules] = {}
        self._client: Any = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, sync the clock, read symbol rules and rate limits."""
        self._client = await client_class(self.endpoints).create(
            self._api_key.key, self._api_key.secret)
        self._client.REQUEST_RECVWINDOW = RECV_WINDOW_MS
        self._client.REQUEST_TIMEOUT = self.request_timeout_s
        info = await self._call(20, 0, lambda c: c.get_exchange_info())
        self.limiter.configure(wire.rate_limits(info))
        self.rules = wire.symbol_rules(info)
        log.info("exchange connected", endpoints=self.endpoints.name, symbols=len(self.rules))

    async def close(self) -> None:
        if self._client is not None:
            await stop_reading(getattr(self._client, "ws_api", None))
            await self._client.close_connection()
            self._client = None

    async def resync_clock(self) -> None:
        answer = await self._call(1, 0, lambda c: c.get_server_time())
        self._client.timestamp_offset = answer["serverTime"] - now_ms()

    # --- orders -----------------------------------------------------------------------------

    async def place(self, request: AssetOrderRequested) -> Placed | Rejected | Unknown:
        """Send one LIMIT IOC order with our client order id; never re-sent by this call."""
        params = {"symbol": request.symbol, "side": request.side.value.upper(),
                  "type": "LIMIT", "timeInForce": "IOC", "quantity": plain(request.quantity),
                  "price": plain(request.price), "newClientOrderId": request.client_order_id,
                  "newOrderRespType": "FULL"}
        try:
            body = await self._call(1, 1, lambda c: c.create_order(**params))
        except ExchangeError as error:
            if error.outcome_unknown:
                return Unknown(f"{error.code} {error.message}")
            return Rejected(error.code, error.message)
        except TRANSPORT_ERRORS as error:
            return Unknown(type(error).__name__)
        return Placed(*wire.order_answer(body))

    async def cancel(self, symbol: str, client_order_id: str
                     ) -> Placed | NotFound | Rejected | Unknown:
        try:
            body = await self._call(1, 0, lambda c: c.cancel_order(
                symbol=symbol, origClientOrderId=client_order_id))
        except ExchangeError as error:
            if error.code in _NOT_FOUND_CODES:
                return NotFound(error.message)
            return Rejected(error.code, error.message)
        except TRANSPORT_ERRORS as error:
            return Unknown(type(error).__name__)
        return Placed(*wire.order_answer(body))

    async def query(self, symbol: str, client_order_id: str) -> OrderReport | NotFound | Unknown:
        try:
            body = await self._call(4, 0, lambda c: c.get_order(
                symbol=symbol, origClientOrderId=client_order_id))
        except ExchangeError as error:
            if error.code in _NOT_FOUND_CODES:
                return NotFound(error.message)
            return Unknown(f"{error.code} {error.message}")
        except TRANSPORT_ERRORS as error:
            return Unknown(type(error).__name__)
        return wire.order_answer(body)[0]

    async def account(self) -> ExchangeAccount:
        """The account's free balances and taker fee rate (a signed read: it proves the
        keys)."""
        answer = await self._call(20, 0, lambda c: c.get_account())
        return ExchangeAccount(wire.free_balances(answer), wire.taker_fee_rate(answer))

    async def open_orders(self, symbol: str) -> list[OrderReport]:
        rows = await self._call(6, 0, lambda c: c.get_open_orders(symbol=symbol))
        return [wire.order_answer(row)[0] for row in rows]

    async def trades(self, symbol: str, exchange_order_id: int) -> list[TradeReport]:
        rows = await self._call(5, 0, lambda c: c.get_my_trades(symbol=symbol,
                                                                 orderId=exchange_order_id))
        return [wire.trade_row(row) for row in rows]

    async def depth(self, symbol: str, limit: int = 1000) -> wire.DepthSnapshot:
        body = await self._call(wire.depth_weight(limit), 0,
                                lambda c: c.get_order_book(symbol=symbol, limit=limit))
        return wire.depth_snapshot(symbol, body)

    # --- streams ----------------------------------------------------------------------------

    async def user_events(self) -> AsyncIterator[UserEvent]:
        """Execution reports for ever; a ``StreamLost`` after every break, then a fresh
        subscription (reconcile on ``StreamLost``: what happened in the gap is not replayed)."""
        while True:
            try:
                # a fresh manager each time: it caches sockets, and the old one's queue may
                # still hold the error frames of the break
                socket = self._socket_manager().user_socket()
                async with socket:
                    async for event in _receive(socket):
                        yield event
            except Exception as error:  # whatever broke it, the answer is to subscribe again
                log.warning("user stream failed", error=repr(error))
                yield StreamLost(f"user stream failed: {type(error).__name__}")
                await asyncio.sleep(0.2)
                continue
            yield StreamLost("user stream ended")
            await asyncio.sleep(0.05)

    async def depth_diffs(self, symbols: list[str]) -> AsyncIterator[wire.DepthDiff]:
        """Diff events of ``<symbol>@depth@100ms`` for all ``symbols`` on one socket, for
        ever: a socket python-binance gave up on is opened again (the books see the gap in
        the update ids and resync)."""
        streams = [f"{s.lower()}@depth@100ms" for s in symbols]
        while True:
            try:
                socket = self._socket_manager().multiplex_socket(streams)
                socket.TIMEOUT = 1  # python-binance closes a socket after a receive times out
                async with socket:
                    while True:
                        message = await socket.recv()
                        data = message.get("data", message)
                        if data.get("e") == "depthUpdate":
                            yield wire.depth_diff(data)
                        elif message.get("e") == "error":
                            log.warning("depth stream error", error=message.get("m"))
            except Exception as error:
                log.warning("depth stream failed; reopening", error=repr(error))
                await asyncio.sleep(1)

    def _socket_manager(self) -> Any:
        sockets = BinanceSocketManager(self._client, max_queue_size=10_000)
        sockets.STREAM_URL = self.endpoints.streams
        return sockets

    # --- the call path ----------------------------------------------------------------------

    async def _call(self, weight: int, orders: int,
                    send: Callable[[Any], Awaitable[Any]]) -> Any:
        """Wait for the limiter, send, learn from the headers; wait and resend only what the
        exchange refused unexecuted (429/418, -1021 once)."""
        clock_retried = False
        while True:
            await self.limiter.acquire(weight, orders)
            try:
                result = await send(self._client)
            except BinanceAPIException as error:
                self._observe(getattr(error, "response", None))
                if error.status_code in (418, 429):
                    retry_after = _retry_after(error)
                    self.limiter.pause(retry_after)
                    metrics.RATE_LIMITED.labels(str(error.status_code)).inc()
                    log.warning("rate limited", status=error.status_code, code=error.code,
                                retry_after_s=retry_after)
                    continue
                if error.code == -1021 and not clock_retried:
                    clock_retried = True
                    with contextlib.suppress(BinanceAPIException, *TRANSPORT_ERRORS):
                        await self.resync_clock()
                    continue
                raise ExchangeError(error.code or 0, error.message or f"HTTP {error.status_code}",
                                    error.status_code) from None
            self._observe(getattr(self._client, "response", None))
            return result

    def _observe(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if isinstance(headers, Mapping):
            self.limiter.observe(headers)


async def stop_reading(socket: Any) -> None:
    """Let a python-binance socket close at once: its read loop otherwise only notices the
    exit after its 10 s receive timeout, or starts reconnecting."""
    if socket is None:
        return
    socket.ws_state = WSListenerState.EXITING
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        if frame is not None and frame.f_code.co_name == "_read_loop" \
                and frame.f_locals.get("self") is socket:
            task.cancel()
            await asyncio.wait([task], timeout=1)


async def _receive(socket: Any) -> AsyncIterator[UserEvent]:
    while True:
        event = await socket.recv()
        kind = event.get("e")
        if kind == "error" or kind == "eventStreamTerminated":
            socket._subscription_id = None  # its connection is gone: skip the unsubscribe
            log.warning("user stream lost", reason=event.get("type") or kind)
            return
        if kind == "executionReport":
            yield wire.execution_report(event)


def _retry_after(error: BinanceAPIException) -> int:
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    value = headers.get("Retry-After", "")
    return int(value) if str(value).isdigit() else 1
