"""Index orders: their state, and the reasons a request about one can be refused."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from solver.core.lifecycle import InvalidTransition, following
from solver.core.money import MAX_AMOUNT, MAX_AMOUNT_TEXT, ZERO, decimal_places
from solver.core.signed_terms import SignedTerms


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
    REFUSED = "refused"


class RejectReason(StrEnum):
    UNKNOWN_INDEX = "unknown_index"
    UNSUPPORTED_SIDE = "unsupported_side"
    WRONG_CURRENCY = "wrong_currency"
    INVALID_AMOUNT = "invalid_amount"
    TOO_PRECISE = "too_precise"
    BELOW_MINIMUM = "below_minimum"
    NOT_TRADABLE = "not_tradable"
    """The index's smallest tradable quantity costs more than the caps let one order engage."""
    INVALID_PRICE = "invalid_price"
    ALREADY_EXPIRED = "already_expired"
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    WRONG_WALLET = "wrong_wallet"
    ACCOUNT_IN_DOUBT = "account_in_doubt"
    """A vault event of the account's left the chain in a deep reorganisation."""
    SIGNED_TERMS = "signed_terms"
    """What the wallet signed cannot be kept: a fee bound below the house's, a deadline too
    near to settle by, an amount beyond the signed one, another wallet than the account's."""


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
    NOT_TRADABLE = "not_tradable"


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
    limit: Decimal | None = None
    """The limit the wallet signed, fees included (a signed order's Price)."""

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN

    @property
    def remaining(self) -> Decimal:
        return self.collateral - self.spent


class OrderState(StrEnum):
    """Where an order is in its life (``docs/architecture.md`` has the diagram)."""

    READY = "ready"
    """Open, waiting for a batch that can buy for it."""
    ENGAGED = "engaged"
    """Open, engaged in a batch in flight."""
    ENDING = "ending"
    """Engaged, and cancelled or expired: it closes when its batch settles."""
    CLOSED = "closed"
    """Filled, cancelled or expired, with no units to mint."""
    MINTING = "minting"
    """Closed, its mint asked for."""
    MINT_RETRY_WAIT = "mint_retry_wait"
    """Closed, its mint failed: asked for again at ``mint_retry_at``."""
    MINTED = "minted"
    MINT_REFUSED = "mint_refused"
    """Closed, the vault refused its settlement for good: its units went back to the house,
    what it spent back to the account."""


class Trigger(StrEnum):
    ENGAGE = "engage"
    """Planned in a batch."""
    SETTLE = "settle"
    """Its batch settled and it stays open."""
    END = "end"
    """Cancelled or expired while its batch is in flight."""
    CLOSE = "close"
    """Filled, cancelled or expired."""
    REQUEST_MINT = "request_mint"
    FAIL_MINT = "fail_mint"
    RETRY_MINT = "retry_mint"
    CONFIRM_MINT = "confirm_mint"
    REFUSE_MINT = "refuse_mint"


S, T = OrderState, Trigger
TRANSITIONS: dict[tuple[OrderState, Trigger], OrderState] = {
    (S.READY, T.ENGAGE): S.ENGAGED,
    (S.READY, T.CLOSE): S.CLOSED,
    (S.ENGAGED, T.SETTLE): S.READY,
    (S.ENGAGED, T.END): S.ENDING,
    (S.ENDING, T.CLOSE): S.CLOSED,
    (S.CLOSED, T.REQUEST_MINT): S.MINTING,
    (S.MINTING, T.FAIL_MINT): S.MINT_RETRY_WAIT,
    (S.MINT_RETRY_WAIT, T.RETRY_MINT): S.MINTING,
    (S.MINTING, T.CONFIRM_MINT): S.MINTED,
    (S.MINT_RETRY_WAIT, T.CONFIRM_MINT): S.MINTED,  # the failed attempt went through after all
    (S.MINTING, T.REFUSE_MINT): S.MINT_REFUSED,
}
"""An order's whole life: (state, trigger) -> the next state. Any other pair is a defect."""
del S, T

_MINT_STATUS = {OrderState.MINTING: MintStatus.REQUESTED,
                OrderState.MINT_RETRY_WAIT: MintStatus.RETRY_WAIT,
                OrderState.MINTED: MintStatus.MINTED,
                OrderState.MINT_REFUSED: MintStatus.REFUSED}


