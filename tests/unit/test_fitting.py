"""Liquidity fitting against hand-computed numbers (basket {A1: 8, A2: 1})."""

from decimal import Decimal

from solver.core.fitting import (
    Candidate,
    NoBatch,
    can_be_engaged,
    plan_batch,
    quote,
    smallest_buy_cost,
)
from solver.core.market import buy_liquidity
from solver.core.model import Index
from tests.support.builders import book, index, market, params, rules

D = Decimal
SY2 = index()


NO_LIMIT = D("1e9")


def plan(orders, markets, inventory=None, room=NO_LIMIT, **param_values):
    candidates = [Candidate(n, SY2, D(amount), None) for n, amount in enumerate(orders, 1)]
    return plan_batch(candidates, {m.rules.asset: m for m in markets}, inventory or {},
                      params(**param_values), room)


def deep_markets():
    return [market("A1", ("100", "1000")), market("A2", ("200", "1000"))]


def sent(result):
    return {o.asset: (o.price, o.quantity) for o in result.asset_orders}


def test_index_price_1000_and_1000_usdc_buy_one_unit():
    result = plan(["1000"], deep_markets())
    assert result.index_prices == {"SY2": D(1000)}
    assert [(e.order_id, e.units) for e in result.engagements] == [(1, D(1))]
    assert sent(result) == {"A1": (D(100), D(8)), "A2": (D(200), D(1))}


def test_fee_reserve_keeps_collateral_back():
    result = plan(["1000"], deep_markets(), fee_reserve=D("0.25"))
    assert result.engagements[0].units == D("0.8")


def test_limit_is_best_ask_times_tolerance_floored_to_tick():
    liquidity = buy_liquidity(book("A1", ("100", "1"), ("100.5", "2"), ("101.01", "4")),
                              rules("A1", tick="0.01"), D("0.01"), 10)
    assert liquidity is not None
    assert (liquidity.limit, liquidity.quantity) == (D("101.00"), D(3))


def test_max_levels_moves_the_limit_to_the_last_level_counted():
    liquidity = buy_liquidity(book("A1", ("100", "1"), ("100.2", "2"), ("100.4", "4")),
                              rules("A1"), D("0.01"), 2)
    assert liquidity is not None
    assert (liquidity.limit, liquidity.quantity) == (D("100.2"), D(3))


def test_scarce_liquidity_is_shared_pro_rata_by_the_scarcest_asset():
    # Demand for A2 is 1 + 3 = 4 units of A2 but only 2 are offered: everyone gets half.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "2"))]
    result = plan(["1000", "3000"], markets)
    assert [e.units for e in result.engagements] == [D("0.5"), D("1.5")]
    assert sent(result) == {"A1": (D(100), D(16)), "A2": (D(200), D(2))}


def test_batch_cap_applies_to_the_asset_orders_sent_first_come_first_served():
    # IndexMaker's bug: the cap scaled engagements but not the exchange quantities. The cap
    # takes the oldest order whole, then what is left of it goes to the next.
    result = plan(["1000", "3000"], deep_markets(), max_batch_notional=D(2000))
    assert [(e.order_id, e.units) for e in result.engagements] == [(1, D(1)), (2, D(1))]
    assert sent(result) == {"A1": (D(100), D(16)), "A2": (D(200), D(2))}
    assert result.notional <= D(2000)
    result = plan(["3000", "1000"], deep_markets(), max_batch_notional=D(2000))
    assert [(e.order_id, e.units) for e in result.engagements] == [(1, D(2))]


def test_inflight_room_caps_the_batch_and_none_when_full():
    assert plan(["1000"], deep_markets(), room=D(500)).engagements[0].units == D("0.5")
    assert isinstance(plan(["1000"], deep_markets(), room=D(0)), NoBatch)


def test_max_order_notional_caps_each_order_per_batch():
    result = plan(["5000", "500"], deep_markets(), max_order_notional=D(1000))
    assert [e.units for e in result.engagements] == [D(1), D("0.5")]


