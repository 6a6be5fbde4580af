"""The connector and execution against the mock over loopback, with faults switched on:
every asset order reaches a final state, the recorded fills equal the mock's trades exactly,
and no fill is counted twice."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from decimal import Decimal as D

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from mocks.binance.faults import Faults
from mocks.binance.limits import RateLimits
from mocks.binance.local import mock_server, running
from mocks.binance.server import MockBinance
from solver.core.batches import AssetOrder
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    Input,
)
from solver.core.events import AssetOrderRequested
from solver.core.model import Side
from solver.exchange.connector import Placed, Rejected, Unknown
from solver.exchange.execution import Execution, ReconcilePolicy
from solver.exchange.tracker import ExchangeStatus, OrderReport
from tests.support.exchange import connector, run, until

FAST = ReconcilePolicy(grace_ms=300, max_misses=3, check_every_ms=100, open_orders_every_ms=500)
PRICES = {"A1USDC": (D("100.00"), D("0.001")), "A2USDC": (D("200.00"), D("0.01")),
          "BTCUSDC": (D("60010.00"), D("0.00001"))}


def request(n: int, symbol: str, price: str, quantity: str, prefix: str = "t"
            ) -> AssetOrderRequested:
    return AssetOrderRequested(n, f"{prefix}-{n}", 1, symbol, Side.BUY, D(price), D(quantity))


def random_requests(rng: random.Random, count: int, prefix: str) -> list[AssetOrderRequested]:
    requests = []
    for n in range(count):
        symbol = rng.choice(sorted(PRICES))
        best, step = PRICES[symbol]
        price = best * (1 + D(rng.randint(-5, 20)) / 1000)
        quantity = step * rng.randint(1, 3000)
        if rng.random() < 0.1:
            quantity += step / 2  # off the step: the exchange rejects it
        requests.append(request(n, symbol, str(price.quantize(D("0.01"))), str(quantity),
                                prefix))
    return requests


async def trade(server: MockBinance, requests: list[AssetOrderRequested],
                policy: ReconcilePolicy = FAST, drop_ws_after: int | None = None
                ) -> tuple[Execution, list[Input]]:
    facts: list[Input] = []
    async with connector(server) as conn:
        execution = Execution(conn, facts.append, policy)
        runner = asyncio.create_task(execution.run())
        await until(lambda: any(c.subscriptions for c in server._api), what="user stream")
        for n, req in enumerate(requests):
            if n == drop_ws_after:
                await server.drop_websockets()
            await execution.send(req)
        await until(lambda: any(c.subscriptions for c in server._api) and execution.settled and all(
            any(isinstance(f, AssetOrderEnded) and f.asset_order_id == r.asset_order_id
                for f in facts) for r in requests), timeout=60,
            what="subscribed, and every order final")
        execution.stop()
        await runner
    return execution, facts


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def assert_books_balance(server: MockBinance, requests: list[AssetOrderRequested],
                         facts: list[Input]) -> None:
    ended = Counter(f.asset_order_id for f in facts if isinstance(f, AssetOrderEnded))
    assert all(ended[r.asset_order_id] == 1 for r in requests), ended
    fills = [f for f in facts if isinstance(f, AssetOrderFilled)]
    by_id = {r.asset_order_id: r for r in requests}
    keys = [(by_id[f.asset_order_id].symbol, f.trade_id) for f in fills]
    assert len(keys) == len(set(keys)), "a fill was counted twice"
    mock_orders = {o.client_order_id: o for o in server.exchange.orders.values()}
    for req in requests:
        mine = sorted((f.trade_id, f.price, f.quantity, f.commission) for f in fills
                      if f.asset_order_id == req.asset_order_id)
        placed = mock_orders.get(req.client_order_id)
        theirs = sorted((str(t.id), t.price, t.qty, t.commission) for t in server.exchange.trades
                        if placed and t.order_id == placed.order_id)
        assert mine == theirs, req.client_order_id
        end = next(f for f in facts if isinstance(f, AssetOrderEnded)
                   and f.asset_order_id == req.asset_order_id)
        assert end.executed_quantity == sum((t[2] for t in theirs), D(0))
        if placed is None:
            assert end.outcome == AssetOrderOutcome.REJECTED


def test_orders_fill_expire_and_reject_with_facts_for_the_engine() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server:
            requests = [request(1, "A1USDC", "100.50", "60"), request(2, "A2USDC", "199.00", "1"),
                        request(3, "A1USDC", "100.00", "0.0005")]
            rejected_before = sample("solver_asset_order_results_total", result="rejected")
            _, facts = await trade(server, requests)
            assert sample("solver_asset_order_results_total", result="rejected") \
                == rejected_before + 1
            assert_books_balance(server, requests, facts)
            ends = {f.asset_order_id: f for f in facts if isinstance(f, AssetOrderEnded)}
            assert ends[1].outcome == AssetOrderOutcome.FILLED
            assert ends[2].outcome == AssetOrderOutcome.EXPIRED
            assert (ends[3].outcome, ends[3].reason) == (
                AssetOrderOutcome.REJECTED, "-1013 Filter failure: LOT_SIZE")
            accepted = [f for f in facts if isinstance(f, AssetOrderAccepted)]
            assert {f.asset_order_id for f in accepted} == {1, 2}
    run(scenario())


@pytest.mark.parametrize("fault", [
    {"lose_response": 1.0}, {"server_error": 1.0}, {"reorder_reports": True},
    {"duplicate_reports": 1.0}, {"report_delay_ms": 200}, {"not_found_ms": 800},
    {"delay_ms": 50},
])
def test_each_fault_alone_loses_and_doubles_nothing(fault: dict[str, object]) -> None:
    async def scenario() -> None:
        async with running(mock_server(faults=Faults.from_mapping(fault))) as server:
            requests = [request(n, s, p, q, "f") for n, (s, p, q) in enumerate([
                ("A1USDC", "100.50", "30"), ("A2USDC", "201.00", "5"),
                ("BTCUSDC", "60020.00", "0.5"), ("A1USDC", "99.00", "1")])]
            _, facts = await trade(server, requests)
            assert_books_balance(server, requests, facts)
    run(scenario())


def test_user_stream_loss_is_resubscribed_and_reconciled() -> None:
    async def scenario() -> None:
        async with running(mock_server(faults=Faults(report_delay_ms=100))) as server:
            requests = random_requests(random.Random(5), 6, "w")
            execution, facts = await trade(server, requests, drop_ws_after=3)
            assert_books_balance(server, requests, facts)
            assert execution.stream_losses >= 1  # and `trade` saw it subscribed again
    run(scenario())


SEEDS = int(os.environ.get("FAULT_SEEDS", "12"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_faults_over_many_seeds(seed: int) -> None:
    rng = random.Random(seed)
    faults = Faults(lose_response=rng.choice([0, 0.2, 0.5]),
                    server_error=rng.choice([0, 0.2]),
                    duplicate_reports=rng.choice([0, 0.3]),
                    reorder_reports=rng.random() < 0.3,
                    report_delay_ms=rng.choice([0, 50]),
                    not_found_ms=rng.choice([0, 300]))

    async def scenario() -> None:
        async with running(mock_server(faults=faults, seed=seed)) as server:
            requests = random_requests(rng, 10, f"s{seed}")
            _, facts = await trade(server, requests,
                                   drop_ws_after=rng.choice([None, 4]))
            assert_books_balance(server, requests, facts)
    run(scenario(), timeout=120)


def test_throttled_orders_wait_and_then_go_through() -> None:
    async def scenario() -> None:
        limits = RateLimits(orders_per_10s=3)
        async with running(mock_server(limits=limits)) as server, connector(server) as conn:
            conn.limiter.configure([])  # no local limits: let the exchange say 429
            results = [await conn.place(request(n, "A1USDC", "99.00", "0.1", "rl"))
                       for n in range(4)]
            assert all(isinstance(r, Placed) for r in results)
            assert limits.orders.used >= 4 or limits.orders.start > 0
            assert conn.limiter.paused_until > 0  # it waited out a 429's Retry-After
    run(scenario(), timeout=30)


def test_place_maps_answers_to_placed_rejected_or_unknown() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            assert isinstance(await conn.place(request(1, "A1USDC", "100.00", "1")), Placed)
            rejected = await conn.place(request(2, "NOPEUSDC", "1", "1"))
            assert rejected == Rejected(-1121, "Invalid symbol.")
            server.faults.lose_response = 1.0
            assert isinstance(await conn.place(request(3, "A1USDC", "100.00", "1")), Unknown)
            server.faults.lose_response = 0.0
            server.faults.server_error = 1.0
            unknown = await conn.place(request(4, "A1USDC", "100.00", "1"))
            assert isinstance(unknown, Unknown) and "-1007" in unknown.reason
    run(scenario())


def test_fills_missing_from_every_report_are_recovered_from_my_trades() -> None:
    async def scenario() -> None:
        silent = Faults(lose_response=1.0, report_delay_ms=3_600_000)  # answers and events lost
        async with running(mock_server(faults=silent)) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            requests = [request(1, "A1USDC", "100.50", "60", "mt"),
                        request(2, "A2USDC", "201.00", "5", "mt")]
            for req in requests:
                await execution.send(req)
            assert facts == []  # nothing known yet: both outcomes unknown
            await execution.reconcile(everything=True)  # status says FILLED; trades fetched
            assert_books_balance(server, requests, facts)
    run(scenario())


def test_a_live_order_missing_from_open_orders_is_confirmed_by_a_query() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            resting = request(1, "A1USDC", "95.00", "1", "oo")
            order, _ = server.exchange.place(
                {"symbol": "A1USDC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "1", "price": "95.00", "newClientOrderId": "oo-1"}, server.now())
            execution.tracker.track(resting, server.now())
            execution._apply(wire_report(order.symbol, order.order_id))
            await execution.check_open_orders()
            assert not [f for f in facts if isinstance(f, AssetOrderEnded)]  # still open
            server.exchange.cancel({"symbol": "A1USDC", "origClientOrderId": "oo-1"},
                                   server.now())  # its report never reaches us
            await execution.check_open_orders()
            ended = [f for f in facts if isinstance(f, AssetOrderEnded)]
            assert [e.outcome for e in ended] == [AssetOrderOutcome.CANCELED]
    run(scenario())


def wire_report(symbol: str, order_id: int) -> OrderReport:
    return OrderReport(symbol, "oo-1", order_id, ExchangeStatus.NEW, D(0))


def test_a_timeout_is_an_unknown_outcome_resolved_by_query_not_by_resending() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server, timeout_s=0.2) as conn:
            server.faults.delay_ms = 600  # answers come after the client gave up
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            req = request(1, "A1USDC", "100.50", "10", "to")
            await execution.send(req)
            tracked = execution.tracker.get("to-1")
            assert tracked is not None and tracked.outcome_unknown and facts == []
            with capture_logs() as logs:  # the user stream or the query may resolve it
                server.faults.delay_ms = 0
                await until(lambda: bool(server.exchange.orders),
                            what="the late order executed")
                await execution.reconcile(everything=True)
            assert_books_balance(server, [req], facts)
            assert len(server.exchange.orders) == 1  # never sent twice
            [resolved] = [e for e in logs if e["event"] == "asset order outcome resolved"]
            assert (resolved["client_order_id"], resolved["state"], resolved["executed"]) == (
                "to-1", "filled", "10")
    run(scenario())


def test_an_order_the_exchange_never_had_is_given_up_and_the_log_says_so() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            req = request(1, "A1USDC", "100.50", "10", "lost")
            execution.tracker.track(req, execution.clock()).outcome_unknown = True
            with capture_logs() as logs:
                for _ in range(FAST.max_misses):
                    await execution.reconcile(everything=True)
            [ended] = facts
            assert isinstance(ended, AssetOrderEnded)
            assert ended.outcome is AssetOrderOutcome.REJECTED
            [resolved] = [e for e in logs if e["event"] == "asset order outcome resolved"]
            assert (resolved["state"], resolved["reason"]) == (
                "rejected", "not found on the exchange after 3 queries")
    run(scenario())


def test_at_start_an_order_journaled_but_never_sent_is_settled_by_one_query() -> None:
    """A kill -9 between journaling a batch and sending its orders: the exchange never had
    them. One "not found" settles an order journaled more than ``grace_ms`` ago (the process
    that would have sent it is gone); one journaled just now may still be on its way into
    the exchange's records, and is asked again after the grace."""
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            now = execution.clock()
            old = AssetOrder(1, "gone-1", 1, "A1", "A1USDC", Side.BUY, D("100.50"), D(10))
            new = AssetOrder(2, "gone-2", 2, "A1", "A1USDC", Side.BUY, D("100.50"), D(10))
            await execution.resume([old, new], {1: now - 10 * FAST.grace_ms, 2: now})
            [ended] = facts
            assert isinstance(ended, AssetOrderEnded) and ended.asset_order_id == 1
            assert ended.outcome is AssetOrderOutcome.REJECTED
            await asyncio.sleep(FAST.grace_ms / 1000)
            await execution.reconcile()
            assert [f.asset_order_id for f in facts if isinstance(f, AssetOrderEnded)] == [1, 2]
            assert server.exchange.orders == {}
    run(scenario())


