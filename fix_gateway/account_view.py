"""What each account's orders and balances are as of the last transaction published: a read
model kept from the events (the order snapshots and balances they carry).

The gateway answers status requests and collateral inquiries from it, never from the engine's
live state. At start-up it is its checkpoint fed the journal's transactions since
(``Runtime.resume``), and then it moves on with each transaction the bus publishes, all of a
transaction at once.
"""

from __future__ import annotations

from typing import ClassVar

from solver.core import events as ev
from solver.core.ledger import Balance
from solver.core.orders import OrderSnapshot


class AccountView:
    NAME: ClassVar[str] = "fix.accounts"
    """What it is checkpointed under with the engine's snapshots (``Runtime.resume``)."""

    def __init__(self, transaction: int = 0) -> None:
        self.transaction = transaction
        """The last transaction this view includes."""
        self._orders: dict[int, OrderSnapshot] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._balances: dict[tuple[str, str], Balance] = {}

    # --- queries ---------------------------------------------------------------------------

    def order(self, account: str, client_id: str) -> OrderSnapshot | None:
        """The order ``client_id`` names for ``account``: its own id or an accepted change's."""
        order_id = self._ids.get((account, client_id))
        return None if order_id is None else self._orders[order_id]

    def open_orders(self, account: str, index: str | None = None) -> list[OrderSnapshot]:
        return [o for o in self._orders.values() if o.account == account and o.is_open
                and index in (None, o.index)]

    def balance(self, account: str, asset: str) -> Balance:
        return self._balances.get((account, asset), Balance())

    # --- the bus -----------------------------------------------------------------------------

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        for envelope in transaction.events:
            self._apply(envelope.event)
        self.transaction = transaction.number

    def _apply(self, event: ev.Event) -> None:
        match event:
            case (ev.CollateralDeposited() | ev.CollateralReserved() | ev.CollateralSpent()
                  | ev.CollateralReleased() | ev.CollateralSetAside() | ev.CollateralGivenBack()
                  | ev.CollateralWithdrawn() | ev.CollateralRefunded()):
                self._balances[(event.account, event.asset)] = event.balance
            case ev.IndexOrderAccepted():
                self._ids[(event.account, event.client_order_id)] = event.order_id
                self._orders[event.order_id] = event.order
            case ev.IndexOrderReduced() | ev.IndexOrderEndPending() | ev.IndexOrderCompleted():
                if event.request_id:  # an accepted request's id names the order from now on
                    self._ids[(event.order.account, event.request_id)] = event.order_id
                self._orders[event.order_id] = event.order
            case ev.IndexOrderFilled() | ev.IndexOrderMinted() | ev.IndexOrderMintRestated():
                self._orders[event.order_id] = event.order
            case ev.IndexOrderMintRefused():
                self._orders[event.order_id] = event.order