def test_max_orders_per_batch_takes_the_oldest():
    result = plan(["1000", "1000", "1000"], deep_markets(), max_orders_per_batch=2)
    assert [e.order_id for e in result.engagements] == [1, 2]


def test_quantities_are_floored_to_the_step_never_rounded_up():
    markets = [market("A1", ("100", "1000"), step="0.1"), market("A2", ("200", "1000"))]
    result = plan(["1001"], markets)  # 1.001 units: 8.008 A1 -> 8.0
    assert sent(result)["A1"] == (D(100), D("8.0"))


def test_share_below_min_notional_is_not_padded_and_waits():
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000"), min_notional="5")]
    no = plan(["10"], markets)  # A2 share: 0.01 x 200 = 2 USDC < 5
    assert no == NoBatch("A2USDC: the orders' buy of 0.01 at 200 fails NOTIONAL (step 0.001, "
                         "min notional 5)")


def test_inventory_is_used_first_and_covers_what_cannot_be_sent():
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000"), min_notional="5")]
    result = plan(["10"], markets, inventory={"A2": D("0.5")})
    assert result.engagements[0].units == D("0.01")
    assert result.inventory_used == {"A2": D("0.01")}
    assert sent(result) == {"A1": (D(100), D("0.08"))}


def test_a_buy_below_the_minimum_buys_the_minimum_and_uses_less_inventory():
    # 0.05 A2 needed, 0.04 in inventory: the 0.01 left is under A2's 5 USDC minimum notional
    # at 200 (0.025), so the order buys 0.025 and takes 0.025 from inventory, never more
    # than the need.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000"), min_notional="5")]
    result = plan(["50"], markets, inventory={"A2": D("0.04")})
    assert [e.units for e in result.engagements] == [D("0.05")]
    assert sent(result) == {"A1": (D(100), D("0.4")), "A2": (D(200), D("0.025"))}
    assert result.inventory_used == {"A2": D("0.025")}


def test_orders_above_their_max_price_wait():
    candidates = [Candidate(1, SY2, D(1000), D(999)), Candidate(2, SY2, D(1000), D(1000))]
    markets = {m.rules.asset: m for m in deep_markets()}
    result = plan_batch(candidates, markets, {}, params(), D("1e9"))
    assert [e.order_id for e in result.engagements] == [2]


def test_no_book_means_no_batch():
    assert plan(["1000"], [market("A1", ("100", "1000"))]) == NoBatch(
        "no ask for every asset of SY2")


def test_quote_gives_price_and_units_within_liquidity():
    markets = {m.rules.asset: m for m in [market("A1", ("100", "1000")),
                                          market("A2", ("200", "0.5"))]}
    assert quote(SY2, D(1000), markets, {}, params()) == (D(1000), D("0.5"))
    assert quote(SY2, D(400), markets, {}, params()) == (D(1000), D("0.4"))


def test_no_order_is_engaged_for_a_sliver_of_inventory():
    # A2 cannot be sent (its minimum notional is out of reach): only slivers of inventory
    # are left, worth 1e-12 USDC for the 1e-15 units they make.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000"), min_notional="1e9")]
    slivers = {"A1": D("8E-15"), "A2": D("1E-15")}
    assert plan(["1000"], markets, inventory=slivers).engagements[0].units == D("1E-15")
    candidates = [Candidate(1, SY2, D(1000))]
    books = {m.rules.asset: m for m in markets}
    assert isinstance(plan_batch(candidates, books, slivers, params(), NO_LIMIT, D("0.01")),
                      NoBatch)
    # With no smallest fill (the default) the sliver is engaged, as above; 0.00001 units are
    # worth 0.01: enough.
    enough = {"A1": D("0.00008"), "A2": D("0.00001")}
    result = plan_batch(candidates, books, enough, params(), NO_LIMIT, D("0.01"))
    assert [(e.order_id, e.units) for e in result.engagements] == [(1, D("0.00001"))]


