"""What a user's wallet signed for an order, as the engine keeps it.

The gateway checks the signature (EIP-712, ``solver/signed_orders.py`` has the type) before the
order reaches the engine, and the vault checks it again at settlement, where a fill outside
the terms is skipped and never minted. So the engine keeps the terms with the order, never
engages it past them (its limit with the fee reserve, its deadline less the time a settlement
takes), allocates it no fill they would not allow, and hands them to the settlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solver.core.money import ONE

BPS = 10_000


@dataclass(frozen=True, slots=True)
class SignedTerms:
    wallet: str
    """The wallet that signed: the order's account's, charged and minted to."""
    name: str
    """The order's first ClOrdID, which the wallet signed: with the wallet it names the order
    on-chain, and every fill of the order is charged against it."""
    most: Decimal
    """The most collateral charged against the order in all, fees included."""
    limit: Decimal
    """The most collateral per index unit, fees included."""
    max_fee_bps: int
    """Fees at most this many basis points of each charge."""
    deadline_s: int
    """Unix seconds: no fill settles after it."""
    signature: str
    """0x and the 65 bytes (r, s, v) in hex."""

    @property
    def deadline_ms(self) -> int:
        return self.deadline_s * 1000

    def price_bound(self, fee_reserve: Decimal) -> Decimal:
        """The most a unit may cost before fees, so that with the fee reserve it stays
        within the limit."""
        return self.limit / (ONE + fee_reserve)

    def allows(self, units: Decimal, cost: Decimal, fees: Decimal) -> bool:
        """Whether a fill of ``units`` charged ``cost`` (fees included, ``fees`` of it) is one
        the vault settles: within the limit price and the fee bound, exactly as it checks."""
        return cost <= units * self.limit and fees * BPS <= cost * min(self.max_fee_bps, BPS)
