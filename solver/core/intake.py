"""The users' and operators' commands on index orders: submit, cancel, reduce, expire, and
quotes; each refused with a reason a user can act on, changing nothing."""

from __future__ import annotations

from solver.core import events as ev
from solver.core.actions import end_order, minimum_refusal, reduce, reduce_refusal
from solver.core.commands import (
    CancelIndexOrder,
    ExpireIndexOrder,
    ReduceIndexOrder,
    RequestQuote,
    SubmitIndexOrder,
)
from solver.core.fitting import quote
from solver.core.model import Side
from solver.core.money import amount_problem, plain
from solver.core.orders import (
    CancelRejectReason,
    IndexOrder,
    OrderStatus,
    Refusal,
    RejectReason,
    amount_refusal,
    changeable,
)
from solver.core.signed_terms import BPS
from solver.core.state import Events, State


def submit(state: State, cmd: SubmitIndexOrder) -> Events:
    refusal = new_order_refusal(state, cmd)
    if refusal:
        return [ev.IndexOrderRejected(cmd.account, cmd.client_order_id,
                                      RejectReason(refusal.reason), refusal.text)]
    index = state.indexes[cmd.index]
    order = IndexOrder(
        id=len(state.orders) + 1, account=cmd.account, client_order_id=cmd.client_order_id,
        index=index.symbol, collateral_asset=index.collateral, collateral=cmd.collateral,
        wallet=_wallet(state, cmd), accepted_ts=cmd.ts, max_price=cmd.max_price,
        expire_at=_expiry(state, cmd), signed=cmd.signed,
    )
    state.orders[order.id] = state.open[order.id] = order
    state.order_ids[(cmd.account, cmd.client_order_id)] = order.id
    state.ledger.reserve(order.account, order.collateral_asset, order.collateral)
    return [
        ev.IndexOrderAccepted(order.id, order.account, order.client_order_id, order.index,
                              order.collateral, order.snapshot()),
        ev.CollateralReserved(order.account, order.collateral_asset, order.collateral,
                              order.id, state.balance_of(order)),
    ]


def new_order_refusal(state: State, cmd: SubmitIndexOrder) -> Refusal | None:
    reason = RejectReason
    if (cmd.account, cmd.client_order_id) in state.order_ids:
        return Refusal(reason.DUPLICATE_ORDER_ID,
                       f"order id {cmd.client_order_id} is already used by this account")
    index = state.indexes.get(cmd.index)
    if index is None:
        return Refusal(reason.UNKNOWN_INDEX, f"unknown index {cmd.index}; known: "
                       + ", ".join(sorted(state.indexes)))
    if cmd.side is not Side.BUY:
        return Refusal(reason.UNSUPPORTED_SIDE, "only buy orders are supported")
    if cmd.currency is not None and cmd.currency != index.collateral:
        return Refusal(reason.WRONG_CURRENCY,
                       f"{index.symbol} is bought with {index.collateral}, not {cmd.currency}")
    decimals = state.collaterals[index.collateral].decimals
    refusal = amount_refusal(cmd.collateral, decimals, index.collateral, reason)
    if refusal:
        return refusal
    refusal = minimum_refusal(state, index, cmd.collateral, reason)
    if refusal:
        return refusal
    if cmd.max_price is not None and (amount_problem(cmd.max_price) or cmd.max_price <= 0):
        problem = amount_problem(cmd.max_price) or f"must be > 0, got {cmd.max_price}"
        return Refusal(reason.INVALID_PRICE, f"maximum price {problem}")
    if cmd.expire_at is not None and cmd.expire_at <= cmd.ts:
        return Refusal(reason.ALREADY_EXPIRED, "expiry time is not in the future")
    bound = state.custody.bound_wallet(cmd.account)
    if cmd.wallet is not None and bound is not None and cmd.wallet.lower() != bound.lower():
        return Refusal(reason.WRONG_WALLET, f"the vault charges and mints to this account's "
                       f"wallet {bound}; leave WalletAddress out or give that one")
    refusal = signed_refusal(state, cmd) if cmd.signed is not None else None
    if refusal:
        return refusal
    doubt = state.custody.in_doubt(cmd.account)
    if doubt is not None:
        fact_id, gone = doubt
        return Refusal(reason.ACCOUNT_IN_DOUBT, (
            f"the {gone.kind.replace('_', ' ')} {fact_id} of {plain(gone.amount)} "
            f"{gone.asset} left the chain in a reorganisation; this account's orders wait "
            "until it is mined again or an operator resolves it"))
    available = state.ledger.balance(cmd.account, index.collateral).available
    if cmd.collateral > available:
        reading = ("; the service has just started and is still reading the vault's "
                   "deposits up to the chain's head: send it again in a moment"
                   if state.custody.reading else "")
        return Refusal(reason.INSUFFICIENT_COLLATERAL,
                       f"{cmd.collateral} {index.collateral} wanted, {available} available"
                       + reading)
    return None