def test_min_buy_quantity_meets_every_filter():
    assert rules("A2", step="0.01", min_qty="0.01", min_notional="5").min_buy_quantity(
        D(200)) == D("0.03")  # 5 / 200 = 0.025, up to the step
    assert rules("A1", step="0.001", min_qty="0.1", min_notional="5").min_buy_quantity(
        D(100)) == D("0.1")  # min_qty binds
    assert rules("A1", step="0.001").min_buy_quantity(D(100)) == D("0.001")  # one step
    assert rules("A1", step="0").min_buy_quantity(D(100)) == D(0)  # any quantity
    for price in (D("0.37"), D(200), D("61234.5")):
        r = rules("X", step="0.0001", min_qty="0.0002", min_notional="10")
        least = r.min_buy_quantity(price)
        assert r.filter_failure(price, least) is None
        assert r.filter_failure(price, least - D("0.0001")) is not None


def test_smallest_buy_cost_prices_the_smallest_tradable_quantity():
    filtered = {m.rules.asset: m for m in [
        market("A1", ("100", "1000"), min_qty="0.001", min_notional="5"),
        market("A2", ("200", "1000"), step="0.01", min_qty="0.01", min_notional="5")]}
    # A2 needs 0.03 (5 USDC at 200, up to the step): 0.03 units at 1000.
    assert smallest_buy_cost(SY2, filtered, params()) == D(30)
    # At the limits (1% tolerance: 101 and 202) and with the fee reserve.
    assert smallest_buy_cost(SY2, filtered, params(price_tolerance=D("0.01"),
                                                   fee_reserve=D("0.002"))) == (
        D("0.03") * D(1010) * D("1.002"))
    # No filters but steps: one step of A2 (0.001) is the binding one: 1 USDC.
    deep = {m.rules.asset: m for m in deep_markets()}
    assert smallest_buy_cost(SY2, deep, params()) == D(1)
    # A smallest fill of 5 USDC binds over the steps.
    assert smallest_buy_cost(SY2, deep, params(), D(5)) == D(5)
    # Without an ask for every asset it cannot be priced.
    assert smallest_buy_cost(SY2, {"A1": deep["A1"]}, params()) is None
    # A candidate with exactly that much is engaged alone; with less, not.
    candidates = [Candidate(1, SY2, D(30))]
    assert plan_batch(candidates, filtered, {}, params(), NO_LIMIT).engagements[0].units == (
        D("0.03"))
    assert isinstance(plan_batch([Candidate(1, SY2, D("29.99"))], filtered, {}, params(),
                                 NO_LIMIT), NoBatch)


# --- found by the mutation run (docs/mutation.md) --------------------------------------------


def test_an_order_that_buys_no_unit_takes_no_place_in_the_batch():
    # Whole units at 1000: 500 buys none, so the one place goes to the order behind it.
    sy0 = Index("SY2", "USDC", SY2.constituents, decimals=0)
    candidates = [Candidate(1, sy0, D(500)), Candidate(2, sy0, D(1000))]
    markets = {m.rules.asset: m for m in deep_markets()}
    result = plan_batch(candidates, markets, {}, params(max_orders_per_batch=1), NO_LIMIT)
    assert [(e.order_id, e.units) for e in result.engagements] == [(2, D(1))]


def test_filters_name_the_first_one_an_order_fails_and_pass_at_their_edges():
    r = rules("A1", tick="0.01", step="0.001", min_qty="0.5", max_qty="10", min_notional="60")
    assert r.filter_failure(D("100.005"), D(1)) == "PRICE_FILTER"
    assert rules("A1").filter_failure(D(0), D(1)) == "PRICE_FILTER"
    assert r.filter_failure(D(100), D("1.0005")) == "LOT_SIZE"
    assert rules("A1").filter_failure(D(100), D(0)) == "LOT_SIZE"
    assert r.filter_failure(D(100), D("0.4")) == "LOT_SIZE"
    assert r.filter_failure(D(100), D("10.001")) == "LOT_SIZE"
    assert r.filter_failure(D(100), D("0.5")) == "NOTIONAL"
    assert r.filter_failure(D(100), D(10)) is None
    assert r.filter_failure(D(100), D("0.6")) is None


