"""The ledger's side of what the vault holds for each user, from the events: deposits credited,
payouts, and what each minted order's settlement charged.

Pure data folded from the events (no web3 here), so it is checkpointed with the engine's
snapshots and follows the bus from the start; the reconciler reads it against the vault.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from solver.core import events as ev
from solver.core.money import ZERO


class LedgerSide:
    NAME: ClassVar[str] = "chain.ledger_side"
    """What it is checkpointed under with the engine's snapshots (``Runtime.resume``)."""

    def __init__(self) -> None:
        self.credited: dict[tuple[str, str], Decimal] = {}
        """Per (account, collateral), what its deposits credited."""
        self.withdrawn: dict[tuple[str, str], Decimal] = {}
        self.charged: dict[tuple[str, str], Decimal] = {}
        self.minted: set[int] = set()
        """The orders whose settlement the engine has applied."""

    def held(self, account: str, asset: str) -> Decimal:
        """What the vault of ``asset`` should hold for ``account``."""
        key = (account, asset)
        return (self.credited.get(key, ZERO) - self.withdrawn.get(key, ZERO)
                - self.charged.get(key, ZERO))

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        for envelope in transaction.events:
            event = envelope.event
            if isinstance(event, ev.CollateralDeposited):
                self.credited[event.account, event.asset] = event.balance.deposited
            elif isinstance(event, ev.CollateralWithdrawn):
                self.withdrawn[event.account, event.asset] = event.balance.withdrawn
            elif isinstance(event, ev.IndexOrderMinted):
                order = event.order
                self.minted.add(order.order_id)
                key = (order.account, order.collateral_asset)
                self.charged[key] = self.charged.get(key, ZERO) + order.spent
