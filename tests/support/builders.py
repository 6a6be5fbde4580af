"""Small builders for tests: an index, its markets and books, an engine fed with them."""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import settings

from solver.core.commands import BookUpdated, DepositConfirmed, PlanBatch, SubmitIndexOrder
from solver.core.engine import Engine
from solver.core.events import Transaction
from solver.core.fitting import Market
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Constituent, Index
from solver.core.params import SolverParams

D = Decimal
MUTATION_RUN = "MUTANT_UNDER_TEST" in os.environ

def examples(n: int) -> int:
    """``n`` examples, or the mutation profile's (``tests/conftest.py``) in a mutation run."""
    return settings.get_profile("mutation").max_examples if MUTATION_RUN else n


def index(symbol: str = "SY2", **quantities: str) -> Index:
    quantities = quantities or {"A1": "8", "A2": "1"}
    return Index(symbol, "USDC", tuple(Constituent(a, f"{a}USDC", D(q))
                                       for a, q in quantities.items()))


def rules(asset: str, tick: str = "0.01", step: str = "0.001", min_qty: str = "0",
          min_notional: str = "0", max_qty: str = "0") -> MarketRules:
    return MarketRules(f"{asset}USDC", asset, "USDC", D(tick), D(step), D(min_qty), D(max_qty),
                       D(min_notional))


def book(asset: str, *asks: tuple[str, str]) -> OrderBook:
    return OrderBook(f"{asset}USDC", tuple(Level(D(p), D(q)) for p, q in asks))


def market(asset: str, *asks: tuple[str, str], **rule_args: str) -> Market:
    return Market(rules(asset, **rule_args), book(asset, *asks))


def params(**values: object) -> SolverParams:
    base: dict[str, object] = {"price_tolerance": D(0), "fee_reserve": D(0),
                               "dust_threshold": D("0.01")}
    base.update(values)
    return SolverParams(**base)  # type: ignore[arg-type]


class Desk:
    """An engine with a clock; every input gets the next millisecond."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = 0
        self.transactions: list[Transaction] = []

    def apply(self, command_type: type, *args: object, **kwargs: object) -> Transaction:
        self.now += 1
        transaction = self.engine.apply(command_type(self.now, *args, **kwargs))
        self.transactions.append(transaction)
        return transaction

    def deposit(self, account: str, amount: str) -> Transaction:
        return self.apply(DepositConfirmed, f"dep-{self.now}", account, "USDC", D(amount))

    def order(self, account: str, order_id: str, amount: str, **kwargs: object) -> Transaction:
        return self.apply(SubmitIndexOrder, account, order_id, kwargs.pop("index", "SY2"),
                          D(amount), **kwargs)

    def books(self, *books: OrderBook) -> None:
        for b in books:
            self.apply(BookUpdated, b)

    def plan(self) -> Transaction:
        return self.apply(PlanBatch)


def desk(idx: Index | None = None, markets: list[Market] | None = None,
         solver_params: SolverParams | None = None) -> Desk:
    idx = idx or index()
    markets = markets or [market("A1", ("100", "1000")), market("A2", ("200", "1000"))]
    d = Desk(Engine([idx], [m.rules for m in markets], solver_params or params()))
    d.books(*(m.book for m in markets))
    return d