def signed_refusal(state: State, cmd: SubmitIndexOrder) -> Refusal | None:
    """Why the engine could not keep what the wallet signed, or None."""
    terms, reason = cmd.signed, RejectReason.SIGNED_TERMS
    assert terms is not None
    bound = state.custody.bound_wallet(cmd.account)
    if bound is not None and terms.wallet.lower() != bound.lower():
        return Refusal(reason, f"the order is signed by {terms.wallet}, not by this "
                               f"account's wallet {bound}")
    if cmd.collateral > terms.most:
        return Refusal(reason, f"{plain(cmd.collateral)} wanted, {plain(terms.most)} signed")
    reserve_bps = state.params.fee_reserve * BPS
    if terms.max_fee_bps < reserve_bps:
        return Refusal(reason, f"the fee bound signed, {terms.max_fee_bps} bps, is below the "
                               f"house's fee reserve of {plain(reserve_bps)} bps: sign a "
                               "higher one")
    margin = state.params.settle_margin_ms
    if terms.deadline_ms - margin <= cmd.ts:
        return Refusal(RejectReason.ALREADY_EXPIRED, (
            f"the deadline signed leaves less than {margin // 1000} s to settle the order "
            "on-chain: sign a later one"))
    return None


def _wallet(state: State, cmd: SubmitIndexOrder) -> str:
    """Where the order's units are minted: the signer's wallet, the one the order names, or
    the account's."""
    if cmd.signed is not None:
        return cmd.signed.wallet
    return cmd.wallet or state.custody.wallets.get(cmd.account, cmd.account)


def _expiry(state: State, cmd: SubmitIndexOrder) -> int | None:
    """When the order expires: its own expiry, or sooner a settlement margin before the
    deadline it was signed with."""
    if cmd.signed is None:
        return cmd.expire_at
    settle_by = cmd.signed.deadline_ms - state.params.settle_margin_ms
    return settle_by if cmd.expire_at is None else min(cmd.expire_at, settle_by)


def cancel(state: State, cmd: CancelIndexOrder) -> Events:
    order = changeable_order(state, cmd.account, cmd.client_order_id, cmd.request_id)
    if isinstance(order, Refusal):
        return [cancel_rejected(state, cmd.account, cmd.client_order_id, order,
                                      cmd.request_id)]
    register_request(state, order, cmd.request_id)
    return end_order(state, order, OrderStatus.CANCELED, cmd.request_id,
                           "canceled at the user's request")


def expire(state: State, cmd: ExpireIndexOrder) -> Events:
    order = changeable_order(state, cmd.account, cmd.client_order_id)
    if isinstance(order, Refusal):
        return [cancel_rejected(state, cmd.account, cmd.client_order_id, order)]
    return end_order(state, order, OrderStatus.EXPIRED,
                           reason=f"expired: {cmd.reason or 'ended by the operator'}")


def reduce_order(state: State, cmd: ReduceIndexOrder) -> Events:
    order = changeable_order(state, cmd.account, cmd.client_order_id, cmd.request_id)
    if not isinstance(order, Refusal):
        order = reduce_refusal(state, order, cmd.collateral) or order
    if isinstance(order, Refusal):
        return [cancel_rejected(state, cmd.account, cmd.client_order_id, order,
                                      cmd.request_id)]
    register_request(state, order, cmd.request_id)
    if cmd.request_id:
        order.latest_request_id = cmd.request_id
    return reduce(state, order, cmd.collateral, cmd.request_id)


def changeable_order(state: State, account: str, client_order_id: str,
                request_id: str = "") -> IndexOrder | Refusal:
    """The order, if it can still be cancelled, reduced or expired; else why not."""
    if request_id and (account, request_id) in state.order_ids:
        return Refusal(CancelRejectReason.DUPLICATE_REQUEST_ID,
                       f"request id {request_id} is already used by this account")
    return changeable(state.order(account, client_order_id), client_order_id)


def register_request(state: State, order: IndexOrder, request_id: str) -> None:
    """An accepted request's id names the order from now on, and is used up."""
    if request_id:
        state.order_ids[(order.account, request_id)] = order.id


def cancel_rejected(state: State, account: str, client_order_id: str, refusal: Refusal,
                     request_id: str = "") -> ev.CancelRejected:
    order = state.order(account, client_order_id)
    return ev.CancelRejected(account, client_order_id, CancelRejectReason(refusal.reason),
                             refusal.text, None if order is None else order.snapshot(),
                             request_id)


def quote_index(state: State, cmd: RequestQuote) -> Events:
    index = state.indexes.get(cmd.index)
    if index is None:
        return [ev.QuoteRejected(cmd.quote_id, cmd.index, f"unknown index {cmd.index}")]
    decimals = state.collaterals[index.collateral].decimals
    refusal = amount_refusal(cmd.collateral, decimals, index.collateral, RejectReason)
    if refusal:
        return [ev.QuoteRejected(cmd.quote_id, cmd.index, refusal.text)]
    free = {a: state.inventory.free_quantity(a) for a in index.assets}
    priced = quote(index, cmd.collateral, state.markets(), free, state.params)
    if priced is None:
        return [ev.QuoteRejected(cmd.quote_id, cmd.index,
                                 f"no ask price for every asset of {cmd.index}")]
    price, units = priced
    return [ev.QuoteIssued(cmd.quote_id, cmd.index, cmd.collateral, price, units)]
