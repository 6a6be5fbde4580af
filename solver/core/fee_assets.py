"""The house's balances of the assets an exchange takes commission in, other than the traded
pair's own (Binance's BNB): the operator funds them, each such commission is debited here.

A commission paid in a third asset is charged to the index orders at that asset's best ask in
the collateral when the engine has its book; when it has not, no order can be charged for it,
and the quantity is counted as ``unvalued`` so that the house's cost is never lost from sight.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solver.core.money import ZERO


@dataclass(slots=True)
class FeeAsset:
    funded: Decimal = ZERO
    paid: Decimal = ZERO
    unvalued: Decimal = ZERO
    """The part of ``paid`` charged to no order: no book priced it."""

    @property
    def balance(self) -> Decimal:
        """What the house should hold; below zero, commissions outran the funding."""
        return self.funded - self.paid
