"""Property tests: conservation laws, budgets, filters and fill-order invariance hold for
random indexes, books, orders, cancels and orders of exchange reports."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver import events as ev
from solver.allocation import min_fill_value
from solver.commands import BookUpdated
from solver.fitting import Market, can_be_engaged, limit_price
from solver.market import Level, MarketRules, OrderBook
from solver.model import Constituent, Index
from solver.orders import OrderStatus
from solver.params import SolverParams
from solver.simulation.run import SimulationResult, simulate
from solver.simulation.scenario import CancelSpec, MarketSpec, OrderSpec, Scenario

D = Decimal
ASSETS = ("A1", "A2", "A3", "A4")


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(D(low), D(high), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def market_specs(draw: st.DrawFn, asset: str) -> MarketSpec:
    tick = draw(st.sampled_from([D("0.01"), D("0.001"), D("0.1"), D("1")]))
    step = draw(st.sampled_from([D("0.00001"), D("0.001"), D("0.01"), D("0.0001"), D("1")]))
    price = max(tick, draw(st.integers(1, 3000)) // tick * tick)
    if step == 1:
        price = tick  # a coarse step only on a cheap asset, as exchanges set them
    asks = []
    for _ in range(draw(st.sampled_from([3, 1, 2, 4, 5, 6, 0]))):
        asks.append(Level(price, draw(decimals("0.5", "500", 3))))
        price += draw(st.integers(1, 50)) * tick
    rules = MarketRules(
        f"{asset}USDC", asset, "USDC", tick, step,
        min_qty=draw(st.sampled_from([D(0), step])),
        max_qty=draw(st.sampled_from([D(0), D(10_000)])),
        min_notional=draw(st.sampled_from([D(0), D(1), D(5), D(10)])))
    return MarketSpec(rules, OrderBook(rules.symbol, tuple(asks)),
                      fee_rate=draw(st.sampled_from([D(0), D("0.001"), D("0.0075"), D("0.05")])),
                      refill=draw(st.booleans()))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    assets = ASSETS[:draw(st.integers(1, len(ASSETS)))]
    markets = {a: draw(market_specs(a)) for a in assets}
    indexes = []
    for symbol in ("IX1", "IX2")[:draw(st.integers(1, 2))]:
        chosen = draw(st.lists(st.sampled_from(assets), min_size=1, unique=True))
        indexes.append(Index(symbol, "USDC", tuple(
            Constituent(a, f"{a}USDC", draw(decimals("0.001", "5", 6))) for a in chosen)))
    accounts = ("alice", "bob", "carol")
    deposits = tuple((a, "USDC", draw(decimals("2000", "50000", 2))) for a in accounts)
    orders = tuple(
        OrderSpec(draw(st.sampled_from(accounts)), f"o{n}",
                  draw(st.sampled_from([i.symbol for i in indexes] * 4 + ["IX9"])),
                  draw(decimals("0.5", "8000", 2)),
                  draw(st.one_of(st.none(), st.none(), decimals("1", "100000", 2))))
        for n in range(draw(st.integers(1, 8))))
    cancels = tuple(CancelSpec(o.account, o.id, draw(st.integers(0, 4)))
                    for o in orders if draw(st.booleans()) and draw(st.booleans()))
    params = SolverParams(
        price_tolerance=draw(st.sampled_from([D(0), D("0.005"), D("0.01"), D("0.05")])),
        fee_reserve=draw(st.sampled_from([D(0), D("0.001"), D("0.01")])),
        max_order_notional=draw(st.sampled_from([D(50), D(1000), D(1_000_000)])),
        max_batch_notional=draw(st.sampled_from([D(300), D(5000), D(1_000_000)])),
        max_inflight_notional=draw(st.sampled_from([D(300), D(10_000_000)])),
        max_levels=draw(st.integers(1, 5)),
        max_orders_per_batch=draw(st.integers(1, 10)),
        dust_threshold=draw(st.sampled_from([D("0.01"), D(1)])))
    return Scenario(params, tuple(indexes), markets, deposits, orders, cancels,
                    quotes=(), collateral_decimals={"USDC": 6}, max_batches=200)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(scenarios())
def test_conservation_budgets_and_filters_hold(scenario: Scenario) -> None:
    result = simulate(scenario)
    assert result.violations == []  # ledger, reservations, per-order and per-asset laws
    for order in result.engine.orders.values():
        assert order.spent <= order.collateral
        assert not order.is_open
    for asset_order in result.engine.asset_orders.values():
        rules = scenario.markets[asset_order.asset].rules
        assert rules.filter_failure(asset_order.price, asset_order.quantity) is None
    traded = {}
    for trade in result.exchange.trades:
        traded[trade.symbol] = traded.get(trade.symbol, D(0)) + trade.quantity
    recorded = {}
    for lot in result.engine.inventory.lots():
        recorded[lot.symbol] = recorded.get(lot.symbol, D(0)) + lot.quantity
    assert recorded == traded
    # Value: what the exchange was paid = what orders were charged + inventory at lot cost,
    # up to the rounding up of each charge to the collateral's 6 decimals.
    inventory = result.engine.inventory
    paid = sum((lot.price * lot.quantity + lot.fee for lot in inventory.lots()), D(0))
    held = sum((inventory.unassigned(lot.id) * (lot.price + lot.fee / lot.quantity)
                for lot in inventory.lots() if lot.quantity), D(0))
    charged = sum((o.spent for o in result.engine.orders.values()), D(0))
    fills = sum(len(b.filled_units) for b in result.engine.batches.values())
    assert D(0) <= charged + held - paid <= D("0.000001") * fills + D("1e-20")
    # No fill is a sliver whose charge, rounded up, would make its price absurd.
    for t in result.transactions:
        for filled in t.of_type(ev.IndexOrderFilled):
            assert filled.cost >= min_fill_value(6)
    assert_no_order_closed_while_a_batch_could_buy_for_it(scenario, result)


def assert_no_order_closed_while_a_batch_could_buy_for_it(scenario: Scenario,
                                                          result: SimulationResult) -> None:
    """An order completes as filled only with fills, and only when what it has left is at or
    below the dust threshold or buys less than the smallest fill at the books of that moment
    (together with other orders or not)."""
    books: dict[str, OrderBook] = {}
    indexes = {i.symbol: i for i in scenario.indexes}
    for t in result.transactions:
        if isinstance(t.input, BookUpdated):
            books[t.input.book.symbol] = t.input.book
        for done in t.of_type(ev.IndexOrderCompleted):
            if done.status is not OrderStatus.FILLED:
                continue
            assert done.filled_units > 0
            if done.released <= scenario.params.dust_threshold:
                continue
            index = indexes[result.engine.orders[done.order_id].index]
            markets = {a: Market(m.rules, books[m.rules.symbol])
                       for a, m in scenario.markets.items() if m.rules.symbol in books}
            price = limit_price(index, markets, scenario.params)
            assert price is not None
            assert not can_be_engaged(index, done.released, price, scenario.params,
                                      min_fill_value(6))


def outcome(scenario: Scenario, seed: int | None) -> object:
    def shuffled(facts: list) -> list:
        random.Random(seed).shuffle(facts)
        return facts

    engine = simulate(scenario, None if seed is None else shuffled).engine
    return ([(o.status, o.filled_units, o.spent, o.fees, o.released, o.minted_units)
             for o in engine.orders.values()],
            engine.inventory.positions(), engine.ledger.balances())


@SETTINGS
@given(scenarios(), st.integers(0, 2**32))
def test_results_do_not_depend_on_the_order_of_exchange_reports(scenario: Scenario,
                                                                seed: int) -> None:
    assert outcome(scenario, seed) == outcome(scenario, None)
