"""The engine's state: plain data in one place, which every handler takes and changes, and the
few questions asked of it everywhere. It pickles whole into a snapshot."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from solver.core import events as ev
from solver.core.batches import AssetOrder, Batch
from solver.core.custody import Custody
from solver.core.fee_assets import FeeAsset
from solver.core.fitting import Market
from solver.core.inventory import Inventory
from solver.core.ledger import Balance, CollateralLedger
from solver.core.market import MarketRules, OrderBook
from solver.core.model import Collateral, Index
from solver.core.money import ZERO
from solver.core.orders import IndexOrder
from solver.core.params import SolverParams, setting_problems

Events = list[ev.Event]
_CLIENT_ORDER_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,16}")


@dataclass(slots=True)
class State:
    indexes: dict[str, Index]
    rules: dict[str, MarketRules]
    """Per asset, its market's exchange filters."""
    params: SolverParams
    collaterals: dict[str, Collateral]
    client_order_prefix: str
    """Starts every exchange client order id: the journal makes one per deployment, so that
    ids stay unique even across journals."""
    assets_by_symbol: dict[str, str]
    books: dict[str, OrderBook] = field(default_factory=dict)
    ledger: CollateralLedger = field(default_factory=CollateralLedger)
    inventory: Inventory = field(default_factory=Inventory)
    orders: dict[int, IndexOrder] = field(default_factory=dict)
    batches: dict[int, Batch] = field(default_factory=dict)
    asset_orders: dict[int, AssetOrder] = field(default_factory=dict)
    last_served: dict[str, int] = field(default_factory=dict)
    """Per index, the last batch that engaged an order of it: indexes take turns."""
    order_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    """(account, client id) -> order id, for the order's own id and each accepted change's."""
    open: dict[int, IndexOrder] = field(default_factory=dict)
    deposit_ids: set[str] = field(default_factory=set)
    custody: Custody = field(default_factory=Custody)
    fee_assets: dict[str, FeeAsset] = field(default_factory=dict)
    fundings: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, indexes: Iterable[Index], markets: Iterable[MarketRules],
           params: SolverParams | None = None, collaterals: Iterable[Collateral] = (),
           client_order_prefix: str = "ixs") -> State:
        """A new state; raises ``ValueError`` on a setup that can never work."""
        if not _CLIENT_ORDER_PREFIX.fullmatch(client_order_prefix):
            raise ValueError(f"client order prefix {client_order_prefix!r}: use 1 to 16 of "
                             "A-Z a-z 0-9 _ - (Binance allows 36 characters in all)")
        params = params or SolverParams()
        by_symbol = {i.symbol: i for i in indexes}
        rules = {m.asset: m for m in markets}
        known = {c.asset: c for c in collaterals}
        for index in by_symbol.values():
            known.setdefault(index.collateral, Collateral(index.collateral))
            for c in index.constituents:
                market = rules.get(c.asset)
                if market is None or market.quote != index.collateral:
                    raise ValueError(f"index {index.symbol}: {c.asset} needs a market quoted "
                                     f"in {index.collateral}")
        problems = setting_problems(params, {a: c.decimals for a, c in known.items()}, {})
        if problems:
            raise ValueError(problems[0])
        return cls(by_symbol, rules, params, known, client_order_prefix,
                   {m.symbol: m.asset for m in rules.values()})

    def order(self, account: str, client_order_id: str) -> IndexOrder | None:
        order_id = self.order_ids.get((account, client_order_id))
        return None if order_id is None else self.orders[order_id]


    def order_names(self) -> list[tuple[tuple[str, str], int]]:
        """((account, client id), order id) for every id that names an order: the order's own
        and each accepted change's."""
        return list(self.order_ids.items())


    def open_orders(self) -> list[IndexOrder]:
        return list(self.open.values())


    def inflight_notional(self) -> Decimal:
        return sum((o.notional for o in self.asset_orders.values()
                    if not self.batches[o.batch_id].settled), ZERO)


    def markets(self) -> dict[str, Market]:
        return {a: Market(self.rules[a], book) for a, book in self.books.items()}


    def balance_of(self, order: IndexOrder) -> Balance:
        return self.ledger.balance(order.account, order.collateral_asset)