@dataclass(slots=True)
class IndexOrder:
    """A user's order: collateral in, index units out. Mutated only by the engine, and its
    state only through ``move`` (the methods below name each trigger and set its data)."""

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
    signed: SignedTerms | None = None
    state: OrderState = OrderState.READY
    status: OrderStatus = OrderStatus.OPEN
    """Open, or how it closed."""
    batch_id: int | None = None
    ending: OrderStatus | None = None
    """While ENDING: how it will close."""
    ending_request: str = ""
    ending_reason: str = ""
    latest_request_id: str = ""
    spent: Decimal = ZERO
    fees: Decimal = ZERO
    filled_units: Decimal = ZERO
    released: Decimal = ZERO
    minted_units: Decimal = ZERO
    mint_attempts: int = 0
    mint_retry_at: int | None = None
    mint_tx: str | None = None
    waits_until: int | None = None
    """Too small to be bought alone: when it stops waiting for other orders of its index
    (``settlement.bound_waits``)."""

    def move(self, trigger: Trigger) -> None:
        """Apply ``trigger`` by the transition table; raise if the state does not allow it."""
        self.state = following(TRANSITIONS, f"order {self.id}", self.state, trigger)

    def engage(self, batch_id: int) -> None:
        self.move(Trigger.ENGAGE)
        self.batch_id, self.waits_until = batch_id, None  # bought with company: wait anew

    def settle(self) -> None:
        self.move(Trigger.SETTLE)
        self.batch_id = None

    def end_when_settled(self, status: OrderStatus, request_id: str, reason: str) -> None:
        self.move(Trigger.END)
        self.ending, self.ending_request, self.ending_reason = status, request_id, reason

    def close(self, status: OrderStatus) -> None:
        """Closed as ``status``: what it has not spent is released."""
        self.move(Trigger.CLOSE)
        self.status, self.batch_id, self.released = status, None, self.remaining
        self.ending, self.ending_request, self.ending_reason = None, "", ""

    def request_mint(self) -> None:
        self.move(Trigger.REQUEST_MINT)
        self.mint_attempts = 1

    def mint_failed(self, retry_at: int) -> None:
        self.move(Trigger.FAIL_MINT)
        self.mint_retry_at = retry_at

    def retry_mint(self) -> None:
        self.move(Trigger.RETRY_MINT)
        self.mint_attempts, self.mint_retry_at = self.mint_attempts + 1, None

    def minted(self, tx_hash: str, units: Decimal) -> None:
        self.move(Trigger.CONFIRM_MINT)
        self.mint_tx, self.minted_units, self.mint_retry_at = tx_hash, units, None

    def mint_refused(self) -> Decimal:
        """Nothing of it was charged or minted: it closes as canceled with nothing filled,
        what it spent released, its units given back; what it spent."""
        self.move(Trigger.REFUSE_MINT)
        self.status, refunded = OrderStatus.CANCELED, self.spent
        self.released += refunded
        self.spent = self.fees = self.filled_units = ZERO
        return refunded

    def mint_moved(self, tx_hash: str) -> None:
        """Its settlement is in another transaction now: still minted, once."""
        if self.state is not OrderState.MINTED:
            raise InvalidTransition(f"order {self.id}: mint moved when {self.state.value}")
        self.mint_tx = tx_hash

    def price_bound(self, fee_reserve: Decimal) -> Decimal | None:
        """The most a unit may cost before fees: the order's own maximum price, and the
        signed limit less the fee reserve."""
        signed = None if self.signed is None else self.signed.price_bound(fee_reserve)
        bounds = [b for b in (self.max_price, signed) if b is not None]
        return min(bounds) if bounds else None

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(self.id, self.account, self.client_order_id, self.current_client_id,
                             self.index, self.collateral_asset, self.collateral, self.spent,
                             self.fees, self.filled_units, self.status, self.ending, self.wallet,
                             self.mint_tx, self.max_price,
                             None if self.signed is None else self.signed.limit)

    @property
    def mint_status(self) -> MintStatus:
        return _MINT_STATUS.get(self.state, MintStatus.NONE)

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
        return self.state in (OrderState.READY, OrderState.ENGAGED, OrderState.ENDING)

    @property
    def is_ready(self) -> bool:
        """Open, not engaged in a batch and not being ended."""
        return self.state is OrderState.READY


def changeable(order: IndexOrder | None, client_order_id: str) -> IndexOrder | Refusal:
    """``order`` (named ``client_order_id``) if it can still be cancelled, reduced or expired;
    else why not."""
    reason = CancelRejectReason
    if order is None:
        return Refusal(reason.UNKNOWN_ORDER, f"no order {client_order_id} for this account")
    if not order.is_open:
        return Refusal(reason.ALREADY_CLOSED, f"order {client_order_id} is {order.status}")
    if order.ending is not None:
        return Refusal(reason.ALREADY_PENDING,
                       f"order {client_order_id} is already being {order.ending.value}")
    return order


def reduction_refusal(order: IndexOrder, collateral: Decimal, committed: Decimal) -> Refusal | None:
    """Why ``order`` cannot be lowered to ``collateral`` (its amount already checked), given
    what it has spent and its batch in flight may still spend (``committed``)."""
    reason = CancelRejectReason
    if collateral >= order.collateral:
        return Refusal(reason.NOT_A_REDUCTION,
                       f"new amount {collateral} is not below {order.collateral}")
    if collateral < committed:
        return Refusal(reason.BELOW_COMMITTED, f"cannot go below {committed}: spent "
                       f"{order.spent} plus what its batch in flight may spend")
    return None


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
