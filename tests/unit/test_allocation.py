"""Allocating a settled batch's pools: no order is sold a sliver at an absurd price, and every
asset quantity is still assigned exactly once (unit cases, then a property)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.core.allocation import MAX_ROUNDING_MARKUP, EngagedOrder, allocate, min_fill_value
from solver.core.inventory import PoolSlice
from solver.core.model import Constituent, Index
from solver.core.money import ZERO, exact
from tests.support.builders import examples, index

D = Decimal
SY2 = index()


def pools(a2: str, a1: str = "8") -> dict[str, list[PoolSlice]]:
    return {"A1": [PoolSlice("A1:1", D(100), D(a1), ZERO)],
            "A2": [PoolSlice("A2:1", D(200), D(a2), ZERO)]}


def test_the_smallest_fill_is_worth_one_hundredth_of_a_6_decimal_collateral():
    assert min_fill_value(6) == D("0.01")
    assert min_fill_value(18) == D("1E-14")


@pytest.mark.parametrize("a2, units, cost", [
    ("1", "1", "1000"),
    ("0.00001", "0.00001", "0.01"),  # worth 0.01: the smallest fill
    ("0.0000099", "0", "0"),  # worth 0.0099: rounded up it would cost 1% too much, if not more
    ("0.000000000000000001", "0", "0"),  # charged 0.000001, its price would be 1e12
])
def test_a_fill_worth_less_than_the_smallest_fill_is_not_allocated(a2, units, cost):
    allocation = allocate([EngagedOrder(1, SY2, D(1), D(1000))], pools(a2), 6)
    [order] = allocation.orders
    assert (order.units, order.cost) == (D(units), D(cost))
    assigned = {a.lot_id: a.quantity for a in allocation.assignments}
    assert assigned == ({"A1:1": 8 * D(units), "A2:1": D(units)} if D(units) else {})


def test_a_sliver_for_one_order_does_not_stop_the_others():
    engaged = [EngagedOrder(1, SY2, D(1), D(1000)), EngagedOrder(2, SY2, D("0.00000001"), D(1))]
    allocation = allocate(engaged, pools("1.00000001", "8.00000008"), 6)
    assert [(o.order_id, o.units, o.cost) for o in allocation.orders] == [
        (1, D(1), D(1000)), (2, D(0), D(0))]
    assert sum(a.quantity for a in allocation.assignments if a.lot_id == "A2:1") == D(1)


# --- the property --------------------------------------------------------------------------


def amounts(low_exponent: int, high_exponent: int) -> st.SearchStrategy[Decimal]:
    """m x 10^e for m up to 999,999 and e in [low, high]: from tiny to large, exactly."""
    return st.builds(lambda m, e: D(m).scaleb(e), st.integers(1, 999_999),
                     st.integers(low_exponent, high_exponent))


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[EngagedOrder], dict[str, list[PoolSlice]], int]:
    assets = draw(st.lists(st.sampled_from(["A1", "A2", "A3"]), min_size=1, max_size=3,
                           unique=True))
    idx = Index("IX", "USDC", tuple(
        Constituent(a, f"{a}USDC", draw(amounts(-6, -1))) for a in assets))
    decimals = draw(st.sampled_from([6, 2, 18]))
    engaged = []
    for n in range(1, draw(st.integers(1, 4)) + 1):
        remaining = draw(amounts(-decimals, -2)).quantize(D(1).scaleb(-decimals)) or D(1)
        max_price = draw(st.one_of(st.none(), amounts(-3, -1)))
        engaged.append(EngagedOrder(n, idx, draw(amounts(-18, -4)), remaining, max_price))
    pooled = {a: [PoolSlice(f"{a}:{k}", draw(amounts(-3, -2)), draw(amounts(-18, -4)),
                            draw(st.sampled_from([ZERO, D("0.001"), D("0.37")])))
                  for k in range(draw(st.integers(1, 3)))] for a in assets}
    return engaged, pooled, decimals


@exact
def unit_cost(idx: Index, pooled: dict[str, list[PoolSlice]]) -> Decimal:
    cost = ZERO
    for c in idx.constituents:
        quantity = sum((s.quantity for s in pooled[c.asset]), ZERO)
        value = sum((s.price * s.quantity + s.fee for s in pooled[c.asset]), ZERO)
        cost += c.quantity * value / quantity
    return cost


@settings(max_examples=examples(300), deadline=None)
@given(batches())
@exact
def test_every_fill_is_charged_its_value_within_the_markup_and_assigned_once(batch):
    engaged, pooled, decimals = batch
    allocation = allocate(engaged, pooled, decimals)
    smallest = min_fill_value(decimals)
    for order, allocated in zip(engaged, allocation.orders, strict=True):
        assert ZERO <= allocated.fees <= allocated.cost <= order.remaining
        if not allocated.units:
            assert allocated.cost == 0
            continue
        value = allocated.units * unit_cost(order.index, pooled)
        assert smallest <= value <= allocated.cost
        assert allocated.cost <= value * (1 + MAX_ROUNDING_MARKUP)
        assert allocated.units <= order.units
    # Every order gets exactly its units of every constituent; no slice gives more than it has.
    by_order: dict[tuple[int, str], Decimal] = {}
    by_slice: dict[str, Decimal] = {}
    for a in allocation.assignments:
        asset = a.lot_id.split(":")[0]
        by_order[(a.order_id, asset)] = by_order.get((a.order_id, asset), ZERO) + a.quantity
        by_slice[a.lot_id] = by_slice.get(a.lot_id, ZERO) + a.quantity
    wanted = {(o.order_id, c.asset): c.quantity * allocated.units
              for o, allocated in zip(engaged, allocation.orders, strict=True)
              if allocated.units for c in o.index.constituents}
    assert by_order == wanted
    for pool in pooled.values():
        for piece in pool:
            assert by_slice.get(piece.id, ZERO) <= piece.quantity


# --- found by the mutation run (docs/mutation.md) --------------------------------------------


def one_asset_index(quantity: str) -> Index:
    return Index("S1", "USDC", (Constituent("A1", "A1USDC", D(quantity)),))


def test_orders_take_their_shares_of_the_slices_in_turn():
    # The whole pool is wanted, so each slice is shared out whole: 1 and 1 of A, then 8 of A
    # and 5 of B; the empty slice gives nothing.
    pool = [PoolSlice("A1:0", D(100), D(0), ZERO), PoolSlice("A1:A", D(100), D(10), ZERO),
            PoolSlice("A1:B", D(100), D(5), ZERO)]
    s1 = one_asset_index("1")
    engaged = [EngagedOrder(n, s1, D(units), D(10_000)) for n, units in ((1, 1), (2, 1), (3, 13))]
    allocation = allocate(engaged, {"A1": pool}, 6)
    assert [(o.units, o.cost) for o in allocation.orders] == [
        (D(1), D(100)), (D(1), D(100)), (D(13), D(1300))]
    assert [tuple(a) for a in allocation.assignments] == [
        ("A1:A", 1, D(1)), ("A1:A", 2, D(1)), ("A1:A", 3, D(8)), ("A1:B", 3, D(5))]


def test_rounding_dust_goes_to_the_first_slices_with_room_and_no_slice_gives_more_than_it_has():
    # 3 - 3e-36 of a pool of 3 is wanted: the fraction is 1 - 1e-36. Floored to 36 decimals,
    # each 2e-36 slice keeps 1e-36 and the big one 3 - 13e-36, 5e-36 short of what is wanted;
    # the dust fills the first slices up to their size, in order: 1e-36, then 3e-36, then 1e-36.
    e, big = D("1E-36"), D("2.99999999999999999999999999999999999")  # 3 - 10e-36
    sizes = [2 * e, big, 2 * e, 2 * e, 2 * e, 2 * e]
    pool = [PoolSlice(f"A1:{n}", D(100), size, ZERO) for n, size in enumerate(sizes)]
    units = D("2999999999999999999.999999999999999997")  # x 1e-18 A1 a unit = 3 - 3e-36 A1
    allocation = allocate([EngagedOrder(1, one_asset_index("1E-18"), units, D(1000))],
                          {"A1": pool}, 6)
    assert [(o.units, o.cost) for o in allocation.orders] == [(units, D(300))]
    assert [a.quantity for a in allocation.assignments] == [2 * e, big, 2 * e, e, e, e]


def test_a_max_price_is_compared_with_the_pool_price_before_fees():
    # 10 A1 at 100 with 10 of fees: 101 a unit with fees, 100 before them. A max price of 100
    # is met; 99.99 is not.
    pool = {"A1": [PoolSlice("A1:1", D(100), D(10), D(10))]}
    s1 = one_asset_index("1")
    engaged = [EngagedOrder(1, s1, D(2), D(1000), D(100)),
               EngagedOrder(2, s1, D(2), D(1000), D("99.99"))]
    allocation = allocate(engaged, pool, 6)
    assert [(o.units, o.cost, o.fees) for o in allocation.orders] == [
        (D(2), D(202), D(2)), (D(0), D(0), D(0))]