def test_max_levels_holds_in_the_plan_and_at_its_edges():
    # A2: 0.5 at 200 and 10 at 201, both within 1% of 200; one level counts, at 200. A1 is
    # bought up to 101: the index costs 8 x 101 + 200 = 1008, and A2 allows 0.5 units.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "0.5"), ("201", "10"))]
    result = plan(["2000"], markets, price_tolerance=D("0.01"), max_levels=1)
    assert result.index_prices == {"SY2": D(1008)}
    assert sent(result) == {"A1": (D(101), D(4)), "A2": (D(200), D("0.5"))}

    def liquidity(max_levels, *asks):
        found = buy_liquidity(book("A1", *asks), rules("A1"), D("0.01"), max_levels)
        return found.limit, found.quantity

    # Every level within the tolerance is counted: the limit stays at the tolerance.
    assert liquidity(2, ("100", "1"), ("100.2", "2")) == (D("101.00"), D(3))
    # A level beyond max_levels at exactly the limit: the limit moves down to the last counted.
    assert liquidity(2, ("100", "1"), ("100.5", "2"), ("101", "4")) == (D("100.5"), D(3))
    assert liquidity(1, ("100", "1"), ("100.5", "2")) == (D(100), D(1))
    assert liquidity(3, ("100", "1"), ("100.2", "2"), ("100.4", "4"), ("100.6", "8")) == (
        D("100.4"), D(7))


def test_a_remainder_worth_exactly_the_smallest_fill_can_still_be_engaged():
    # 0.01 at 1000 a unit: 0.00001 units, worth 0.01, the smallest fill of a 6-decimal token.
    assert can_be_engaged(SY2, D("0.01"), D(1000), params(), D("0.01"))
    assert not can_be_engaged(SY2, D("0.009999"), D(1000), params(), D("0.01"))


def test_a_batch_is_planned_within_a_room_of_one_and_its_notional_is_what_is_sent():
    result = plan(["1000"], deep_markets(), room=D(1))
    assert [(e.order_id, e.units) for e in result.engagements] == [(1, D("0.001"))]
    assert sent(result) == {"A1": (D(100), D("0.008")), "A2": (D(200), D("0.001"))}
    assert result.notional == D(1)


def test_inventory_that_covers_an_asset_exactly_is_used_without_fitting_again():
    # 0.33333 and 0.77777 units wanted, 0.3 A2 on the book: each order gets 0.3 / 1.1111 of
    # its units, floored: 0.089999999999999999 and 0.21. Their 2.399999999999999992 A1 are all
    # in inventory, so only A2 is bought.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "0.3"))]
    result = plan(["333.33", "777.77"], markets, inventory={"A1": D("2.399999999999999992")})
    assert [(e.order_id, e.units) for e in result.engagements] == [
        (1, D("0.089999999999999999")), (2, D("0.21"))]
    assert result.inventory_used == {"A1": D("2.399999999999999992")}
    assert sent(result) == {"A2": (D(200), D("0.299"))}


def test_only_the_indexes_engaged_are_priced_in_the_plan():
    sy3 = index("SY3", A1="1")
    candidates = [Candidate(1, SY2, D(1000)), Candidate(2, sy3, D("0.005"))]  # a sliver of SY3
    markets = {m.rules.asset: m for m in deep_markets()}
    result = plan_batch(candidates, markets, {}, params(), NO_LIMIT, D("0.01"))
    assert result.index_prices == {"SY2": D(1000)}


def test_quotes_and_minimums_keep_the_fee_reserve_back_and_work_for_cheap_indexes():
    markets = {m.rules.asset: m for m in deep_markets()}
    # 1000 with a 25% reserve: 800 to spend, 0.8 units at 1000.
    assert quote(SY2, D(1000), markets, {}, params(fee_reserve=D("0.25"))) == (D(1000), D("0.8"))
    # An index worth 0.1 a unit (0.001 A1 at 100): 1 buys 10 units; the smallest tradable
    # quantity is 1 unit (the 0.001 step of A1), which costs 0.1.
    cheap = index("SYC", A1="0.001")
    assert quote(cheap, D(1), markets, {}, params()) == (D("0.1"), D(10))
    assert smallest_buy_cost(cheap, markets, params()) == D("0.1")
