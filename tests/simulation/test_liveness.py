"""Liveness: every order that can be bought is bought, and none waits for ever (issue 20).

Each case is a scenario run by ``simulate``'s harness, built the way outside testing found the
planner stalling: small remainders filling the batch's slots, indexes sharing assets with the
batch cap binding, one collateral's unbuyable order blocking every other collateral.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from solver.core import events as ev
from solver.core.fitting import BatchPlan, Candidate, plan_batch
from solver.core.model import Constituent, Index
from solver.core.orders import OrderStatus
from solver.simulation.run import SimulationResult, simulate
from solver.simulation.scenario import parse_scenario
from tests.support.builders import market, params

D = Decimal


def released_share(result: SimulationResult) -> Decimal:
    orders = result.engine.orders.values()
    return sum((o.released for o in orders), D(0)) / sum((o.collateral for o in orders), D(0))


def statuses(result: SimulationResult) -> set[OrderStatus]:
    return {o.status for o in result.engine.orders.values()}


def one_index(orders: int = 600, seed: int = 1) -> dict[str, Any]:
    """SY = 1 A1 + 0.01 A2 (both at 100, minimum notional 5, deep books that refill); at most
    1000 USDC per order per batch and 100 orders per batch. Each order of 1001.20-1001.99
    USDC buys 1000 in its first batch and keeps 0.2-1 USDC: 100 such remainders need about
    0.5 USDC of A2 together, under its minimum notional, so they cannot be bought."""
    rng = random.Random(seed)
    market = {"asks": [["100", "1000000"]], "tick_size": "0.01", "min_notional": "5",
              "fee_rate": "0.001", "refill": True}
    return {
        "params": {"price_tolerance": "0", "fee_reserve": "0.002", "max_order_notional": "1000",
                   "max_orders_per_batch": 100, "completion_wait_ms": 60_000},
        "indexes": {"SY": {"collateral": "USDC", "constituents": {"A1": "1", "A2": "0.01"}}},
        "markets": {"A1": {"symbol": "A1USDC", "step_size": "0.0001", **market},
                    "A2": {"symbol": "A2USDC", "step_size": "0.00001", **market}},
        "deposits": [{"account": f"u{k}", "amount": "10000000"} for k in range(6)],
        "orders": [{"account": f"u{n % 6}", "id": f"o{n}", "index": "SY",
                    "collateral": str(D(100120 + rng.randrange(80)) / 100)}
                   for n in range(orders)],
    }


def four_indexes(seed: int, batch_cap: str | None = None,
                 slots: int = 100) -> dict[str, Any]:
    """Four indexes over 8 to 10 of 12 shared assets (Binance-like steps and minimum
    notionals, books that refill), 240 orders of 2 to 30 units each."""
    rng = random.Random(seed)
    assets = [f"B{k}" for k in range(12)]
    markets = {}
    for a in assets:
        step = rng.choice(["0.001", "0.01", "0.1", "1"])
        markets[a] = {"symbol": f"{a}USDC", "tick_size": "0.01", "step_size": step,
                      "min_qty": step, "min_notional": rng.choice(["5", "10"]),
                      "fee_rate": "0.001", "refill": True,
                      "asks": [[str(D(rng.randrange(100, 50000)) / 100),
                                str(rng.randrange(50, 5000))]]}
    indexes = {f"IX{k}": {"collateral": "USDC", "constituents": {
        a: str(D(rng.randrange(1, 500)) / 100) for a in rng.sample(assets, rng.randrange(8, 11))}}
        for k in range(4)}
    prices = {s: sum(D(q) * D(markets[a]["asks"][0][0]) for a, q in i["constituents"].items())
              for s, i in indexes.items()}
    orders = []
    for n in range(240):
        symbol = f"IX{rng.randrange(4)}"
        amount = (prices[symbol] * rng.randrange(200, 3000) / 100).quantize(D("0.01"))
        orders.append({"account": f"u{n % 8}", "id": f"o{n}", "index": symbol,
                       "collateral": str(amount)})
    params: dict[str, Any] = {"price_tolerance": "0.01", "fee_reserve": "0.002",
                              "max_order_notional": "100000", "max_orders_per_batch": slots,
                              "completion_wait_ms": 60_000}
    if batch_cap:
        params["max_batch_notional"] = batch_cap
    return {"params": params, "indexes": indexes, "markets": markets, "orders": orders,
            "deposits": [{"account": f"u{k}", "amount": "100000000"} for k in range(8)]}


def test_remainders_that_cannot_be_bought_take_no_slot_from_orders_that_can():
    result = simulate(parse_scenario(one_index()))
    assert result.violations == []
    # Before, the 100 oldest orders' remainders filled every later batch's slots, nothing
    # was planned, and the 500 others expired: 83 % of the collateral released unspent.
    assert statuses(result) == {OrderStatus.FILLED}
    assert released_share(result) < D("0.01")
    assert len(result.engine.batches) <= 7  # 100 orders a batch, not one by one
    ends = [c for t in result.transactions for c in t.of_type(ev.IndexOrderCompleted)]
    assert all(c.reason.endswith("could buy it with other orders of SY within 60 s") for c in ends
               if c.released > D("0.01"))


@pytest.mark.parametrize("seed", [1, 2, 4])
@pytest.mark.parametrize("batch_cap, slots", [(None, 100), ("50000", 100_000)])
def test_every_index_whose_orders_can_be_bought_alone_gets_batches(seed, batch_cap, slots):
    result = simulate(parse_scenario(four_indexes(seed, batch_cap, slots)))
    engine = result.engine
    assert result.violations == []
    # Before, every order ended expired with 55-60 % of the collateral released.
    assert statuses(result) == {OrderStatus.FILLED}
    assert released_share(result) < D("0.01")
    served = {engine.orders[o].index for b in engine.batches.values() for o in b.engagements}
    assert served == {o.index for o in engine.orders.values()}


def test_an_index_that_cannot_get_an_asset_takes_no_share_of_the_others():
    """IX1 = 1 A; IX2 = 1 A + 1 C, and C cannot be bought (its minimum notional is out of
    reach). A is scarce (10 offered, 20 wanted): IX2's orders, which cannot be bought, must
    not take half of it from IX1's."""
    ix1 = Index("IX1", "USDC", (Constituent("A", "AUSDC", D(1)),))
    ix2 = Index("IX2", "USDC", (Constituent("A", "AUSDC", D(1)), Constituent("C", "CUSDC", D(1))))
    markets = {"A": market("A", ("100", "10")),
               "C": market("C", ("100", "1000"), min_notional="1e9")}
    candidates = [Candidate(1, ix2, D(1000)), Candidate(2, ix1, D(1000))]
    plan = plan_batch(candidates, markets, {}, params(), D(10**9))
    assert isinstance(plan, BatchPlan)
    assert [(e.order_id, e.units) for e in plan.engagements] == [(2, D(10))]


