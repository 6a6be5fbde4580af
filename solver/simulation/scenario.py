"""Scenarios for ``index-solver simulate``: read from JSON, TOML or YAML, numbers as Decimal.

Every problem is a ``ConfigError`` whose message starts with the key at fault, e.g.
``markets.BTC.asks[2]: price must be greater than zero``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from solver.config.fields import (
    ConfigError,
    expect_list,
    expect_number,
    expect_table,
    expect_text,
    expect_whole,
    read_file,
    reject_unknown,
)
from solver.config.index_files import parse_index
from solver.config.market_files import MarketSpec, levels, parse_markets
from solver.core.market import OrderBook
from solver.core.model import Index, IndexDefinitionError
from solver.core.money import AMOUNT_DECIMALS
from solver.core.params import SolverParams, setting_problems


@dataclass(frozen=True, slots=True)
class OrderSpec:
    account: str
    id: str
    index: str
    collateral: Decimal
    max_price: Decimal | None


@dataclass(frozen=True, slots=True)
class CancelSpec:
    account: str
    id: str
    after_batch: int


@dataclass(frozen=True, slots=True)
class ReductionSpec:
    """Lower an order's collateral to ``collateral`` after batch ``after_batch``."""

    account: str
    id: str
    collateral: Decimal
    after_batch: int


@dataclass(frozen=True, slots=True)
class WithdrawalSpec:
    """The account asks the vault for ``amount`` of ``asset`` back after batch
    ``after_batch``; the simulated vault pays what the solver releases."""

    account: str
    asset: str
    amount: Decimal
    after_batch: int


@dataclass(frozen=True, slots=True)
class BookChange:
    """The market of ``asset`` moves to ``book`` after batch ``after_batch`` (and refills to
    it from then on, if it refills)."""

    asset: str
    book: OrderBook
    after_batch: int


@dataclass(frozen=True, slots=True)
class Scenario:
    params: SolverParams
    indexes: tuple[Index, ...]
    markets: Mapping[str, MarketSpec]
    deposits: tuple[tuple[str, str, Decimal], ...]
    """(account, collateral asset, amount)"""
    orders: tuple[OrderSpec, ...]
    cancels: tuple[CancelSpec, ...]
    quotes: tuple[tuple[str, Decimal], ...]
    collateral_decimals: Mapping[str, int]
    max_batches: int
    fee_funds: Mapping[str, Decimal] = field(default_factory=dict)
    """What the house holds of each third asset commissions are paid in, at the start."""
    reductions: tuple[ReductionSpec, ...] = ()
    withdrawals: tuple[WithdrawalSpec, ...] = ()
    book_changes: tuple[BookChange, ...] = ()


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(read_file(path))




def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    known = {"params", "indexes", "markets", "deposits", "orders", "cancels", "quotes",
             "collaterals", "max_batches", "fee_funds", "reductions", "withdrawals",
             "book_changes"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(known))})")
    for key in ("indexes", "markets", "deposits", "orders"):
        if key not in data:
            raise ConfigError(f"{key}: required")
    try:
        params = SolverParams.from_mapping(expect_table(data.get("params", {}), "params"))
    except ValueError as error:
        raise ConfigError(f"params.{error}") from None
    markets = parse_markets(expect_table(data["markets"], "markets"))
    indexes = _indexes(expect_table(data["indexes"], "indexes"), markets)
    collateral_decimals = _collaterals(expect_table(data.get("collaterals", {}),
                                                    "collaterals"), indexes)
    orders = _orders(expect_list(data["orders"], "orders"), {i.symbol for i in indexes})
    _check_params(params, markets, collateral_decimals)
    return Scenario(
        params=params,
        indexes=indexes,
        markets=markets,
        deposits=_deposits(expect_list(data["deposits"], "deposits"), indexes),
        orders=orders,
        cancels=_cancels(expect_list(data.get("cancels", []), "cancels")),
        quotes=_quotes(expect_list(data.get("quotes", []), "quotes")),
        collateral_decimals=collateral_decimals,
        max_batches=expect_whole(data.get("max_batches", 100_000), "max_batches", 1, 10**9),
        fee_funds={asset: expect_number(value, f"fee_funds.{asset}", positive_only=True)
                   for asset, value in expect_table(data.get("fee_funds", {}),
                                                    "fee_funds").items()},
        reductions=_reductions(expect_list(data.get("reductions", []), "reductions")),
        withdrawals=_withdrawals(expect_list(data.get("withdrawals", []), "withdrawals"),
                                 indexes),
        book_changes=_book_changes(expect_list(data.get("book_changes", []), "book_changes"),
                                   markets),
    )


