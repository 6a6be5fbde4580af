"""What the engine decided: past-tense events, delivered in transactions.

Events that ask the outside world to act (``AssetOrderRequested``, ``MintRequested``,
``MintRetryRequested``) are events too; adapters subscribe to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from solver.core.commands import AssetOrderOutcome, Input, VaultFact
from solver.core.fitting import Engagement
from solver.core.inventory import Assignment
from solver.core.ledger import Balance
from solver.core.model import Side
from solver.core.orders import CancelRejectReason, OrderSnapshot, OrderStatus, RejectReason
from solver.core.signed_terms import SignedTerms


@dataclass(frozen=True, slots=True)
class Event:
    pass


Kind = TypeVar("Kind", bound=Event, covariant=True)


# --- collateral ----------------------------------------------------------------------------


# Each carries the account's balance of the asset after it (what a report says then).


@dataclass(frozen=True, slots=True)
class CollateralDeposited(Event):
    account: str
    asset: str
    amount: Decimal
    deposit_id: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class CollateralReserved(Event):
    account: str
    asset: str
    amount: Decimal
    order_id: int
    balance: Balance


@dataclass(frozen=True, slots=True)
class CollateralSpent(Event):
    account: str
    asset: str
    amount: Decimal
    fees: Decimal
    order_id: int
    balance: Balance


@dataclass(frozen=True, slots=True)
class CollateralReleased(Event):
    account: str
    asset: str
    amount: Decimal
    order_id: int
    balance: Balance


@dataclass(frozen=True, slots=True)
class CollateralRefunded(Event):
    """What an order spent and the vault never charged (it refused the settlement for good)."""

    account: str
    asset: str
    amount: Decimal
    fees: Decimal
    order_id: int
    balance: Balance


# --- the vault: wallets, held deposits, withdrawals -----------------------------------------


@dataclass(frozen=True, slots=True)
class WalletBound(Event):
    wallet: str
    account: str


@dataclass(frozen=True, slots=True)
class DepositHeld(Event):
    """A deposit from a wallet no account has: kept, credited when the wallet is bound."""

    deposit_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WithdrawalAsked(Event):
    """A user asked the vault for collateral back (``account`` None: a wallet without one)."""

    request_id: str
    wallet: str
    account: str | None
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CollateralSetAside(Event):
    """Available collateral kept for a withdrawal: no order may use it."""

    account: str
    asset: str
    amount: Decimal
    request_id: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class CollateralGivenBack(Event):
    """A withdrawal replaced by a newer request gives back what was set aside for it."""

    account: str
    asset: str
    amount: Decimal
    request_id: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class WithdrawalReleaseRequested(Event):
    """Nothing the solver holds stands against this withdrawal: the chain adapter asks the
    vault to pay it now (``release``) instead of after the delay."""

    request_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CollateralWithdrawn(Event):
    account: str
    asset: str
    amount: Decimal
    payout_id: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class HeldDepositsWithdrawn(Event):
    payout_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VaultOverpaid(Event):
    """The vault paid a user more than the ledger could account for: an alarm for the
    operator (the ledger and the vault no longer agree)."""

    payout_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VaultCaughtUp(Event):
    """Every deposit up to the chain's confirmed head at start is known."""

    block: int


@dataclass(frozen=True, slots=True)
class AccountInDoubt(Event):
    """A vault event the engine applied left the chain in a deep reorganisation: an alarm
    for the operator; the account (None: a wallet without one) gets no new orders until the
    fact is mined again or resolved."""

    fact_id: str
    kind: VaultFact
    wallet: str
    account: str | None
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VanishedFactReappeared(Event):
    """The vanished fact was mined again: nothing to undo, the account trades again."""

    fact_id: str
    account: str | None


@dataclass(frozen=True, slots=True)
class VanishedFactResolved(Event):
    """An operator undid the vanished fact's effect on the ledger."""

    fact_id: str
    kind: VaultFact
    account: str | None
    asset: str
    amount: Decimal


# --- index orders --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexOrderAccepted(Event):
    order_id: int
    account: str
    client_order_id: str
    index: str
    collateral: Decimal
    order: OrderSnapshot
    """The order as of this event (every order event carries it; reports are made from it)."""


@dataclass(frozen=True, slots=True)
class IndexOrderRejected(Event):
    account: str
    client_order_id: str
    reason: RejectReason
    text: str


@dataclass(frozen=True, slots=True)
class IndexOrderReduced(Event):
    order_id: int
    collateral: Decimal
    released: Decimal
    order: OrderSnapshot
    request_id: str = ""
    reason: str = ""
    """Why, when the user did not ask (a withdrawal)."""


@dataclass(frozen=True, slots=True)
class IndexOrderEndPending(Event):
    """A cancel or expiry waits for the order's in-flight batch to settle."""

    order_id: int
    ending: OrderStatus
    order: OrderSnapshot
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class CancelRejected(Event):
    account: str
    client_order_id: str
    reason: CancelRejectReason
    text: str
    order: OrderSnapshot | None
    """The order the request named, if there is one."""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class IndexOrderFilled(Event):
    """A partial fill: ``units`` at ``price`` per unit (asset VWAPs plus fees) from one batch."""

    order_id: int
    batch_id: int
    units: Decimal
    price: Decimal
    cost: Decimal
    fees: Decimal
    filled_units: Decimal
    spent: Decimal
    remaining: Decimal
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class IndexOrderCompleted(Event):
    """The order is closed; ``request_id`` names the cancel request that closed it, if any,
    and ``reason`` says why, in words, when the solver closed it."""

    order_id: int
    status: OrderStatus
    filled_units: Decimal
    spent: Decimal
    released: Decimal
    order: OrderSnapshot
    request_id: str = ""
    reason: str = ""