COLLATERALS = ("USDC", "JPYX", "EURX", "DAIX")


def per_collateral(first_max_price: str | None) -> dict[str, Any]:
    """One index per collateral, each over one asset quoted in it; the first order (USDC)
    may carry a max price below its index's price."""
    markets = {f"A{c}": {"symbol": f"A{c}{c}", "quote": c, "asks": [["100", "1000"]],
                         "tick_size": "0.01", "step_size": "0.01", "min_notional": "5"}
               for c in COLLATERALS}
    orders: list[dict[str, Any]] = [
        {"account": "alice", "id": f"o-{c}", "index": f"IX{c}", "collateral": "500"}
        for c in COLLATERALS]
    if first_max_price is not None:
        orders[0]["max_price"] = first_max_price
    return {"indexes": {f"IX{c}": {"collateral": c, "constituents": {f"A{c}": "1"}}
                        for c in COLLATERALS},
            "markets": markets, "params": {"price_tolerance": "0", "fee_reserve": "0"},
            "deposits": [{"account": "alice", "asset": c, "amount": "1000"}
                         for c in COLLATERALS],
            "orders": orders}


def first_batch_of(result: SimulationResult, client_order_id: str) -> int:
    order = next(o for o in result.engine.orders.values()
                 if o.client_order_id == client_order_id)
    return min(b.id for b in result.engine.batches.values() if order.id in b.engagements)