def _indexes(table: Mapping[str, Any], markets: Mapping[str, MarketSpec]) -> tuple[Index, ...]:
    def symbol_of(asset: str, collateral: str) -> str:
        if asset not in markets:
            raise ConfigError(f"indexes: asset {asset} has no entry in markets")
        return markets[asset].rules.symbol

    indexes = []
    for symbol, spec in table.items():
        key = f"indexes.{symbol}"
        try:
            index = parse_index(symbol, expect_table(spec, key), key, symbol_of)
        except IndexDefinitionError as error:
            raise ConfigError(str(error)) from None
        _check_quotes(index, markets, key)
        indexes.append(index)
    if not indexes:
        raise ConfigError("indexes: at least one index is required")
    return tuple(indexes)


def _check_quotes(index: Index, markets: Mapping[str, MarketSpec], key: str) -> None:
    """Every constituent is bought with the index's collateral, so its market must quote it."""
    for c in index.constituents:
        quote = markets[c.asset].rules.quote
        if quote != index.collateral:
            raise ConfigError(f"{key}: constituents.{c.asset}: markets.{c.asset} is quoted in "
                                f"{quote}, not in the index's collateral {index.collateral}")


def _collaterals(table: Mapping[str, Any], indexes: tuple[Index, ...]) -> dict[str, int]:
    """Token decimals per collateral: 6 unless given, for the assets indexes are bought with."""
    decimals = {i.collateral: 6 for i in indexes}
    for asset, value in table.items():
        key = f"collaterals.{asset}"
        if asset not in decimals:
            raise ConfigError(f"{key}: no index is bought with {asset} (collaterals: "
                                f"{', '.join(sorted(decimals))})")
        decimals[asset] = expect_whole(value, key, 0, AMOUNT_DECIMALS)
    return decimals


def _deposits(items: list[Any], indexes: tuple[Index, ...]) -> tuple[tuple[str, str, Decimal], ...]:
    default = indexes[0].collateral
    collaterals = {i.collateral for i in indexes}
    deposits = []
    for n, item in enumerate(items):
        key = f"deposits[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"account", "amount", "asset"}, key)
        asset = expect_text(item.get("asset", default), f"{key}.asset")
        if asset not in collaterals:  # the engine would ignore it, and orders would find nothing
            raise ConfigError(f"{key}.asset: no index is bought with {asset} (collaterals: "
                                f"{', '.join(sorted(collaterals))})")
        deposits.append((expect_text(item.get("account"), f"{key}.account"), asset,
                         expect_number(item.get("amount"), f"{key}.amount", positive_only=True)))
    return tuple(deposits)


def _orders(items: list[Any], index_symbols: set[str]) -> tuple[OrderSpec, ...]:
    orders = []
    for n, item in enumerate(items):
        key = f"orders[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"account", "id", "index", "collateral", "max_price"}, key)
        max_price = item.get("max_price")
        orders.append(OrderSpec(
            account=expect_text(item.get("account"), f"{key}.account"),
            id=expect_text(item.get("id"), f"{key}.id"),
            # Unknown indexes and amounts finer than the collateral are the engine's to reject,
            # as a user would see; amounts beyond the door's bound are refused here, as the FIX
            # gateway refuses them at its door.
            index=expect_text(item.get("index"), f"{key}.index"),
            collateral=expect_number(item.get("collateral"), f"{key}.collateral"),
            max_price=None if max_price is None else expect_number(max_price, f"{key}.max_price"),
        ))
    return tuple(orders)


