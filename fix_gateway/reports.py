"""What the gateway tells clients: each engine transaction becomes FIX reports per account,
and a request refused before it reaches the engine gets its reject here too.

A report made from an event carries the event's journal sequence number in ``EventSeqNum``
(20020): an account's reports are sent in that order, so after a crash the gateway knows from
QuickFIX's message store how far each account's reports went, and sends only the rest.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

from fix_gateway.account_view import AccountView
from fix_gateway.tags import (
    CHAIN_ID,
    CUM_CASH_QTY,
    DEPOSIT_TX_HASH,
    EVENT_SEQ_NUM,
    EXCHANGE_FEE,
    LEAVES_CASH_QTY,
    MANAGEMENT_FEE,
    MINT_QTY,
    MINT_TX_HASH,
    WALLET_ADDRESS,
)
from fix_gateway.wire import (
    MAX_NUMBER_LENGTH,
    Outgoing,
    Received,
    amount,
    price,
    utc_timestamp,
)
from solver.core import events as ev
from solver.core.commands import CancelIndexOrder, ReduceIndexOrder, SubmitIndexOrder
from solver.core.ledger import Balance
from solver.core.model import Index
from solver.core.money import ZERO, floor_decimals
from solver.core.orders import CancelRejectReason, OrderSnapshot, OrderStatus, RejectReason

ORD_REJ_REASON = {
    RejectReason.UNKNOWN_INDEX: "1", RejectReason.UNSUPPORTED_SIDE: "11",
    RejectReason.WRONG_CURRENCY: "11", RejectReason.INVALID_AMOUNT: "13",
    RejectReason.TOO_PRECISE: "13", RejectReason.BELOW_MINIMUM: "13",
    RejectReason.INVALID_PRICE: "99", RejectReason.ALREADY_EXPIRED: "4",
    RejectReason.INSUFFICIENT_COLLATERAL: "3", RejectReason.DUPLICATE_ORDER_ID: "6",
    RejectReason.WRONG_WALLET: "99",
    RejectReason.ACCOUNT_IN_DOUBT: "99", RejectReason.NOT_TRADABLE: "0",
}
CXL_REJ_REASON = {
    CancelRejectReason.UNKNOWN_ORDER: "1", CancelRejectReason.ALREADY_CLOSED: "0",
    CancelRejectReason.ALREADY_PENDING: "3", CancelRejectReason.DUPLICATE_REQUEST_ID: "6",
}
_CLOSED = {OrderStatus.CANCELED: "4", OrderStatus.EXPIRED: "C", OrderStatus.FILLED: "2"}
_run = os.urandom(4).hex()
_refusals = itertools.count(1)

Addressed = tuple[str, Outgoing]
"""A report and the account it is for."""


class ReportMaker:
    """Turns committed transactions into reports. Every report is made from the events of its
    own transaction (the order snapshots and balances they carry) and the static
    configuration, never from live state, so a report made late (at a catch-up, after a group
    commit) says what was true when its transaction happened."""

    def __init__(self, indexes: Mapping[str, Index], chain_id: int) -> None:
        self.indexes = indexes
        self.chain_id = chain_id

    def reports(self, transaction: ev.Transaction) -> Iterator[Addressed]:
        completed = {e.order_id: e for e in transaction.of_type(ev.IndexOrderCompleted)}
        for envelope in transaction.events:
            report = self._report(envelope, transaction, completed)
            if report is not None:
                yield report

    def _report(self, envelope: ev.Envelope[ev.Event], transaction: ev.Transaction,
                completed: dict[int, ev.IndexOrderCompleted]) -> Addressed | None:
        event, seq, ts = envelope.event, envelope.seq, envelope.ts
        match event:
            case ev.IndexOrderAccepted():
                return event.account, execution(event.order, seq, ts, "0", "0", [])
            case ev.IndexOrderRejected():
                return event.account, self._rejected(event, transaction.input, seq, ts)
            case ev.IndexOrderFilled():
                return self._filled(event, completed.get(event.order_id), seq, ts)
            case ev.IndexOrderReduced():
                return self._replaced(event, transaction.input, seq, ts)
            case ev.IndexOrderEndPending() if event.request_id:
                order = event.order
                return order.account, execution(order, seq, ts, "6", "6", [
                    (41, _before(order, event.request_id, transaction.input))],
                    cl_ord_id=event.request_id)
            case ev.IndexOrderCompleted():
                return self._completed(event, transaction, seq, ts)
            case ev.CancelRejected() if isinstance(transaction.input,
                                                   (CancelIndexOrder, ReduceIndexOrder)):
                return event.account, self._cancel_rejected(event, transaction.input, seq, ts)
            case ev.IndexOrderMinted():
                return self._minted(event, seq, ts)
            case ev.IndexOrderMintRestated():
                return self._mint_restated(event, seq, ts)
            case ev.CollateralDeposited():
                return event.account, self._collateral(
                    event, seq, ts, "deposit credited", [(DEPOSIT_TX_HASH, event.deposit_id)])
            case ev.CollateralReleased():
                name = _order_names(transaction).get(event.order_id, str(event.order_id))
                return event.account, self._collateral(
                    event, seq, ts, f"released from order {name}", [])
            case ev.CollateralSetAside():
                return event.account, self._collateral(
                    event, seq, ts, "set aside for the withdrawal you asked for", [])
            case ev.CollateralGivenBack():
                return event.account, self._collateral(
                    event, seq, ts, "given back: a newer withdrawal request replaced it", [])
            case ev.CollateralWithdrawn():
                return event.account, self._collateral(
                    event, seq, ts, "withdrawn from the vault", [])
        return None

    # --- execution reports -------------------------------------------------------------------

    def _filled(self, event: ev.IndexOrderFilled, done: ev.IndexOrderCompleted | None,
                seq: int, ts: int) -> Addressed:
        order = event.order
        filled = done is not None and done.status is OrderStatus.FILLED
        leaves = ZERO if done else floor_decimals(
            event.remaining / event.price, self.indexes[order.index].decimals)
        report = execution(order, seq, ts, "F", "2" if filled else "1", [
            (32, amount(event.units)), (31, price(event.price)), (381, amount(event.cost)),
            (EXCHANGE_FEE, amount(event.fees))], leaves=leaves)
        return order.account, _override(report, {
            LEAVES_CASH_QTY: amount(ZERO if done else event.remaining)})

    def _replaced(self, event: ev.IndexOrderReduced, request: object, seq: int,
                  ts: int) -> Addressed:
        order = event.order
        status = "1" if order.filled_units else "0"
        if not isinstance(request, ReduceIndexOrder):  # not asked for: restated, saying why
            return order.account, execution(order, seq, ts, "D", status, [
                (378, "99"), (58, event.reason)])
        return order.account, execution(order, seq, ts, "5", status,
                                        [(41, request.client_order_id)],
                                        cl_ord_id=event.request_id or None)

    def _completed(self, event: ev.IndexOrderCompleted, transaction: ev.Transaction, seq: int,
                   ts: int) -> Addressed | None:
        order = event.order
        if event.status is OrderStatus.FILLED:
            if any(f.order_id == order.order_id
                   for f in transaction.of_type(ev.IndexOrderFilled)):
                return None  # its last fill said so
            return order.account, execution(order, seq, ts, "I", "2", [(58, (
                event.reason or "filled: the collateral left can buy nothing more and was "
                "released"))])
        code = _CLOSED[event.status]
        extra = ([(41, _before(order, event.request_id, transaction.input))]
                 if event.request_id else []) + ([(58, event.reason)] if event.reason else [])
        return order.account, execution(order, seq, ts, code, code, extra,
                                        cl_ord_id=event.request_id or None)

    def _minted(self, event: ev.IndexOrderMinted, seq: int, ts: int) -> Addressed:
        order = event.order
        return order.account, execution(order, seq, ts, "B", "B", [
            (MINT_TX_HASH, event.tx_hash), (MINT_QTY, amount(event.units)),
            (CHAIN_ID, str(self.chain_id)), (WALLET_ADDRESS, order.wallet),
            (EXCHANGE_FEE, amount(order.fees)), (MANAGEMENT_FEE, "0")])

    def _mint_restated(self, event: ev.IndexOrderMintRestated, seq: int, ts: int) -> Addressed:
        order = event.order
        return order.account, execution(order, seq, ts, "D", "B", [
            (378, "99"), (MINT_TX_HASH, event.tx_hash), (CHAIN_ID, str(self.chain_id)),
            (WALLET_ADDRESS, order.wallet), (58, (
                f"settlement restated: {event.previous_tx} left the chain in a "
                f"reorganisation; the vault settled the order once, in {event.tx_hash}"))])

    def _rejected(self, event: ev.IndexOrderRejected, request: object, seq: int,
                  ts: int) -> Outgoing:
        symbol, cash = ("NONE", ZERO)
        if isinstance(request, SubmitIndexOrder):
            symbol, cash = request.index or "NONE", request.collateral
        return _order_reject(event.client_order_id, symbol, cash, ORD_REJ_REASON[event.reason],
                             event.text, str(seq), ts, [(EVENT_SEQ_NUM, str(seq))])

    @staticmethod
    def _cancel_rejected(event: ev.CancelRejected, request: CancelIndexOrder | ReduceIndexOrder,
                         seq: int, ts: int) -> Outgoing:
        return _cancel_reject(
            event.order, event.request_id, event.client_order_id,
            "1" if isinstance(request, CancelIndexOrder) else "2",
            CXL_REJ_REASON.get(event.reason, "99"), event.text,
            [(60, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))])

    # --- collateral -----------------------------------------------------------------------

    def _collateral(self, event: ev.CollateralDeposited | ev.CollateralReleased
                    | ev.CollateralSetAside | ev.CollateralGivenBack | ev.CollateralWithdrawn,
                    seq: int,
                    ts: int, text: str, extra: list[tuple[int, str]]) -> Outgoing:
        return collateral_report(event.balance, event.account, event.asset, str(seq), None, [
            (53, amount(event.amount)), (58, text), *extra, (CHAIN_ID, str(self.chain_id)),
            (60, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))])

    # --- quotes -----------------------------------------------------------------------------

    @staticmethod
    def quote(event: ev.QuoteIssued, quote_req_id: str, seq: int, ts: int) -> Outgoing:
        return Outgoing("S", (
            (131, quote_req_id), (117, str(seq)), (55, event.index), (54, "1"),
            (152, amount(event.collateral)), (133, price(event.index_price)),
            (135, amount(event.units)), (60, utc_timestamp(ts))))

    @staticmethod
    def quote_rejected(event: ev.QuoteRejected, quote_req_id: str, known: bool) -> Outgoing:
        return Outgoing("AG", ((131, quote_req_id), (658, "99" if known else "1"),
                               (146, "1"), (55, event.index), (58, event.text)))


def execution(order: OrderSnapshot, seq: int, ts: int, exec_type: str, status: str,
              extra: list[tuple[int, str]], cl_ord_id: str | None = None,
              leaves: Decimal = ZERO) -> Outgoing:
    """An ExecutionReport of ``order`` as the snapshot has it."""
    avg = order.spent / order.filled_units if order.filled_units else ZERO
    open_cash = order.remaining if order.is_open else ZERO
    return Outgoing("8", (
        (37, str(order.order_id)), (17, str(seq)), (150, exec_type), (39, status),
        (11, cl_ord_id or order.client_id), *extra, (55, order.index), (54, "1"),
        (152, amount(order.collateral)), (15, order.collateral_asset),
        (14, amount(order.filled_units)), (6, price(avg)), (151, amount(leaves)),
        (LEAVES_CASH_QTY, amount(open_cash)), (CUM_CASH_QTY, amount(order.spent)),
        (60, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))))


def status(order: OrderSnapshot, ts: int, extra: Sequence[tuple[int, str]] = ()) -> Outgoing:
    """An order status report (150=I), outside the event stream."""
    report = execution(order, 0, ts, "I", _status(order), list(extra))
    return Outgoing(report.msg_type, tuple(
        (t, _refusal_id() if t == 17 else v) for t, v in report.fields if t != EVENT_SEQ_NUM))


def unknown_order(cl_ord_id: str, symbol: str, text: str,
                  extra: Sequence[tuple[int, str]]) -> Outgoing:
    """A status report (150=I) for an order we do not have: OrdStatus 8, and why."""
    return Outgoing("8", (
        (37, "NONE"), (17, _refusal_id()), (150, "I"), (39, "8"), (11, cl_ord_id),
        *extra, (55, symbol), (54, "1"), (14, "0"), (6, "0"), (151, "0"), (58, text)))


def collateral_report(balance: Balance, account: str, asset: str, report_id: str,
                      inquiry_id: str | None, extra: list[tuple[int, str]]) -> Outgoing:
    """CollateralReport (BA): ``balance``, the account's balance of ``asset``."""
    inquiry = [] if inquiry_id is None else [(909, inquiry_id)]
    return Outgoing("BA", (
        (908, report_id), *inquiry, (910, "3"), (1, account), (15, asset),
        (900, amount(balance.available + balance.reserved)),
        (901, amount(balance.available)), *extra))


