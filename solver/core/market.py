"""What the core knows of an exchange market: its trading rules and its order book."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solver.core.money import MAX_AMOUNT, ONE, ZERO, ceil_to, floor_to, plain


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class OrderBook:
    """A snapshot: asks best (lowest) first, bids best (highest) first."""

    symbol: str
    asks: tuple[Level, ...]
    bids: tuple[Level, ...] = ()

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    def is_well_formed(self) -> bool:
        """Positive levels below ``MAX_AMOUNT``, strictly sorted best first on each side."""
        levels = self.asks + self.bids
        if not all(x.is_finite() and 0 < x < MAX_AMOUNT
                   for lv in levels for x in (lv.price, lv.quantity)):
            return False
        asks_sorted = all(a.price < b.price for a, b in zip(self.asks, self.asks[1:], strict=False))
        bids_sorted = all(a.price > b.price for a, b in zip(self.bids, self.bids[1:], strict=False))
        return asks_sorted and bids_sorted


CHECKED_FILTERS = ("tick_size", "step_size", "min_qty", "min_notional")
"""The filters the engine sizes orders by, which must be the exchange's own."""


@dataclass(frozen=True, slots=True)
class MarketRules:
    """The exchange filters of one symbol (a zero bound disables its check)."""

    symbol: str
    asset: str
    quote: str
    tick_size: Decimal = ZERO
    step_size: Decimal = ZERO
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    min_notional: Decimal = ZERO

    def differences(self, theirs: MarketRules | None) -> str | None:
        """How the exchange's rules for this symbol differ from ours, in words; None if
        they do not (every order would fail on filters the exchange does not have)."""
        if theirs is None:
            return f"{self.symbol}: not listed on the exchange"
        differ = [f for f in CHECKED_FILTERS if getattr(theirs, f) != getattr(self, f)]
        if not differ:
            return None
        return f"{self.symbol}: the exchange's " + ", ".join(
            f"{f} is {plain(getattr(theirs, f))}, ours {plain(getattr(self, f))}" for f in differ)

    def buy_quantity(self, wanted: Decimal) -> Decimal:
        """``wanted`` floored to the step and trimmed to the maximum; never rounded up."""
        quantity = floor_to(wanted, self.step_size)
        if self.max_qty and quantity > self.max_qty:
            quantity = floor_to(self.max_qty, self.step_size)
        return quantity

    def min_buy_quantity(self, price: Decimal) -> Decimal:
        """The least quantity a buy at ``price`` can have: on the step, at least ``min_qty``
        and worth at least ``min_notional`` (zero: any quantity above zero)."""
        least = max(self.min_qty, self.min_notional / price if price > 0 else ZERO)
        return max(ceil_to(least, self.step_size), self.step_size)

    def describe(self) -> str:
        """The quantity filters in words, for a reason a person reads."""
        named = (("step", self.step_size), ("min qty", self.min_qty),
                 ("max qty", self.max_qty), ("min notional", self.min_notional))
        return ", ".join(f"{name} {plain(value)}" for name, value in named if value) \
            or "no quantity filters"

    def filter_failure(self, price: Decimal, quantity: Decimal) -> str | None:
        """The name of the first filter an order would fail, as the exchange names it."""
        if price <= 0 or (self.tick_size and price % self.tick_size):
            return "PRICE_FILTER"
        if quantity <= 0 or (self.step_size and quantity % self.step_size):
            return "LOT_SIZE"
        if quantity < self.min_qty or (self.max_qty and quantity > self.max_qty):
            return "LOT_SIZE"
        if price * quantity < self.min_notional:
            return "NOTIONAL"
        return None


@dataclass(frozen=True, slots=True)
class Liquidity:
    """What a taker buy limited to ``limit`` can take: ``quantity`` from the asks."""

    limit: Decimal
    quantity: Decimal


def buy_liquidity(
    book: OrderBook, rules: MarketRules, tolerance: Decimal, max_levels: int
) -> Liquidity | None:
    """Asks at or below best ask x (1 + tolerance), within ``max_levels`` levels, and less than
    ``MAX_AMOUNT`` in all: the engine records no trade of that size, so none is planned.

    The limit is floored to the tick so that it never exceeds the tolerance; when more levels
    than ``max_levels`` are within it, the limit moves down to the last level counted so that
    the order cannot walk further than that.
    """
    best = book.best_ask
    if best is None:
        return None
    limit = max(best, floor_to(best * (ONE + tolerance), rules.tick_size))
    counted = [level for level in book.asks if level.price <= limit][:max_levels]
    if len(counted) == max_levels and len(book.asks) > max_levels \
            and book.asks[max_levels].price <= limit:
        limit = counted[-1].price
    total = sum((level.quantity for level in counted), ZERO)
    return Liquidity(limit, min(total, MAX_AMOUNT - ONE))
