"""The bound on every number read at the door (below 1E+24, at most 18 decimals), judged
exactly whatever the length of the number, and the set-up values it protects."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest

from solver.core import events as ev
from solver.core.engine import Engine
from solver.core.model import (
    Collateral,
    Constituent,
    Index,
    IndexDefinitionError,
    WeightedConstituent,
    quantities_from_weights,
)
from solver.core.money import (
    amount_problem,
    ceil_decimals,
    decimal_places,
    floor_decimals,
    plain,
    round_decimals,
    to_decimal,
)
from solver.core.orders import RejectReason
from solver.core.params import SolverParams
from tests.support.builders import desk, index, market

# 68 significant digits: 1000 once normalised in the core's 60-digit context.
BEYOND_THE_CONTEXT = "999." + "9" * 65


def test_decimal_places_counts_every_digit() -> None:
    assert decimal_places(D(BEYOND_THE_CONTEXT)) == 65
    assert decimal_places(D("1." + "0" * 70)) == 0
    assert decimal_places(D("1E+3")) == 0 and decimal_places(D("1E-20")) == 20
    assert decimal_places(D("0.000")) == 0


@pytest.mark.parametrize("within, beyond, problem", [
    ("999999999999999999999999.999999999999999999", "1E+24", "must be below 1E+24"),
    ("-999999999999999999999999", "-1E+24", "must be above -1E+24"),
    ("0.000000000000000001", "0.0000000000000000001", "must have at most 18 decimals"),
    ("1." + "0" * 70, BEYOND_THE_CONTEXT, "must have at most 18 decimals"),
    ("1E+23", "1E+400", "must be below 1E+24"),
])
def test_the_door_bound(within: str, beyond: str, problem: str) -> None:
    assert amount_problem(D(within)) is None and to_decimal(within) == D(within)
    assert problem in (amount_problem(D(beyond)) or "")
    with pytest.raises(ValueError, match=re.escape(f"{problem}, got {D(beyond)}")):
        to_decimal(beyond)


# --- the engine: refused, not rounded --------------------------------------------------------


def test_an_order_beyond_the_context_is_refused_not_rounded_to_1000() -> None:
    d = desk()
    d.deposit("alice", "1500")
    [rejected] = d.order("alice", "o1", BEYOND_THE_CONTEXT).of_type(ev.IndexOrderRejected)
    assert rejected.reason is RejectReason.TOO_PRECISE
    assert d.engine.ledger.balance("alice", "USDC").reserved == 0


def test_a_deposit_beyond_the_context_is_not_credited_rounded_up() -> None:
    d = desk()
    events = [e.event for e in d.deposit("alice", "0." + "9" * 65).events]
    assert [type(e) for e in events] == [ev.InputIgnored]
    assert d.engine.ledger.balance("alice", "USDC").deposited == 0


def test_a_quantity_beyond_the_context_is_refused_at_set_up() -> None:
    long_quantity = "1." + "0" * 61 + "1"  # 1 in the 60-digit context
    markets = [market("A1", ("100", "10"))]
    with pytest.raises(ValueError, match="A1 quantity must have at most 18 decimals"):
        Engine([index(A1=long_quantity)], [m.rules for m in markets])


# --- set-up: index and collateral decimals ---------------------------------------------------


def test_index_decimals_stay_on_the_allocation_grid() -> None:
    def build(decimals: int) -> Index:
        return Index("IX", "USDC", (Constituent("A1", "A1USDC", D(1)),), decimals)

    assert [build(n).decimals for n in (0, 18)] == [0, 18]
    for beyond in (19, 36, -1):
        with pytest.raises(IndexDefinitionError, match=r"index IX: decimals .* 0 to 18"):
            build(beyond)


def test_constituent_quantities_are_within_the_bound_wherever_an_index_is_built() -> None:
    def build(quantity: str) -> Index:
        return Index("IX", "USDC", (Constituent("A1", "A1USDC", D(quantity)),))

    assert build("999999999999999999999999.999999999999999999").constituents
    for beyond, problem in (("1E+24", "must be below 1E+24"), ("0", "must be greater than zero"),
                            ("1E-19", "must have at most 18 decimals"),
                            ("NaN", "must be a finite number")):
        expected = re.escape(f"index IX: A1 quantity {problem}")
        with pytest.raises(IndexDefinitionError, match=expected):
            build(beyond)


def test_collateral_decimals_are_at_most_the_door_s() -> None:
    assert [Collateral("DAI", n).decimals for n in (0, 18)] == [0, 18]
    for beyond in (19, 36, -1):
        with pytest.raises(ValueError, match=r"collateral DAI: decimals .* 0 to 18"):
            Collateral("DAI", beyond)


# --- set-up: solver parameters, however they are made -----------------------------------------


@pytest.mark.parametrize("name, value, problem", [
    ("price_tolerance", D(1), "must be below 1"),
    ("fee_reserve", D("1.5"), "must be below 1"),
    ("fee_reserve", D("1E+400"), "must be below 1E+24"),
    ("dust_threshold", D("1E+400"), "must be below 1E+24"),
    ("min_order_collateral", D("0." + "0" * 18 + "1"), "at most 18 decimals"),
    ("max_order_notional", D("1E+24"), "must be below 1E+24"),
    ("max_batch_notional", D("NaN"), "finite"),
    ("max_levels", 1001, "from 1 to 1000"),
    ("max_orders_per_batch", 100_001, "from 1 to 100000"),
    ("mint_retry_delay_ms", 86_400_001, "from 1 to 86400000"),
    ("max_mint_retry_delay_ms", 10**400, "from 1 to 86400000"),
])
def test_parameters_out_of_range_are_refused_naming_the_bound(
        name: str, value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: .*{re.escape(problem)}"):
        SolverParams(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("name, edge, beyond", [
    ("price_tolerance", D("0.999999999999999999"), D(1)),
    ("max_levels", 1000, 1001),
    ("max_orders_per_batch", 100_000, 100_001),
    ("max_order_notional", D("999999999999999999999999.999999999999999999"), D("1E+24")),
])
def test_parameters_at_their_bound_are_accepted_and_no_further(
        name: str, edge: object, beyond: object) -> None:
    assert getattr(SolverParams(**{name: edge}), name) == edge  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^{name}: "):
        SolverParams(**{name: beyond})  # type: ignore[arg-type]


def test_parameters_from_a_config_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"^max_levels: .*below 1E\+24"):
        SolverParams.from_mapping({"max_levels": "1e400"})


@pytest.mark.parametrize("value", [1.5, True, None])
def test_floats_and_booleans_are_not_numbers_at_the_door(value: object) -> None:
    with pytest.raises(ValueError, match=f"^expected a number, got {re.escape(repr(value))}$"):
        to_decimal(value)
    with pytest.raises(ValueError, match=r"^fee_reserve: expected a number"):
        SolverParams.from_mapping({"fee_reserve": value})


def test_parameters_from_a_config_must_be_whole_where_counted_and_known() -> None:
    with pytest.raises(ValueError, match=r"^max_levels: must be a whole number$"):
        SolverParams.from_mapping({"max_levels": "1.5"})
    with pytest.raises(ValueError, match=r"^speed: unknown parameter \(known: price_tolerance, "
                                         "fee_reserve, max_order_notional,"):
        SolverParams.from_mapping({"speed": "9"})


def test_an_order_or_deposit_of_exactly_1e24_is_refused() -> None:
    d = desk()
    assert [type(e.event) for e in d.deposit("alice", "1E+24").events] == [ev.InputIgnored]
    d.deposit("alice", "1500")
    [rejected] = [e.event for e in d.order("alice", "o1", "1E+24").events]
    assert rejected == ev.IndexOrderRejected("alice", "o1", RejectReason.INVALID_AMOUNT,
                                             "amount must be below 1E+24")


# 21 whole digits and 18 decimals: 39 significant digits, more than Python's default 28.
LONG = D("123456789012345678901.123456789012345678")


def test_rounding_and_writing_keep_every_digit_whatever_the_caller_s_context() -> None:
    assert floor_decimals(LONG, 18) == LONG == ceil_decimals(LONG, 18) == round_decimals(LONG, 18)
    assert floor_decimals(LONG, 17) == D("123456789012345678901.12345678901234567")
    assert ceil_decimals(LONG, 17) == D("123456789012345678901.12345678901234568")
    assert plain(LONG) == "123456789012345678901.123456789012345678"
    assert plain(D("-0.000")) == "0"


def test_counts_are_whole_numbers_not_booleans_and_amounts_above_zero_where_required() -> None:
    with pytest.raises(ValueError, match=r"^max_levels: must be a whole number from 1"):
        SolverParams(max_levels=True)
    with pytest.raises(ValueError, match=r"^max_order_notional: must be greater than zero"):
        SolverParams(max_order_notional=D(0))
    assert SolverParams(max_order_notional=D("0.5")).max_order_notional == D("0.5")


def test_weights_give_each_constituent_its_quantity_and_market_and_must_sum_above_zero() -> None:
    weighted = (WeightedConstituent("A1", "A1USDC", D(3), D(100)),
                WeightedConstituent("A2", "A2USDC", D(1), D(200)))
    # 1000 x 3/4 / 100 and 1000 x 1/4 / 200
    assert quantities_from_weights(D(1000), weighted) == (
        Constituent("A1", "A1USDC", D("7.5")), Constituent("A2", "A2USDC", D("1.25")))
    zero = (WeightedConstituent("A1", "A1USDC", D(0), D(100)),)
    with pytest.raises(IndexDefinitionError, match=r"^weights: must sum to more than zero$"):
        quantities_from_weights(D(1000), zero)