def _before(order: OrderSnapshot, request_id: str, request: object) -> str:
    """OrigClOrdID of a change request: the id the request named."""
    if isinstance(request, CancelIndexOrder | ReduceIndexOrder) \
            and request.request_id == request_id:
        return request.client_order_id
    return order.client_id


def _order_names(transaction: ev.Transaction) -> dict[int, str]:
    """The client's name of each order the transaction's events show."""
    names = {}
    for envelope in transaction.events:
        order = getattr(envelope.event, "order", None)
        if isinstance(order, OrderSnapshot):
            names[order.order_id] = order.client_order_id
    return names


# --- refusals made by the gateway, before the engine -------------------------------------------


def order_refused(msg: Received, code: str, text: str) -> Outgoing:
    cash = msg.get(152)
    echoed = [(152, cash)] if cash is not None and len(cash) <= MAX_NUMBER_LENGTH else []
    return _order_reject(msg.get(11) or "NONE", msg.get(55) or "NONE", None, code, text,
                         _refusal_id(), None, echoed)


def cancel_refused(msg: Received, view: AccountView, account: str, code: str,
                   text: str) -> Outgoing:
    orig = msg.get(41) or ""
    return _cancel_reject(view.order(account, orig), msg.get(11) or "NONE", orig or "NONE",
                          "1" if msg.msg_type == "F" else "2", code, text, [])