def _cancels(items: list[Any]) -> tuple[CancelSpec, ...]:
    cancels = []
    for n, item in enumerate(items):
        key = f"cancels[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"account", "id", "after_batch"}, key)
        cancels.append(CancelSpec(expect_text(item.get("account"), f"{key}.account"),
                                  expect_text(item.get("id"), f"{key}.id"),
                                  expect_whole(item.get("after_batch", 0), f"{key}.after_batch",
                                         0, 10**9)))
    return tuple(cancels)


def _quotes(items: list[Any]) -> tuple[tuple[str, Decimal], ...]:
    quotes = []
    for n, item in enumerate(items):
        key = f"quotes[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"index", "collateral"}, key)
        quotes.append((expect_text(item.get("index"), f"{key}.index"),
                       expect_number(item.get("collateral"), f"{key}.collateral")))
    return tuple(quotes)


def _after_batch(item: Mapping[str, Any], key: str) -> int:
    return expect_whole(item.get("after_batch", 0), f"{key}.after_batch", 0, 10**9)


def _reductions(items: list[Any]) -> tuple[ReductionSpec, ...]:
    reductions = []
    for n, item in enumerate(items):
        key = f"reductions[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"account", "id", "collateral", "after_batch"}, key)
        reductions.append(ReductionSpec(
            expect_text(item.get("account"), f"{key}.account"),
            expect_text(item.get("id"), f"{key}.id"),
            expect_number(item.get("collateral"), f"{key}.collateral"),
            _after_batch(item, key)))
    return tuple(reductions)


def _withdrawals(items: list[Any], indexes: tuple[Index, ...]) -> tuple[WithdrawalSpec, ...]:
    collaterals = {i.collateral for i in indexes}
    withdrawals = []
    for n, item in enumerate(items):
        key = f"withdrawals[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"account", "asset", "amount", "after_batch"}, key)
        asset = expect_text(item.get("asset", indexes[0].collateral), f"{key}.asset")
        if asset not in collaterals:
            raise ConfigError(f"{key}.asset: no index is bought with {asset} (collaterals: "
                              f"{', '.join(sorted(collaterals))})")
        withdrawals.append(WithdrawalSpec(
            expect_text(item.get("account"), f"{key}.account"), asset,
            expect_number(item.get("amount"), f"{key}.amount", positive_only=True),
            _after_batch(item, key)))
    return tuple(withdrawals)


def _book_changes(items: list[Any], markets: Mapping[str, MarketSpec]) -> tuple[BookChange, ...]:
    changes = []
    for n, item in enumerate(items):
        key = f"book_changes[{n}]"
        item = expect_table(item, key)
        reject_unknown(item, {"market", "asks", "bids", "after_batch"}, key)
        asset = expect_text(item.get("market"), f"{key}.market")
        if asset not in markets:
            raise ConfigError(f"{key}.market: no market {asset} (markets: "
                              f"{', '.join(sorted(markets))})")
        symbol = markets[asset].rules.symbol
        book = OrderBook(symbol, levels(item.get("asks", []), f"{key}.asks", ascending=True),
                         levels(item.get("bids", []), f"{key}.bids", ascending=False))
        changes.append(BookChange(asset, book, _after_batch(item, key)))
    return tuple(changes)


def _check_params(params: SolverParams, markets: Mapping[str, MarketSpec],
                  collateral_decimals: Mapping[str, int]) -> None:
    """Refuse settings that can never work (``params.setting_problems``)."""
    problems = setting_problems(
        params, collateral_decimals,
        {spec.rules.symbol: spec.fee_rate for spec in markets.values()})
    if problems:
        raise ConfigError(problems[0])
