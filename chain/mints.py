"""What the settler remembers from the events: the mints asked for and not yet done, and the
orders they are for.

Pure data folded from the events (no web3 here), so it is checkpointed with the engine's
snapshots and follows the bus from the start, before the node is reached: the mints asked for
meanwhile are waiting when the settler attaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from solver.core import events as ev
from solver.core.orders import OrderSnapshot
from solver.core.signed_terms import SignedTerms


@dataclass(frozen=True, slots=True)
class Mint:
    order_id: int
    attempt: int
    units: Decimal


class MintsWaiting:
    NAME: ClassVar[str] = "chain.mints"
    """What it is checkpointed under with the engine's snapshots (``Runtime.resume``)."""

    def __init__(self) -> None:
        self.waiting: dict[int, Mint] = {}
        """Per order, the mint asked for last and neither done nor put off for a retry."""
        self.orders: dict[int, OrderSnapshot] = {}
        """The completed orders with units, until minted: what a settlement charges and for
        whom."""
        self.terms: dict[int, SignedTerms] = {}
        """What the wallet signed for each of those orders that was signed: the vault checks
        the settlement against it."""

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        for envelope in transaction.events:
            event = envelope.event
            if isinstance(event, ev.IndexOrderCompleted) and event.order.filled_units:
                self.orders[event.order_id] = event.order
            elif isinstance(event, ev.MintRequested):
                self.waiting[event.order_id] = Mint(event.order_id, 1, event.units)
                self._keep_terms(event.order_id, event.signed)
            elif isinstance(event, ev.MintRetryRequested):
                self.waiting[event.order_id] = Mint(event.order_id, event.attempt, event.units)
                self._keep_terms(event.order_id, event.signed)
            elif isinstance(event, ev.MintRetryScheduled):
                self.waiting.pop(event.order_id, None)  # the clock asks again
            elif isinstance(event, ev.IndexOrderMinted | ev.IndexOrderMintRefused):
                self.waiting.pop(event.order_id, None)
                self.orders.pop(event.order_id, None)
                self.terms.pop(event.order_id, None)

    def _keep_terms(self, order_id: int, signed: SignedTerms | None) -> None:
        if signed is not None:
            self.terms[order_id] = signed
