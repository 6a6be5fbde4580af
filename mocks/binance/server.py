"""The mock Binance server: Binance Spot's REST API, WebSocket API and market streams over
aiohttp, on loopback, in front of a ``MockExchange``.

REST ``/api/v3/*`` and the WebSocket API ``/ws-api/v3`` share one table of operations, so both
check the same signatures, limits and parameters and answer with the same bodies. Depth diffs
go to ``/ws/<symbol>@depth[@100ms]`` and ``/stream?streams=a/b`` as the engine makes them (one
event per change rather than one per 100 ms, with the same U/u continuity). ``/mock/*`` lets a
test or an operator step the market, switch faults and drop WebSocket connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from aiohttp import WSMsgType, web

from mocks.binance.exchange import Json, MockExchange, Order, order_ref, required
from mocks.binance.faults import Faults
from mocks.binance.limits import RateLimits
from mocks.binance.messages import Rejection, wire
from solver.exchange.wire import depth_weight
from solver.plumbing.clock import now_ms

log = structlog.get_logger(__name__)
MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Operation:
    weight: Callable[[dict[str, str]], int]
    signed: bool
    run: Callable[[dict[str, str], int], Any]
    orders: int = 0


@dataclass(eq=False, slots=True)
class Connection:
    """One WebSocket client: its outgoing frames keep their order through one queue."""

    socket: web.WebSocketResponse
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    symbols: frozenset[str] = frozenset()
    combined: bool = False
    subscriptions: set[int] = field(default_factory=set)

    async def write(self) -> None:
        while True:
            frame = await self.outbox.get()
            if self.socket.closed:
                return
            await self.socket.send_str(frame)


class LostResponse(Exception):
    """The order was executed; its answer is dropped on purpose."""


REST_ROUTES = {
    ("GET", "ping"): "ping", ("GET", "time"): "time", ("GET", "exchangeInfo"): "exchangeInfo",
    ("GET", "depth"): "depth", ("POST", "order"): "order.place",
    ("GET", "order"): "order.status", ("DELETE", "order"): "order.cancel",
    ("GET", "openOrders"): "openOrders.status", ("GET", "myTrades"): "myTrades",
    ("GET", "account"): "account.status", ("GET", "rateLimit/order"): "account.rateLimits.orders",
}


class MockBinance:
    def __init__(self, exchange: MockExchange, credentials: Credentials,
                 limits: RateLimits | None = None, faults: Faults | None = None, seed: int = 1,
                 step_ms: int = 100, clock: Callable[[], int] | None = None) -> None:
        self.exchange = exchange
        self.credentials = credentials
        self.limits = limits or RateLimits()
        self.faults = faults or Faults()
        self.step_ms = step_ms
        self._clock = clock or now_ms
        self._random = random.Random(seed)
        self._streams: set[Connection] = set()
        self._api: set[Connection] = set()
        self._next_subscription = 0
        self._held: list[Json] = []
        self._placed_at: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self._stepper: asyncio.Task[None] | None = None
        self.port = 0
        self.operations = self._operations()
        exchange.user_listeners.append(self._on_user_event)
        exchange.depth_listeners.append(self._on_depth)

    # --- lifecycle --------------------------------------------------------------------------

    def now(self) -> int:
        return self._clock() + self.faults.clock_skew_ms

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v3/{path:.+}", self._rest)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/ws/{streams}", self._stream)
        app.router.add_get("/stream", self._stream)
        app.router.add_post("/mock/faults", self._set_faults)
        app.router.add_post("/mock/step", self._step)
        app.router.add_post("/mock/drop-ws", self._drop)
        app.router.add_get("/mock/trades", self._trades)
        return app

    async def start(self, port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        if self.step_ms > 0:
            self._stepper = asyncio.create_task(self._walk())
        log.info("mock binance listening", url=self.url, symbols=sorted(self.exchange.books))
        return self.port

    async def stop(self) -> None:
        if self._stepper is not None:
            self._stepper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stepper
        for connection in list(self._streams | self._api):
            await connection.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop_websockets(self) -> None:
        """Close every WebSocket API connection, as Binance does at maintenance."""
        for connection in list(self._api):
            await connection.socket.close()

    async def _walk(self) -> None:
        while True:
            await asyncio.sleep(self.step_ms / 1000)
            self.exchange.step(self.now())

    # --- REST -------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        name = REST_ROUTES.get((request.method, request.match_info["path"]))
        if name is None:
            return _error(Rejection(404, -1000, "Unknown endpoint."), {})
        body = await request.text() if request.method in ("POST", "PUT", "DELETE") else ""
        params = dict(parse_qsl(body))
        params.update(parse_qsl(request.query_string))
        headers: dict[str, str] = {}
        try:
            await self._delay()
            operation = self.operations[name]
            headers = self.limits.charge(operation.weight(params), operation.orders, self.now())
            if operation.signed:
                self._check_rest_signature(request, body, params)
            result = self._run(name, operation, params)
        except LostResponse:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        except Rejection as rejection:
            return _error(rejection, headers or self.limits.headers())
        finally:
            self._release_held()
        return web.json_response(result, headers=headers, dumps=_dumps)

    def _check_rest_signature(self, request: web.Request, body: str,
                              params: dict[str, str]) -> None:
        self._check_key(request.headers.get("X-MBX-APIKEY"))
        self._check_time(params)
        unsigned = _without_signature(request.query_string) + _without_signature(body)
        self._check_signature(unsigned, params.get("signature"))

    def _check_key(self, api_key: str | None) -> None:
        if api_key != self.credentials.api_key:
            raise Rejection(401, -2015, "Invalid API-key, IP, or permissions for action.")

    def _check_time(self, params: dict[str, str]) -> None:
        stamp, window = params.get("timestamp", ""), params.get("recvWindow", "")
        if not stamp.isdigit():
            raise Rejection(400, -1102, "Mandatory parameter 'timestamp' was not sent, was "
                                        "empty/null, or malformed.")
        recv_window = int(window) if window.isdigit() else DEFAULT_RECV_WINDOW
        if recv_window > MAX_RECV_WINDOW:
            raise Rejection(400, -1131, "recvWindow must be less than 60000")
        now = self.now()
        if int(stamp) >= now + 1000:
            raise Rejection(400, -1021, "Timestamp for this request was 1000ms ahead of the "
                                        "server's time.")
        if now - int(stamp) > recv_window:
            raise Rejection(400, -1021, "Timestamp for this request is outside of the "
                                        "recvWindow.")

    def _check_signature(self, payload: str, signature: str | None) -> None:
        if not signature:
            raise Rejection(400, -1102, "Mandatory parameter 'signature' was not sent, was "
                                        "empty/null, or malformed.")
        expected = hmac.new(self.credentials.secret.encode(), payload.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise Rejection(400, -1022, "Signature for this request is not valid.")

    def _run(self, name: str, operation: Operation, params: dict[str, str]) -> Any:
        if name == "order.place" and self._random.random() < self.faults.server_error:
            if self._random.random() < 0.5:
                operation.run(params, self.now())
            raise Rejection(503, -1007, "Timeout waiting for response from backend server. "
                                        "Send status unknown; execution status unknown.")
        result = operation.run(params, self.now())
        if name == "order.place" and self._random.random() < self.faults.lose_response:
            raise LostResponse()
        return result

    async def _delay(self) -> None:
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)

    # --- operations -------------------------------------------------------------------------

    def _operations(self) -> dict[str, Operation]:
        def flat(weight: int) -> Callable[[dict[str, str]], int]:
            return lambda params: weight

        return {
            "ping": Operation(flat(1), False, lambda p, now: {}),
            "time": Operation(flat(1), False, lambda p, now: {"serverTime": now}),
            "exchangeInfo": Operation(flat(20), False, self._exchange_info),
            "depth": Operation(_depth_weight, False, self._depth),
            "order.place": Operation(flat(1), True, self._place, orders=1),
            "order.status": Operation(flat(4), True, self._order_status),
            "order.cancel": Operation(flat(1), True, self._cancel),
            "openOrders.status": Operation(
                lambda p: 6 if p.get("symbol") else 80, True,
                lambda p, now: [o.query() for o in self.exchange.open_orders(p.get("symbol"))]),
            "myTrades": Operation(lambda p: 5 if p.get("orderId") else 20, True, self._my_trades),
            "account.status": Operation(flat(20), True, self._account),
            "account.rateLimits.orders": Operation(
                flat(40), True, lambda p, now: [u for u in self.limits.usage()
                                                if u["rateLimitType"] == "ORDERS"]),
        }

    def _exchange_info(self, params: dict[str, str], now: int) -> Json:
        wanted = params.get("symbol")
        if wanted:
            self.exchange.book(wanted)
        return {"timezone": "UTC", "serverTime": now, "rateLimits": self.limits.exchange_info(),
                "exchangeFilters": [],
                "symbols": [_symbol_info(book.spec) for symbol, book in
                            sorted(self.exchange.books.items()) if wanted in (None, symbol)]}

    def _depth(self, params: dict[str, str], now: int) -> Json:
        book = self.exchange.book(required(params, "symbol"))
        limit = params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 5000:
            raise Rejection(400, -1100, "Illegal characters found in parameter 'limit'; legal "
                                        "range is '1 to 5000'.")
        return book.depth(int(limit))

    def _place(self, params: dict[str, str], now: int) -> Json:
        order, trades = self.exchange.place(params, now)
        self._placed_at[order.order_id] = now
        kind = params.get("newOrderRespType", "FULL")
        if kind == "ACK":
            return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                    "clientOrderId": order.client_order_id, "transactTime": order.time}
        body = order.result()
        if kind == "FULL":
            body["fills"] = [t.fill() for t in trades]
        return body

    def _found(self, params: dict[str, str], now: int) -> Order:
        order_id, client_id = order_ref(params)
        order = self.exchange.find(self.exchange.book(required(params, "symbol")).symbol,
                                   order_id, client_id)
        if order is None or now - self._placed_at.get(order.order_id, 0) < self.faults.not_found_ms:
            raise Rejection(400, -2013, "Order does not exist.")
        return order

    def _order_status(self, params: dict[str, str], now: int) -> Json:
        return self._found(params, now).query()

    def _cancel(self, params: dict[str, str], now: int) -> Json:
        order = self.exchange.cancel(params, now)
        body = order.result()
        del body["transactTime"]
        body.update(origClientOrderId=order.client_order_id,
                    clientOrderId=params.get("newClientOrderId") or f"cancel-{order.order_id}",
                    transactTime=now)
        return body

    def _my_trades(self, params: dict[str, str], now: int) -> list[Json]:
        symbol = self.exchange.book(required(params, "symbol")).symbol
        order_id, from_id = params.get("orderId"), params.get("fromId")
        limit = params.get("limit", "500")
        return [t.row() for t in self.exchange.trades_of(
            symbol, int(order_id) if order_id else None, int(from_id) if from_id else None,
            min(int(limit) if limit.isdigit() else 500, 1000))]

    def _account(self, params: dict[str, str], now: int) -> Json:
        rate = self.exchange.highest_fee_rate()  # the account pays it on every market
        bps = int((rate * 10_000).to_integral_value(ROUND_CEILING))
        return {"makerCommission": bps, "takerCommission": bps, "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": wire(rate), "taker": wire(rate), "buyer": "0",
                                    "seller": "0"},
                "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "brokered": False, "requireSelfTradePrevention": False,
                "preventSor": False, "updateTime": now, "accountType": "SPOT",
                "balances": self.exchange.balances(), "permissions": ["SPOT"], "uid": 1}

    # --- WebSocket API ----------------------------------------------------------------------

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        connection = await self._open(request)
        self._api.add(connection)
        writer = asyncio.create_task(connection.write())
        try:
            async for message in connection.socket:
                if message.type == WSMsgType.TEXT:
                    await self._ws_request(connection, message.data)
        finally:
            self._api.discard(connection)
            writer.cancel()
        return connection.socket

    async def _ws_request(self, connection: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            request_id, method = frame.get("id"), frame["method"]
            params = {k: str(v) for k, v in frame.get("params", {}).items()}
        except (ValueError, KeyError, AttributeError, TypeError):
            self._answer(connection, None, Rejection(400, -1000, "Malformed request."))
            return
        try:
            await self._delay()
            result = self._ws_call(connection, method, params)
        except LostResponse:
            return
        except Rejection as rejection:
            self._answer(connection, request_id, rejection)
            return
        finally:
            self._release_held()
        self._answer(connection, request_id, result)

    def _ws_call(self, connection: Connection, method: str, params: dict[str, str]) -> Any:
        if method == "userDataStream.subscribe.signature":
            self.limits.charge(2, 0, self.now())
            self._check_ws_signature(params)
            self._next_subscription += 1
            connection.subscriptions.add(self._next_subscription)
            return {"subscriptionId": self._next_subscription}
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            for sub in [s for s in connection.subscriptions if wanted in (None, str(s))]:
                connection.subscriptions.discard(sub)
                connection.outbox.put_nowait(_dumps({"subscriptionId": sub, "event": {
                    "e": "eventStreamTerminated", "E": self.now()}}))
            return {}
        operation = self.operations.get(method)
        if operation is None:
            raise Rejection(400, -1000, f"Unknown method '{method}'.")
        self.limits.charge(operation.weight(params), operation.orders, self.now())
        if operation.signed:
            self._check_ws_signature(params)
        return self._run(method, operation, params)

    def _check_ws_signature(self, params: dict[str, str]) -> None:
        self._check_key(params.get("apiKey"))
        self._check_time(params)
        self._check_signature(urlencode(sorted((k, v) for k, v in params.items()
                                               if k != "signature")), params.get("signature"))

    def _answer(self, connection: Connection, request_id: Any, result: Any) -> None:
        frame: Json = {"id": request_id}
        if isinstance(result, Rejection):
            error: Json = result.body()
            if result.retry_after is not None:
                error["data"] = {"serverTime": self.now(), "retryAfter":
                                 self.now() + result.retry_after * 1000}
            frame.update(status=result.status, error=error)
        else:
            frame.update(status=200, result=result)
        frame["rateLimits"] = self.limits.usage()
        connection.outbox.put_nowait(_dumps(frame))

    # --- user events ------------------------------------------------------------------------

    def _on_user_event(self, event: Json) -> None:
        copies = 2 if self._random.random() < self.faults.duplicate_reports else 1
        for _ in range(copies):
            if self.faults.reorder_reports:
                self._held.append(event)
            elif self.faults.report_delay_ms:
                asyncio.get_running_loop().call_later(
                    self.faults.report_delay_ms / 1000, self._send_user, event)
            else:
                self._send_user(event)

    def _release_held(self) -> None:
        held, self._held = self._held, []
        if held:
            delay = max(self.faults.report_delay_ms, 1) / 1000
            for event in reversed(held):
                asyncio.get_running_loop().call_later(delay, self._send_user, event)

    def _send_user(self, event: Json) -> None:
        for connection in self._api:
            for sub in connection.subscriptions:
                connection.outbox.put_nowait(_dumps({"subscriptionId": sub, "event": event}))

    # --- market streams ---------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        names = request.match_info.get("streams") or request.query.get("streams", "")
        symbols = [_depth_symbol(name) for name in names.split("/") if name]
        if not symbols or None in symbols or any(s not in self.exchange.books for s in symbols):
            return _error(Rejection(400, -1121, "Invalid symbol."), {})
        connection = await self._open(request)
        connection.symbols = frozenset(s for s in symbols if s)
        connection.combined = request.path == "/stream"
        self._streams.add(connection)
        writer = asyncio.create_task(connection.write())
        try:
            async for _ in connection.socket:
                pass
        finally:
            self._streams.discard(connection)
            writer.cancel()
        return connection.socket

    def _on_depth(self, event: Json) -> None:
        if self.faults.stale_book or self._random.random() < self.faults.depth_gap:
            return
        for connection in self._streams:
            if event["s"] in connection.symbols:
                stream = f"{event['s'].lower()}@depth"
                payload = {"stream": stream, "data": event} if connection.combined else event
                connection.outbox.put_nowait(_dumps(payload))

    async def _open(self, request: web.Request) -> Connection:
        socket = web.WebSocketResponse(heartbeat=20)
        await socket.prepare(request)
        return Connection(socket)

    # --- operator endpoints -----------------------------------------------------------------

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults.update(await request.json())
        except (ValueError, AttributeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({})

    async def _step(self, request: web.Request) -> web.Response:
        self.exchange.step(self.now())
        return web.json_response({})

    async def _drop(self, request: web.Request) -> web.Response:
        await self.drop_websockets()
        return web.json_response({})

    async def _trades(self, request: web.Request) -> web.Response:
        return web.json_response([t.row() for t in self.exchange.trades], dumps=_dumps)


def _error(rejection: Rejection, headers: dict[str, str]) -> web.Response:
    headers = dict(headers)
    if rejection.retry_after is not None:
        headers["Retry-After"] = str(rejection.retry_after)
    return web.json_response(rejection.body(), status=rejection.status, headers=headers)


def _depth_weight(params: dict[str, str]) -> int:
    return depth_weight(int(params["limit"]) if params.get("limit", "").isdigit() else 100)


def _depth_symbol(name: str) -> str | None:
    symbol, _, kind = name.partition("@")
    return symbol.upper() if kind in ("depth", "depth@100ms", "depth@1000ms") else None


def _without_signature(text: str) -> str:
    return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _symbol_info(spec: Any) -> Json:
    rules = spec.rules
    lot = {"minQty": wire(rules.min_qty), "maxQty": wire(rules.max_qty or Decimal(9_000_000)),
           "stepSize": wire(rules.step_size)}
    return {
        "symbol": rules.symbol, "status": "TRADING", "baseAsset": rules.asset,
        "baseAssetPrecision": 8, "quoteAsset": rules.quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
        "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "amendAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": wire(rules.tick_size),
             "maxPrice": wire(Decimal(1_000_000)), "tickSize": wire(rules.tick_size)},
            {"filterType": "LOT_SIZE", **lot},
            {"filterType": "MARKET_LOT_SIZE", **lot},
            {"filterType": "NOTIONAL", "minNotional": wire(rules.min_notional),
             "applyMinToMarket": True, "maxNotional": wire(Decimal(9_000_000)),
             "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER",
                                            "EXPIRE_BOTH"],
    }
