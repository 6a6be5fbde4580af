"""The engine's inputs: commands from users and operators, and facts from outside.

Every input carries ``ts``, the time it happened in Unix milliseconds, supplied by the adapter
that produced it: the core never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from solver.core.market import OrderBook
from solver.core.model import Side
from solver.core.signed_terms import SignedTerms


@dataclass(frozen=True, slots=True)
class Input:
    ts: int


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitIndexOrder(Input):
    """Buy ``index`` for ``collateral`` (an amount of the index's collateral asset)."""

    account: str
    client_order_id: str
    index: str
    collateral: Decimal
    side: Side = Side.BUY
    currency: str | None = None
    max_price: Decimal | None = None
    expire_at: int | None = None
    wallet: str | None = None
    signed: SignedTerms | None = None
    """What the account's wallet signed for the order (the gateway checked the signature)."""


@dataclass(frozen=True, slots=True)
class CancelIndexOrder(Input):
    """Cancel the order ``client_order_id`` (its own id or the id of an accepted change).

    ``request_id`` is the client's id for this request (FIX: the cancel's ClOrdID); it is
    echoed in the events the request causes and is unique among the account's ids.
    """

    account: str
    client_order_id: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class ReduceIndexOrder(Input):
    """Lower the order's total collateral to ``collateral``; ``request_id`` as for a cancel."""

    account: str
    client_order_id: str
    collateral: Decimal
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class ExpireIndexOrder(Input):
    """An operator ends an order now, as if its expiry time had come; ``reason`` tells the
    user why."""

    account: str
    client_order_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RequestQuote(Input):
    quote_id: str
    index: str
    collateral: Decimal


@dataclass(frozen=True, slots=True)
class PlanBatch(Input):
    """Engage ready orders in a new batch if liquidity and limits allow."""


@dataclass(frozen=True, slots=True)
class BindWallet(Input):
    """The operator ties ``wallet`` to ``account`` (the deployment file says which): the
    vault's deposits from it are the account's, those held so far included, and the
    account's mints go to it. One wallet per account."""

    wallet: str
    account: str


# --- facts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositConfirmed(Input):
    """A deposit reached its confirmations; ``deposit_id`` makes re-delivery harmless."""

    deposit_id: str
    account: str
    asset: str
    amount: Decimal
    wallet: str | None = None


@dataclass(frozen=True, slots=True)
class VaultDepositConfirmed(Input):
    """A deposit to the vault reached its confirmations; ``deposit_id`` names it uniquely
    (the chain adapter's: chain, vault and the vault's gap-free id)."""

    deposit_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WithdrawalRequested(Input):
    """A user asked the vault for ``amount`` back (a new request replaces their earlier
    one); the vault pays it after its delay, or sooner if the solver releases it.
    ``request_id`` names the chain's event uniquely: a second delivery is ignored."""

    request_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WithdrawalPaid(Input):
    """The vault paid ``amount`` to the user (released early, or withdrawn after the delay).
    ``payout_id`` names the chain's event uniquely: a second delivery is ignored."""

    payout_id: str
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class OrderCancelledOnChain(Input):
    """The wallet cancelled its signed order ``name`` in the vault (``cancel_order``): no fill
    of it settles from ``effective_at_s`` (Unix seconds, the vault's grace after the call).
    ``fact_id`` names the chain's event."""

    fact_id: str
    wallet: str
    name: str
    effective_at_s: int


@dataclass(frozen=True, slots=True)
class VaultReadingStarted(Input):
    """The service started on a chain: until ``VaultReadThrough``, deposits made while it was
    away may not be known yet, and an order refused for collateral says so."""


@dataclass(frozen=True, slots=True)
class VaultReadThrough(Input):
    """The vault's events are read and applied up to ``block``, the chain's confirmed head
    when the service started."""

    block: int


class VaultFact(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL_REQUEST = "withdrawal_request"
    PAYOUT = "payout"


@dataclass(frozen=True, slots=True)
class VaultFactVanished(Input):
    """A reorganisation deeper than the confirmations removed a vault event the engine had
    applied (``fact_id``: the deposit, request or payout id), and the chain read again as far
    as before does not have it. The account's new orders are refused until the fact is mined
    again or an operator resolves it; nothing already engaged is abandoned."""

    fact_id: str
    kind: VaultFact
    wallet: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ResolveVanishedFact(Input):
    """An operator settles a vanished fact: its effect on the ledger is undone (a deposit
    taken back from the account's available collateral, a payout credited back, a request's
    set-aside given back), and the account's orders are accepted again."""

    fact_id: str


@dataclass(frozen=True, slots=True)
class FeeAssetFunded(Input):
    """The operator put ``quantity`` of ``asset`` (say BNB) on the exchange account to pay
    commissions with; ``funding_id`` makes re-delivery harmless."""

    funding_id: str
    asset: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class BookUpdated(Input):
    book: OrderBook


@dataclass(frozen=True, slots=True)
class AssetOrderAccepted(Input):
    asset_order_id: int
    exchange_order_id: str


@dataclass(frozen=True, slots=True)
class AssetOrderFilled(Input):
    """One exchange trade; ``trade_id`` is unique per symbol."""

    asset_order_id: int
    trade_id: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str


class AssetOrderOutcome(StrEnum):
    FILLED = "filled"
    EXPIRED = "expired"
    CANCELED = "canceled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class AssetOrderEnded(Input):
    """The order is terminal on the exchange with ``executed_quantity`` traded in all.

    Its trades may still be on their way: the batch settles once they are all recorded.
    """

    asset_order_id: int
    outcome: AssetOrderOutcome
    executed_quantity: Decimal
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MintConfirmed(Input):
    """The order's mint is on the chain: ``tx_hash`` in ``block`` (None from a stand-in)."""

    order_id: int
    tx_hash: str
    block: int | None = None


@dataclass(frozen=True, slots=True)
class SettlementMoved(Input):
    """The order's settlement, reported confirmed, left the chain in a reorganisation deeper
    than the confirmations and is on the chain again in ``tx_hash`` (the same key: settled
    once)."""

    order_id: int
    tx_hash: str
    block: int


@dataclass(frozen=True, slots=True)
class MintFailed(Input):
    """Attempt ``attempt`` (1 for ``MintRequested``, else ``MintRetryRequested.attempt``)
    failed; a report about an earlier attempt is stale and ignored."""

    order_id: int
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class ClockTicked(Input):
    """Time passed: order expiries and mint retries fall due."""


@dataclass(frozen=True, slots=True)
class MintRefused(Input):
    """The vault refused attempt ``attempt`` of the order's settlement for a reason that holds
    for every attempt (``reason``): it will never settle as signed."""

    order_id: int
    attempt: int
    reason: str


Command = (
    SubmitIndexOrder | CancelIndexOrder | ReduceIndexOrder | ExpireIndexOrder | RequestQuote
    | PlanBatch | BindWallet
)
Fact = (
    DepositConfirmed | VaultDepositConfirmed | WithdrawalRequested | WithdrawalPaid
    | OrderCancelledOnChain | FeeAssetFunded | BookUpdated | AssetOrderAccepted
    | AssetOrderFilled | AssetOrderEnded | MintConfirmed | SettlementMoved | MintFailed
    | MintRefused | ClockTicked
)
PRICED_ON_BOOKS = (SubmitIndexOrder, ReduceIndexOrder, RequestQuote, PlanBatch,
                   AssetOrderFilled, AssetOrderEnded, ClockTicked)
"""The inputs the engine prices on its books (an order's minimum, a quote, a plan, a
commission paid in a third asset, whether a settled order can still buy a step, whether a
waiting remainder can be bought alone): whoever hands
one to the engine gives it the books that moved first. Books reach the journal only so."""
