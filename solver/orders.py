"""Index orders: their state, and the reasons a request about one can be refused."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from solver.money import MAX_AMOUNT, MAX_AMOUNT_TEXT, ZERO, decimal_places


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"


class MintStatus(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    RETRY_WAIT = "retry_wait"
    MINTED = "minted"


class RejectReason(StrEnum):
    UNKNOWN_INDEX = "unknown_index"
    UNSUPPORTED_SIDE = "unsupported_side"
    WRONG_CURRENCY = "wrong_currency"
    INVALID_AMOUNT = "invalid_amount"
    TOO_PRECISE = "too_precise"
    BELOW_MINIMUM = "below_minimum"
    INVALID_PRICE = "invalid_price"
    ALREADY_EXPIRED = "already_expired"
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    DUPLICATE_ORDER_ID = "duplicate_order_id"


class CancelRejectReason(StrEnum):
    UNKNOWN_ORDER = "unknown_order"
    ALREADY_CLOSED = "already_closed"
    ALREADY_PENDING = "already_pending"
    DUPLICATE_REQUEST_ID = "duplicate_request_id"
    INVALID_AMOUNT = "invalid_amount"
    TOO_PRECISE = "too_precise"
    NOT_A_REDUCTION = "not_a_reduction"
    BELOW_COMMITTED = "below_committed"
    BELOW_MINIMUM = "below_minimum"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, with a text a user can act on."""

    reason: RejectReason | CancelRejectReason
    text: str


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """An index order as of one event: what a report to its owner says of it. Events carry
    it so that a report describes the order as of its own transaction, whenever it is made."""

    order_id: int
    account: str
    client_order_id: str
    client_id: str
    """The id the client knows the order by now: its own, or its latest accepted change's."""
    index: str
    collateral_asset: str
    collateral: Decimal
    spent: Decimal
    fees: Decimal
    filled_units: Decimal
    status: OrderStatus
    ending: OrderStatus | None
    wallet: str
    mint_tx: str | None
    max_price: Decimal | None

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN

    @property
    def remaining(self) -> Decimal:
        return self.collateral - self.spent


@dataclass(slots=True)
class IndexOrder:
    """A user's order: collateral in, index units out. Mutated only by the engine."""

    id: int
    account: str
    client_order_id: str
    index: str
    collateral_asset: str
    collateral: Decimal
    wallet: str
    accepted_ts: int
    max_price: Decimal | None = None
    expire_at: int | None = None
    status: OrderStatus = OrderStatus.OPEN
    batch_id: int | None = None
    ending: OrderStatus | None = None
    ending_request: str = ""
    ending_reason: str = ""
    latest_request_id: str = ""
    spent: Decimal = ZERO
    fees: Decimal = ZERO
    filled_units: Decimal = ZERO
    released: Decimal = ZERO
    minted_units: Decimal = ZERO
    mint_status: MintStatus = MintStatus.NONE
    mint_attempts: int = 0
    mint_retry_at: int | None = None
    mint_tx: str | None = None

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(self.id, self.account, self.client_order_id, self.current_client_id,
                             self.index, self.collateral_asset, self.collateral, self.spent,
                             self.fees, self.filled_units, self.status, self.ending, self.wallet,
                             self.mint_tx, self.max_price)

    @property
    def current_client_id(self) -> str:
        """The id the client knows the order by now: its own, or its latest accepted change's."""
        return self.latest_request_id or self.client_order_id

    @property
    def remaining(self) -> Decimal:
        """Collateral reserved for this order and not yet spent."""
        return self.collateral - self.spent

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN

    @property
    def is_ready(self) -> bool:
        """Open, not engaged in a batch and not being ended."""
        return self.is_open and self.batch_id is None and self.ending is None


def amount_refusal(
    amount: Decimal, decimals: int, asset: str, reason: type[RejectReason | CancelRejectReason]
) -> Refusal | None:
    """Amounts must be finite, positive, within the door's bound (``money.MAX_AMOUNT``) and no
    more precise than the collateral token (whose decimals are at most the door's 18)."""
    if not amount.is_finite() or amount <= 0:
        return Refusal(reason.INVALID_AMOUNT, f"amount must be greater than zero, got {amount}")
    if amount >= MAX_AMOUNT:
        return Refusal(reason.INVALID_AMOUNT, f"amount must be below {MAX_AMOUNT_TEXT}")
    if decimal_places(amount) > decimals:
        return Refusal(reason.TOO_PRECISE, f"{asset} has {decimals} decimals, got {amount}")
    return None
