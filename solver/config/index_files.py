"""Index definitions from config: TOML files, or the ``indexes`` table of a scenario.

A definition gives each constituent's quantity per index unit, or weights with reference
prices and an initial index price (``q_i = initial_price * w_i / p_i``, weights normalised)::

    symbol = "SY2"                  # optional in a file; defaults to the file name
    collateral = "USDC"
    decimals = 18                   # optional: index units' decimals, 0 to 18
    [constituents]
    BTC = "0.001"                   # quantity per unit, traded as BTCUSDC
    ETH = { symbol = "ETHUSDC", quantity = "0.02" }

    # or
    initial_price = "1000"
    [constituents.BTC]
    weight = "60"
    price = "60000"

Every number is below 1E+24 and has at most 18 decimals (``money.amount_problem``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

from solver.core.model import (
    MAX_INDEX_DECIMALS,
    Constituent,
    Index,
    IndexDefinitionError,
    WeightedConstituent,
    quantities_from_weights,
)
from solver.core.money import QUANTITY_DECIMALS, amount_problem, to_decimal

SymbolOf = Callable[[str, str], str]


def default_symbol(asset: str, collateral: str) -> str:
    return f"{asset}{collateral}"


def load_index_file(path: Path) -> Index:
    """One index from a TOML file; errors name the file and the field."""
    try:
        data = tomllib.loads(path.read_text(), parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise IndexDefinitionError(f"{path}: {error}") from None
    symbol = data.pop("symbol", path.stem)
    return parse_index(str(symbol), data, where=str(path))


def load_index_directory(directory: Path) -> list[Index]:
    return [load_index_file(p) for p in sorted(directory.glob("*.toml"))]


def parse_index(
    symbol: str, data: Mapping[str, object], where: str, symbol_of: SymbolOf = default_symbol
) -> Index:
    def fail(field: str, problem: str) -> IndexDefinitionError:
        return IndexDefinitionError(f"{where}: {field}: {problem}")

    if not symbol or not isinstance(symbol, str):
        raise fail("symbol", "must be a non-empty string")
    unknown = set(data) - {"collateral", "decimals", "constituents", "initial_price"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    collateral = data.get("collateral")
    if not isinstance(collateral, str) or not collateral:
        raise fail("collateral", "must name the collateral asset, e.g. USDC")
    decimals = data.get("decimals", 18)
    if not isinstance(decimals, int) or isinstance(decimals, bool) \
            or not 0 <= decimals <= MAX_INDEX_DECIMALS:
        raise fail("decimals", f"must be a whole number from 0 to {MAX_INDEX_DECIMALS}")
    entries = data.get("constituents")
    if not isinstance(entries, Mapping) or not entries:
        raise fail("constituents", "must map each asset to its quantity or weight")
    constituents = _constituents(entries, data.get("initial_price"), collateral, symbol_of, fail)
    return Index(symbol, collateral, constituents, decimals)


def _constituents(
    entries: Mapping[str, object],
    initial_price: object,
    collateral: str,
    symbol_of: SymbolOf,
    fail: Callable[[str, str], IndexDefinitionError],
) -> tuple[Constituent, ...]:
    quantities: list[Constituent] = []
    weighted: list[WeightedConstituent] = []
    for asset, entry in entries.items():
        field = f"constituents.{asset}"
        spec: Mapping[str, object] = entry if isinstance(entry, Mapping) else {"quantity": entry}
        unknown = set(spec) - {"symbol", "quantity", "weight", "price"}
        if unknown:
            raise fail(f"{field}.{sorted(unknown)[0]}", "unknown field")
        market = spec.get("symbol", symbol_of(asset, collateral))
        if not isinstance(market, str) or not market:
            raise fail(f"{field}.symbol", "must be an exchange symbol such as BTCUSDC")
        if "quantity" in spec:
            quantity = positive(spec["quantity"], _at(fail, f"{field}.quantity"))
            quantities.append(Constituent(asset, market, quantity))
        elif "weight" in spec and "price" in spec:
            weight = positive(spec["weight"], _at(fail, f"{field}.weight"))
            price = positive(spec["price"], _at(fail, f"{field}.price"))
            weighted.append(WeightedConstituent(asset, market, weight, price))
        else:
            raise fail(field, "needs a quantity, or a weight and a reference price")
    if quantities and weighted:
        raise fail("constituents", "give quantities or weights, not both")
    if quantities:
        return tuple(quantities)
    if initial_price is None:
        raise fail("initial_price", "required when constituents are given by weight")
    start = positive(initial_price, _at(fail, "initial_price"))
    derived = quantities_from_weights(start, tuple(weighted))
    for c in derived:
        problem = _derived_quantity_problem(c.quantity)
        if problem:
            raise fail(f"constituents.{c.asset}", problem)
    return derived


def _derived_quantity_problem(quantity: Decimal) -> str | None:
    """Bounded inputs can still give a quantity beyond the door's bound, or one that rounds to
    nothing at 18 decimals."""
    if quantity <= 0:
        return (f"initial_price x weight / price rounds to zero at {QUANTITY_DECIMALS} "
                "decimals: raise the weight or initial_price")
    problem = amount_problem(quantity)
    return None if problem is None else f"initial_price x weight / price {problem}"


def _at(
    fail: Callable[[str, str], IndexDefinitionError], field: str
) -> Callable[[str], IndexDefinitionError]:
    return lambda problem: fail(field, problem)


def positive(value: object, fail: Callable[[str], Exception]) -> Decimal:
    """A decimal above zero within the door's bounds (``money.to_decimal``), from an int, a
    string or a Decimal (never a float)."""
    number = decimal(value, fail)
    if number <= 0:
        raise fail(f"must be greater than zero, got {value}")
    return number


def decimal(value: object, fail: Callable[[str], Exception]) -> Decimal:
    """A decimal within the door's bounds: below 1E+24 either side of zero, at most 18
    decimals (``money.amount_problem``)."""
    try:
        return to_decimal(value)
    except ValueError as error:
        raise fail(str(error)) from None