def test_a_cancel_before_the_ack_is_sent_again_when_the_ack_shows_the_order_live() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            execution.tracker.track(request(1, "A1USDC", "95.00", "1", "cb"), server.now())
            await execution.cancel("cb-1")  # the exchange does not know it yet: -2011
            tracked = execution.tracker.get("cb-1")
            assert tracked is not None and tracked.cancel_requested
            order, _ = server.exchange.place(
                {"symbol": "A1USDC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "1", "price": "95.00", "newClientOrderId": "cb-1"}, server.now())
            execution._apply(OrderReport("A1USDC", "cb-1", order.order_id, ExchangeStatus.NEW,
                                         D(0)))  # the ack arrives, showing it resting
            await execution.drain()
            assert order.status == "CANCELED"
            ended = [f for f in facts if isinstance(f, AssetOrderEnded)]
            assert [e.outcome for e in ended] == [AssetOrderOutcome.CANCELED]
    run(scenario())


def test_an_order_waiting_for_the_limiter_is_not_reconciled_away() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            facts: list[Input] = []
            execution = Execution(conn, facts.append, FAST)
            conn.limiter.pause(1)  # as after a 429: the send waits
            req = request(1, "A1USDC", "100.50", "10", "lw")
            sending = asyncio.create_task(execution.send(req))
            await until(lambda: execution.tracker.get("lw-1") is not None)
            for _ in range(FAST.max_misses + 1):
                await execution.reconcile(everything=True)
            assert facts == []  # not declared missing while it has not been sent
            await sending
            assert_books_balance(server, [req], facts)
    run(scenario())