def quote_refused(msg: Received, code: str, text: str) -> Outgoing:
    return Outgoing("AG", ((131, msg.get(131) or "NONE"), (658, code), (146, "1"),
                           (55, msg.get(55) or "NONE"), (58, text)))


def business_reject(msg: Received, code: str, text: str) -> Outgoing:
    """BusinessMessageReject (j); 380: 3 unsupported message type, 0 other. It names the
    message's own id (ClOrdID, QuoteReqID, CollInquiryID) in 379 when that is fit to send."""
    ref = next((value for tag in _REF_IDS.get(msg.msg_type, ()) if (value := msg.clean(tag))),
               None)
    return Outgoing("j", ((45, msg.seq_num), (372, msg.msg_type), *(
        [(379, ref)] if ref else []), (380, code), (58, text)))


_REF_IDS = {"D": (11,), "F": (11,), "G": (11,), "R": (131,), "BB": (909,), "H": (11,),
            "AF": (584,)}


def _order_reject(cl_ord_id: str, symbol: str, cash: Decimal | None, code: str, text: str,
                  exec_id: str, ts: int | None, extra: list[tuple[int, str]]) -> Outgoing:
    quantity = [] if cash is None else [(152, amount(cash))]
    stamp = [] if ts is None else [(60, utc_timestamp(ts))]
    return Outgoing("8", (
        (37, "NONE"), (17, exec_id), (150, "8"), (39, "8"), (11, cl_ord_id), (55, symbol),
        (54, "1"), *quantity, (14, "0"), (6, "0"), (151, "0"), (103, code), (58, text),
        *stamp, *extra))


def _cancel_reject(order: OrderSnapshot | None, cl_ord_id: str, orig: str, response_to: str,
                   code: str, text: str, extra: list[tuple[int, str]]) -> Outgoing:
    status = "8" if order is None else _status(order)
    return Outgoing("9", (
        (37, "NONE" if order is None else str(order.order_id)), (11, cl_ord_id), (41, orig),
        (39, status), (434, response_to), (102, code), (58, text), *extra))


def _status(order: OrderSnapshot) -> str:
    if order.mint_tx is not None:
        return "B"
    if not order.is_open:
        return _CLOSED[order.status]
    if order.ending is not None:
        return "6"
    return "1" if order.filled_units else "0"


def _refusal_id() -> str:
    """ExecIDs of gateway refusals: never numeric, so never taken for an event's."""
    return f"R{_run}-{next(_refusals)}"


def _override(report: Outgoing, values: dict[int, str]) -> Outgoing:
    return Outgoing(report.msg_type, tuple((t, values.get(t, v)) for t, v in report.fields))
