"""Stock python-binance 1.0.37 against the mock Binance over loopback: every endpoint, every
filter failure, signatures, timestamps and rate limits, the WebSocket API and streams."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from binance import BinanceSocketManager
from binance.exceptions import BinanceAPIException

from mocks.binance.faults import Faults
from mocks.binance.limits import RateLimits
from mocks.binance.local import MARKETS, mock_server, running
from mocks.binance.main import cli as mock_binance
from solver.exchange.endpoints import client_class, local
from tests.support.exchange import binance_client, run


async def rejected(call: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        await call
    return info.value


def test_the_client_is_pointed_at_the_configured_endpoints() -> None:
    client = client_class(local(18080))(None, None)
    assert client._create_api_uri("order").startswith("http://127.0.0.1:18080/api/v3/")
    assert client.WS_API_URL == "ws://127.0.0.1:18080/ws-api/v3"


def test_public_endpoints() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            assert await client.ping() == {}
            assert abs((await client.get_server_time())["serverTime"] - server.now()) < 5000
            info = await client.get_exchange_info()
            kinds = {(r["rateLimitType"], r["interval"]) for r in info["rateLimits"]}
            assert kinds == {("REQUEST_WEIGHT", "MINUTE"), ("ORDERS", "SECOND"), ("ORDERS", "DAY")}
            a1 = next(s for s in info["symbols"] if s["symbol"] == "A1USDC")
            filters = {f["filterType"]: f for f in a1["filters"]}
            assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
            assert filters["LOT_SIZE"]["stepSize"] == "0.00100000"
            assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
            assert "MARKET_LOT_SIZE" in filters
            book = await client.get_order_book(symbol="A1USDC", limit=2)
            assert book["asks"] == [["100.00000000", "50.00000000"],
                                    ["100.50000000", "40.00000000"]]
            assert book["bids"][0] == ["99.90000000", "50.00000000"]
            # create() pings and reads the time too
            assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == str(2 + 1 + 1 + 20 + 5)
    run(scenario())


def test_limit_ioc_full_answer_queries_and_trades() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            answer = await client.create_order(
                symbol="A1USDC", side="BUY", type="LIMIT", timeInForce="IOC", quantity="60",
                price="100.50", newClientOrderId="idx-1")
            assert answer["status"] == "FILLED" and answer["executedQty"] == "60.00000000"
            assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"])
                    for f in answer["fills"]] == [
                ("100.00000000", "50.00000000", "0.05000000", "A1"),
                ("100.50000000", "10.00000000", "0.01000000", "A1")]
            assert answer["cummulativeQuoteQty"] == "6005.00000000"
            headers = client.response.headers
            assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
            by_client = await client.get_order(symbol="A1USDC", origClientOrderId="idx-1")
            by_id = await client.get_order(symbol="A1USDC", orderId=answer["orderId"])
            assert by_client == by_id and by_id["status"] == "FILLED"
            trades = await client.get_my_trades(symbol="A1USDC", orderId=answer["orderId"])
            assert [t["id"] for t in trades] == [f["tradeId"] for f in answer["fills"]]
            balances = {b["asset"]: b for b in (await client.get_account())["balances"]}
            assert D(balances["A1"]["free"]) == D("59.94")
            assert D(balances["USDC"]["free"]) == D(1_000_000) - D(6005)
    run(scenario())


def test_ioc_remainder_expires_and_response_types() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            answer = await client.create_order(
                symbol="A2USDC", side="BUY", type="LIMIT", timeInForce="IOC", quantity="10",
                price="201.00", newClientOrderId="idx-2", newOrderRespType="RESULT")
            assert (answer["status"], answer["executedQty"]) == ("EXPIRED", "7.00000000")
            assert answer["expiryReason"] == "UNFILLED_IOC_QUANTITY_EXPIRED"
            assert "fills" not in answer
            ack = await client.create_order(
                symbol="A2USDC", side="BUY", type="LIMIT", timeInForce="IOC", quantity="1",
                price="199.00", newClientOrderId="idx-3", newOrderRespType="ACK")
            assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId",
                                "transactTime"}
            fok = await client.create_order(
                symbol="A2USDC", side="BUY", type="LIMIT", timeInForce="FOK", quantity="100",
                price="205.00", newClientOrderId="idx-4")
            assert (fok["status"], fok["executedQty"]) == ("EXPIRED", "0.00000000")
            assert fok["fills"] == []
            assert fok["expiryReason"] == "UNFILLED_FOK_ORDER_EXPIRED"
    run(scenario())


def test_market_orders_by_quantity_and_by_quote_amount() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            sell = await client.create_order(symbol="A1USDC", side="BUY", type="MARKET",
                                             quantity="1", newClientOrderId="m-1")
            assert sell["status"] == "FILLED" and sell["fills"][0]["price"] == "100.00000000"
            quote = await client.create_order(symbol="A1USDC", side="BUY", type="MARKET",
                                              quoteOrderQty="1000.05", newClientOrderId="m-2")
            # 1000.05 at 100.00 buys 10.0005, stepped down to 10.000
            assert (quote["status"], quote["executedQty"]) == ("FILLED", "10.00000000")
            assert quote["origQuoteOrderQty"] == "1000.05000000"
            assert quote["cummulativeQuoteQty"] == "1000.00000000"
            everything = await client.create_order(symbol="A2USDC", side="BUY", type="MARKET",
                                                   quantity="20", newClientOrderId="m-3")
            assert (everything["status"], everything["executedQty"]) == ("EXPIRED", "18.00000000")
            assert everything["expiryReason"] == "INSUFFICIENT_LIQUIDITY"
    run(scenario())


def test_resting_order_is_canceled_or_filled_by_the_market_maker() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            rest = await client.create_order(symbol="A1USDC", side="BUY", type="LIMIT",
                                             timeInForce="GTC", quantity="2", price="99.00",
                                             newClientOrderId="g-1")
            assert rest["status"] == "NEW"
            assert [o["clientOrderId"] for o in await client.get_open_orders(symbol="A1USDC")] \
                == ["g-1"]
            canceled = await client.cancel_order(symbol="A1USDC", origClientOrderId="g-1")
            assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", "g-1")
            assert await client.get_open_orders() == []
            error = await rejected(client.cancel_order(symbol="A1USDC", origClientOrderId="g-1"))
            assert (error.code, error.message) == (-2011, "Unknown order sent.")
            # a resting bid at the best ask's neighbour is filled once the walk crosses it
            await client.create_order(symbol="A1USDC", side="BUY", type="LIMIT",
                                      timeInForce="GTC", quantity="1", price="99.99",
                                      newClientOrderId="g-2")
            for _ in range(200):
                server.exchange.step(server.now())
                if (await client.get_order(symbol="A1USDC", origClientOrderId="g-2"))[
                        "status"] == "FILLED":
                    break
            trades = await client.get_my_trades(symbol="A1USDC")
            assert trades[-1]["isMaker"] is True and trades[-1]["qty"] == "1.00000000"
    run(scenario())


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"price": "100.005", "quantity": "1"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"price": "100.00", "quantity": "1.0005"}, -1013, "Filter failure: LOT_SIZE"),
    ({"price": "100.00", "quantity": "0.0001"}, -1013, "Filter failure: LOT_SIZE"),
    ({"price": "1.00", "quantity": "1"}, -1013, "Filter failure: NOTIONAL"),
    ({"type": "MARKET", "price": None, "timeInForce": None, "quantity": "0.0005"}, -1013,
     "Filter failure: MARKET_LOT_SIZE"),
    ({"type": "MARKET", "price": None, "timeInForce": None, "quantity": None,
      "quoteOrderQty": "1"}, -1013, "Filter failure: NOTIONAL"),
    ({"price": "100.00", "quantity": "100000"}, -2010,
     "Account has insufficient balance for requested action."),
    ({"symbol": "NOPEUSDC"}, -1121, "Invalid symbol."),
    ({"timeInForce": None}, -1102,
     "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    ({"side": "HOLD"}, -1100, "Illegal characters found in parameter 'side'; legal range is "
                              "'BUY|SELL'."),
    ({"price": "1e2"}, -1100, "Illegal characters found in parameter 'price'; legal range is "
                              "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'."),
    ({"quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
    ({"newClientOrderId": "x" * 37}, -1100, "Illegal characters found in parameter "
     "'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'."),
])
def test_order_rejects(params: dict[str, str | None], code: int, message: str) -> None:
    async def scenario() -> None:
        async with running(mock_server(balances={"USDC": D(10_000)})) as server, \
                binance_client(server) as client:
            order = {"symbol": "A1USDC", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
                     "quantity": "1", "price": "100.00", "newClientOrderId": "r-1"}
            order.update(params)
            error = await rejected(client.create_order(
                **{k: v for k, v in order.items() if v is not None}))
            assert (error.status_code, error.code, error.message) == (400, code, message)
            assert server.exchange.orders == {} and server.exchange.trades == []
    run(scenario())


def test_duplicate_open_client_order_id_is_refused() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            order = {"symbol": "A1USDC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "1", "price": "90.00", "newClientOrderId": "dup"}
            await client.create_order(**order)
            error = await rejected(client.create_order(**order))
            assert (error.code, error.message) == (-2010, "Duplicate order sent.")
            missing = await rejected(client.get_order(symbol="A1USDC", origClientOrderId="x"))
            assert (missing.code, missing.message) == (-2013, "Order does not exist.")
    run(scenario())


def test_signature_key_and_timestamp_failures() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server:
            async with binance_client(server, secret="wrong") as client:
                error = await rejected(client.get_account())
                assert (error.code, error.message) == (
                    -1022, "Signature for this request is not valid.")
                assert await client.get_order_book(symbol="A1USDC")  # public: unsigned
            async with binance_client(server) as client:
                client.API_KEY = "someone-else"
                client.session.headers["X-MBX-APIKEY"] = "someone-else"
                error = await rejected(client.get_account())
                assert (error.status_code, error.code) == (401, -2015)
            async with binance_client(server) as client:
                client.timestamp_offset = -20_000  # our clock 20 s behind the server's
                error = await rejected(client.get_account())
                assert (error.code, error.message) == (
                    -1021, "Timestamp for this request is outside of the recvWindow.")
                client.timestamp_offset = 2_000
                error = await rejected(client.get_account())
                assert (error.code, error.message) == (
                    -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    run(scenario())


def test_rate_limits_answer_429_then_ban_with_418() -> None:
    async def scenario() -> None:
        limits = RateLimits(weight_per_minute=30, ban_after=2)
        async with running(mock_server(limits=limits)) as server, \
                binance_client(server) as client:
            await client.get_exchange_info()  # 20 of 30 (plus 2 for create())
            error = await rejected(client.get_exchange_info())
            assert (error.status_code, error.code) == (429, -1003)
            assert error.message.startswith("Too many requests; current limit of IP(127.0.0.1)"
                                            " is 30 requests per minute.")
            retry = int(error.response.headers["Retry-After"])
            assert 1 <= retry <= 60
            await rejected(client.ping())  # a violation while throttled
            ban = await rejected(client.ping())
            assert (ban.status_code, ban.code) == (418, -1003)
            assert "banned until" in ban.message and int(ban.response.headers["Retry-After"]) > 60
    run(scenario())


def test_order_count_limit_answers_1015() -> None:
    async def scenario() -> None:
        async with running(mock_server(limits=RateLimits(orders_per_10s=2))) as server, \
                binance_client(server) as client:
            for n in range(2):
                await client.create_order(symbol="A1USDC", side="BUY", type="LIMIT",
                                          timeInForce="IOC", quantity="0.1", price="99.00",
                                          newClientOrderId=f"c-{n}")
            error = await rejected(client.create_order(
                symbol="A1USDC", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.1",
                price="99.00", newClientOrderId="c-3"))
            assert (error.status_code, error.code) == (429, -1015)
            assert error.message == "Too many new orders; current limit is 2 orders per 10 SECOND."
    run(scenario())


def test_websocket_api_orders_and_user_data_stream() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            sockets = BinanceSocketManager(client)
            async with sockets.user_socket() as user:
                placed = await client.ws_create_order(
                    symbol="A1USDC", side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="1", price="95.00", newClientOrderId="ws-1")
                assert placed["status"] == "NEW"
                status = await client.ws_get_order(symbol="A1USDC", origClientOrderId="ws-1")
                assert status["orderId"] == placed["orderId"]
                canceled = await client.ws_cancel_order(symbol="A1USDC", origClientOrderId="ws-1")
                assert canceled["status"] == "CANCELED"
                events = [await asyncio.wait_for(user.recv(), 5) for _ in range(4)]
            kinds = [(e["e"], e.get("x")) for e in events]
            assert kinds == [("executionReport", "NEW"), ("outboundAccountPosition", None),
                             ("executionReport", "CANCELED"), ("outboundAccountPosition", None)]
            cancel = events[2]
            assert (cancel["C"], cancel["X"]) == ("ws-1", "CANCELED") and cancel["c"] != "ws-1"
            error = await rejected(client.ws_get_order(symbol="A1USDC", origClientOrderId="nope"))
            assert error.code == -2013
    run(scenario())


def test_depth_streams_carry_consecutive_update_ids() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, binance_client(server) as client:
            sockets = BinanceSocketManager(client)
            sockets.STREAM_URL = local(server.port).streams
            single = sockets.depth_socket("A1USDC", interval=100)
            both = sockets.multiplex_socket(["a1usdc@depth@100ms", "a2usdc@depth"])
            single.TIMEOUT = both.TIMEOUT = 0.2  # python-binance waits this long to close
            async with single, both:
                snapshot = await client.get_order_book(symbol="A1USDC")
                for _ in range(10):
                    server.exchange.step(server.now())
                diffs = [await asyncio.wait_for(single.recv(), 5) for _ in range(3)]
                streams = set()
                while len(streams) < 2:
                    combined = await asyncio.wait_for(both.recv(), 5)
                    assert combined["data"]["e"] == "depthUpdate"
                    streams.add(combined["stream"])
        assert diffs[0]["U"] == snapshot["lastUpdateId"] + 1
        assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(diffs))
    run(scenario())


def test_faults_switch_at_run_time() -> None:
    faults = Faults()
    faults.update({"not_found_ms": 60_000, "lose_response": 1})
    assert faults.lose_response == 1.0
    with pytest.raises(ValueError, match="unknown fault"):
        faults.update({"lose_everything": True})
    with pytest.raises(ValueError, match="expected bool"):
        faults.update({"stale_book": "yes"})


def test_mock_binance_command_refuses_bad_input(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    assert mock_binance(["--market", str(MARKETS)]) == 2
    assert "set BINANCE_API_KEY and BINANCE_API_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("BINANCE_API_KEY", "k")
    monkeypatch.setenv("BINANCE_API_SECRET", "s")
    assert mock_binance(["--market", str(tmp_path / "none.toml")]) == 2
    assert "No such file" in capsys.readouterr().err
    faults = tmp_path / "faults.toml"
    faults.write_text("lose_everything = true\n")
    assert mock_binance(["--market", str(MARKETS), "--faults", str(faults)]) == 2
    assert "lose_everything: unknown fault" in capsys.readouterr().err
    bad_market = tmp_path / "market.toml"
    bad_market.write_text('[balances]\nUSDC = "-1"\n[markets.A1]\nsymbol = "A1USDC"\n')
    assert mock_binance(["--market", str(bad_market)]) == 2
    assert "balances.USDC: must not be negative" in capsys.readouterr().err
