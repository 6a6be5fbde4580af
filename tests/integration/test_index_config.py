"""Index definitions from files: quantities, weights, and errors that name file and field."""

from decimal import Decimal
from pathlib import Path

import pytest

from solver.config.index_files import load_index_directory, load_index_file, parse_index
from solver.core.model import IndexDefinitionError

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "indexes"


def test_quantities_from_the_example_file():
    index = load_index_file(EXAMPLES / "SY3.toml")
    assert index.symbol == "SY3" and index.collateral == "USDC"
    assert [(c.asset, c.symbol, c.quantity) for c in index.constituents] == [
        ("BTC", "BTCUSDC", Decimal("0.0005")), ("ETH", "ETHUSDC", Decimal("0.01")),
        ("SOL", "SOLUSDC", Decimal("0.2"))]


def test_weights_become_quantities():
    index = load_index_file(EXAMPLES / "SYW.toml")
    # 1000 x 0.5 / 100000, 1000 x 0.3 / 4000, 1000 x 0.2 / 200
    assert [c.quantity for c in index.constituents] == [
        Decimal("0.005"), Decimal("0.075"), Decimal("1")]
    prices = {"BTC": Decimal(100000), "ETH": Decimal(4000), "SOL": Decimal(200)}
    assert index.price(prices) == Decimal(1000)


def test_directory_loads_every_file():
    assert [i.symbol for i in load_index_directory(EXAMPLES)] == ["SY2", "SY3", "SYW", "TB3"]


@pytest.mark.parametrize("text, field", [
    ('constituents = { BTC = "1" }', "collateral"),
    ('collateral = "USDC"', "constituents"),
    ('collateral = "USDC"\nconstituents = { BTC = "-1" }', "constituents.BTC.quantity"),
    ('collateral = "USDC"\nconstituents = { BTC = "abc" }', "constituents.BTC.quantity"),
    ('collateral = "USDC"\nconstituents = { BTC = 0.5 }', None),  # TOML float read exactly
    ('collateral = "USDC"\nconstituents = { BTC = { weight = "1", price = "5" } }',
     "initial_price"),
    ('collateral = "USDC"\ndecimals = 99\nconstituents = { BTC = "1" }', "decimals"),
    ('collateral = "USDC"\ncolour = "red"\nconstituents = { BTC = "1" }', "colour"),
    ('collateral = "USDC"\nconstituents = { BTC = { weight = "1" } }', "constituents.BTC"),
    ('collateral = "USDC"\ninitial_price = "1"\nconstituents = { BTC = "1", '
     'ETH = { weight = "1", price = "2" } }', "constituents"),
    ('collateral = "USDC"\nconstituents = [', "Invalid value"),
    # the door's bound: index units on the 18-decimal grid, numbers below 1E+24, 18 decimals
    ('collateral = "USDC"\ndecimals = 19\nconstituents = { BTC = "1" }', "decimals"),
    ('collateral = "USDC"\ndecimals = 36\nconstituents = { BTC = "1" }', "decimals"),
    ('collateral = "USDC"\nconstituents = { BTC = "1.' + "0" * 61 + '1" }',
     "constituents.BTC.quantity: must have at most 18 decimals"),
    ('collateral = "USDC"\nconstituents = { BTC = "1e400" }',
     "constituents.BTC.quantity: must be below 1E+24"),
    ('collateral = "USDC"\ninitial_price = "1e23"\n'
     'constituents = { BTC = { weight = "1", price = "0.01" } }',
     "constituents.BTC: initial_price x weight / price must be below 1E+24"),
    ('collateral = "USDC"\ninitial_price = "1"\n'
     'constituents = { BTC = { weight = "1", price = "1e23" } }',
     "constituents.BTC: initial_price x weight / price rounds to zero"),
])
def test_bad_definitions_name_the_file_and_field(tmp_path, text, field):
    path = tmp_path / "BAD.toml"
    path.write_text(text)
    if field is None:
        assert load_index_file(path).constituents[0].quantity == Decimal("0.5")
        return
    with pytest.raises(IndexDefinitionError) as error:
        load_index_file(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_floats_given_programmatically_are_refused():
    with pytest.raises(IndexDefinitionError, match=r"constituents\.BTC\.quantity"):
        parse_index("X", {"collateral": "USDC", "constituents": {"BTC": 0.1}}, "test")