def test_collaterals_take_turns_behind_a_large_order_on_a_thin_book():
    """A 5,000 USDC order on a book that offers one unit a batch stays the oldest for 50
    batches: the EURX order gets the next one all the same."""
    data = per_collateral(first_max_price=None)
    for c in COLLATERALS:
        data["markets"][f"A{c}"].update(asks=[["100", "1"]], refill=True)
    data["orders"] = [{"account": "alice", "id": "o-USDC", "index": "IXUSDC",
                       "collateral": "5000"},
                      {"account": "alice", "id": "o-EURX", "index": "IXEURX",
                       "collateral": "500"}]
    data["deposits"] = [{"account": "alice", "asset": c, "amount": "10000"}
                        for c in ("USDC", "EURX")]
    result = simulate(parse_scenario(data))
    assert first_batch_of(result, "o-EURX") == 2  # was 52
    assert statuses(result) == {OrderStatus.FILLED}


def test_indexes_take_turns_on_a_shared_thin_asset():
    """IX1 = A, IX2 = A + B (B's minimum notional is 50): A offers 2 a batch, and an older
    5,000 USDC order of IX1 would take all of it batch after batch, IX2's order, which can be
    bought alone, getting too little A for B's minimum. IX2 gets its turn at once."""
    data = {"indexes": {"IX1": {"collateral": "USDC", "constituents": {"A": "1"}},
                        "IX2": {"collateral": "USDC", "constituents": {"A": "1", "B": "1"}}},
            "markets": {"A": {"symbol": "AUSDC", "asks": [["100", "2"]], "tick_size": "0.01",
                              "step_size": "0.01", "min_notional": "5", "refill": True},
                        "B": {"symbol": "BUSDC", "asks": [["100", "1000"]], "tick_size": "0.01",
                              "step_size": "0.01", "min_notional": "50", "refill": True}},
            "params": {"price_tolerance": "0", "fee_reserve": "0"},
            "deposits": [{"account": "a", "amount": "100000"}],
            "orders": [{"account": "a", "id": "o1", "index": "IX1", "collateral": "5000"},
                       {"account": "a", "id": "o2", "index": "IX2", "collateral": "1000"}]}
    result = simulate(parse_scenario(data))
    assert first_batch_of(result, "o2") == 2  # was 19
    assert statuses(result) == {OrderStatus.FILLED}


def test_an_order_priced_out_at_its_limit_blocks_no_other_collateral():
    result = simulate(parse_scenario(per_collateral(first_max_price="99")))
    engine = result.engine
    status = {o.client_order_id: o.status for o in engine.orders.values()}
    assert status == {"o-USDC": OrderStatus.EXPIRED, "o-JPYX": OrderStatus.FILLED,
                      "o-EURX": OrderStatus.FILLED, "o-DAIX": OrderStatus.FILLED}
    assert len(engine.batches) == 3


def test_a_remainder_waiting_for_company_blocks_no_other_collateral():
    data = per_collateral(first_max_price=None)
    data["markets"]["AUSDC"]["min_notional"] = "50"
    data["params"]["max_order_notional"] = "500"
    data["orders"][0]["collateral"] = "520"  # buys 5 A (500), keeps 20: under 50 alone
    result = simulate(parse_scenario(data))
    orders = {o.client_order_id: o for o in result.engine.orders.values()}
    assert {o.status for o in orders.values()} == {OrderStatus.FILLED}
    assert orders["o-USDC"].released == D(20)
    assert [o.filled_units for o in orders.values()] == [D(5)] * 4