# --- quotes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteIssued(Event):
    quote_id: str
    index: str
    collateral: Decimal
    index_price: Decimal
    units: Decimal


@dataclass(frozen=True, slots=True)
class QuoteRejected(Event):
    quote_id: str
    index: str
    text: str


# --- batches, asset orders, inventory ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchPlanned(Event):
    batch_id: int
    engagements: tuple[Engagement, ...]
    index_prices: tuple[tuple[str, Decimal], ...]
    inventory_used: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class BatchNotPlanned(Event):
    """A plan found no batch for the ``waiting`` orders: ``buyable`` of them could be bought
    alone at their limits; ``reason`` says what stopped each collateral's orders."""

    waiting: int
    buyable: int
    reason: str


@dataclass(frozen=True, slots=True)
class AssetOrderRequested(Event):
    """Send a LIMIT IOC order; ``client_order_id`` is unique for the life of the journal."""

    asset_order_id: int
    client_order_id: str
    batch_id: int
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class LotOpened(Event):
    lot_id: str
    asset: str
    asset_order_id: int
    batch_id: int
    price: Decimal
    quantity: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class FeeAssetCredited(Event):
    funding_id: str
    asset: str
    quantity: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class CommissionDebited(Event):
    """A trade's commission was paid in a third asset: ``quantity`` left the house's balance
    of it; ``value`` is what the lot's orders are charged for it in the collateral, None when
    no book priced it (the house bears it)."""

    lot_id: str
    asset: str
    quantity: Decimal
    value: Decimal | None
    balance: Decimal


@dataclass(frozen=True, slots=True)
class AssetOrderClosed(Event):
    asset_order_id: int
    outcome: AssetOrderOutcome
    executed_quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class BatchSettled(Event):
    """The batch's lots were allocated: units per order, each asset's pool VWAP, and every
    lot quantity given to an order (the per-lot record of the allocation)."""

    batch_id: int
    filled_units: tuple[tuple[int, Decimal], ...]
    vwaps: tuple[tuple[str, Decimal], ...]
    assignments: tuple[Assignment, ...] = ()


@dataclass(frozen=True, slots=True)
class InputIgnored(Event):
    """A fact that does not apply (unknown id, duplicate delivery); nothing changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class InputFailed(Event):
    """Applying the input failed (a defect, not a user's request refused: that is a
    ``Refusal`` and its reject event): it had no effect beyond what its handler did before
    failing, and the writer went on with the next."""

    reason: str


InputRefused = InputFailed
"""The name journals written before it was ``InputFailed`` use (they decode by name)."""


# --- mints ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintRequested(Event):
    order_id: int
    account: str
    wallet: str
    index: str
    units: Decimal
    signed: SignedTerms | None = None
    """What the wallet signed: the settlement hands it to the vault, which checks it."""


@dataclass(frozen=True, slots=True)
class MintRetryRequested(Event):
    """Mint again after a failure; the chain adapter checks by order id first."""

    order_id: int
    account: str
    wallet: str
    index: str
    units: Decimal
    attempt: int
    signed: SignedTerms | None = None


@dataclass(frozen=True, slots=True)
class MintRetryScheduled(Event):
    order_id: int
    attempt: int
    retry_at: int
    reason: str


@dataclass(frozen=True, slots=True)
class IndexOrderMinted(Event):
    order_id: int
    units: Decimal
    tx_hash: str
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class IndexOrderMintRefused(Event):
    """The vault will never settle the order as its wallet signed it (its deadline passed, it
    was cancelled on-chain, ...): nothing was charged or minted. Its ``units`` go back to the
    house's free inventory and what it spent, ``refunded``, back to the account."""

    order_id: int
    units: Decimal
    refunded: Decimal
    reason: str
    lots: tuple[tuple[str, Decimal], ...]
    """Each lot given back and how much of it."""
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class IndexOrderMintRestated(Event):
    """The order's settlement moved to another transaction after a deep reorganisation."""

    order_id: int
    previous_tx: str
    tx_hash: str
    order: OrderSnapshot


# --- envelopes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope(Generic[Kind]):
    """An event with its global sequence number and the time of the input that caused it;
    ``Envelope[IndexOrderFilled]`` holds an ``IndexOrderFilled``."""

    seq: int
    ts: int
    event: Kind


@dataclass(frozen=True, slots=True)
class Transaction:
    """One input and everything it caused; consumers commit at its boundary."""

    number: int
    ts: int
    input: Input
    events: tuple[Envelope[Event], ...]

    def of_type(self, kind: type[E]) -> list[E]:
        return [e.event for e in self.events if isinstance(e.event, kind)]


E = TypeVar("E", bound=Event)
