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
    ACCOUNT,
    AVG_PX,
    BUSINESS_REJECT_REASON,
    BUSINESS_REJECT_REF_ID,
    CASH_ORDER_QTY,
    CASH_OUTSTANDING,
    CHAIN_ID,
    CL_ORD_ID,
    COLL_INQUIRY_ID,
    COLL_RPT_ID,
    COLL_STATUS,
    CUM_CASH_QTY,
    CUM_QTY,
    CURRENCY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    DEPOSIT_TX_HASH,
    EVENT_SEQ_NUM,
    EXCHANGE_FEE,
    EXEC_ID,
    EXEC_RESTATEMENT_REASON,
    EXEC_TYPE,
    GROSS_TRADE_AMT,
    LAST_PX,
    LAST_QTY,
    LEAVES_CASH_QTY,
    LEAVES_QTY,
    MANAGEMENT_FEE,
    MINT_QTY,
    MINT_TX_HASH,
    NO_RELATED_SYM,
    OFFER_PX,
    OFFER_SIZE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORDER_ID,
    ORIG_CL_ORD_ID,
    QUANTITY,
    QUOTE_ID,
    QUOTE_REQ_ID,
    QUOTE_REQUEST_REJECT_REASON,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    SIDE,
    SYMBOL,
    TEXT,
    TOTAL_NET_VALUE,
    TRANSACT_TIME,
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

ORD_REJ_REASON_CODES = {
    RejectReason.UNKNOWN_INDEX: "1", RejectReason.UNSUPPORTED_SIDE: "11",
    RejectReason.WRONG_CURRENCY: "11", RejectReason.INVALID_AMOUNT: "13",
    RejectReason.TOO_PRECISE: "13", RejectReason.BELOW_MINIMUM: "13",
    RejectReason.INVALID_PRICE: "99", RejectReason.ALREADY_EXPIRED: "4",
    RejectReason.INSUFFICIENT_COLLATERAL: "3", RejectReason.DUPLICATE_ORDER_ID: "6",
    RejectReason.WRONG_WALLET: "99",
    RejectReason.ACCOUNT_IN_DOUBT: "99", RejectReason.NOT_TRADABLE: "0",
    RejectReason.SIGNED_TERMS: "99",
}
CXL_REJ_REASON_CODES = {
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
                    (ORIG_CL_ORD_ID, _before(order, event.request_id, transaction.input))],
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
            case ev.IndexOrderMintRefused():
                return self._mint_refused(event, seq, ts)
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
            case ev.CollateralRefunded():
                name = _order_names(transaction).get(event.order_id, str(event.order_id))
                return event.account, self._collateral(
                    event, seq, ts, f"available again: the vault refused order {name}'s "
                    "settlement, nothing was charged", [])
        return None

    # --- execution reports -------------------------------------------------------------------

    def _filled(self, event: ev.IndexOrderFilled, done: ev.IndexOrderCompleted | None,
                seq: int, ts: int) -> Addressed:
        order = event.order
        filled = done is not None and done.status is OrderStatus.FILLED
        leaves = ZERO if done else floor_decimals(
            event.remaining / event.price, self.indexes[order.index].decimals)
        report = execution(order, seq, ts, "F", "2" if filled else "1", [
            (LAST_QTY, amount(event.units)), (LAST_PX, price(event.price)),
            (GROSS_TRADE_AMT, amount(event.cost)),
            (EXCHANGE_FEE, amount(event.fees))], leaves=leaves)
        return order.account, _override(report, {
            LEAVES_CASH_QTY: amount(ZERO if done else event.remaining)})

    def _replaced(self, event: ev.IndexOrderReduced, request: object, seq: int,
                  ts: int) -> Addressed:
        order = event.order
        status = "1" if order.filled_units else "0"
        if not isinstance(request, ReduceIndexOrder):  # not asked for: restated, saying why
            return order.account, execution(order, seq, ts, "D", status, [
                (EXEC_RESTATEMENT_REASON, "99"), (TEXT, event.reason)])
        return order.account, execution(order, seq, ts, "5", status,
                                        [(ORIG_CL_ORD_ID, request.client_order_id)],
                                        cl_ord_id=event.request_id or None)

    def _completed(self, event: ev.IndexOrderCompleted, transaction: ev.Transaction, seq: int,
                   ts: int) -> Addressed | None:
        order = event.order
        if event.status is OrderStatus.FILLED:
            if any(f.order_id == order.order_id
                   for f in transaction.of_type(ev.IndexOrderFilled)):
                return None  # its last fill said so
            return order.account, execution(order, seq, ts, "I", "2", [(TEXT, (
                event.reason or "filled: the collateral left can buy nothing more and was "
                "released"))])
        code = _CLOSED[event.status]
        extra = ([(ORIG_CL_ORD_ID, _before(order, event.request_id, transaction.input))]
                 if event.request_id else []) + ([(TEXT, event.reason)] if event.reason else [])
        return order.account, execution(order, seq, ts, code, code, extra,
                                        cl_ord_id=event.request_id or None)

    def _minted(self, event: ev.IndexOrderMinted, seq: int, ts: int) -> Addressed:
        order = event.order
        return order.account, execution(order, seq, ts, "B", "B", [
            (MINT_TX_HASH, event.tx_hash), (MINT_QTY, amount(event.units)),
            (CHAIN_ID, str(self.chain_id)), (WALLET_ADDRESS, order.wallet),
            (EXCHANGE_FEE, amount(order.fees)), (MANAGEMENT_FEE, "0")])

    def _mint_refused(self, event: ev.IndexOrderMintRefused, seq: int, ts: int) -> Addressed:
        """The fills reported are undone: nothing was charged or minted."""
        order = event.order
        return order.account, execution(order, seq, ts, "D", _CLOSED[order.status], [
            (EXEC_RESTATEMENT_REASON, "99"), (TEXT, (
                f"the vault refused the settlement for good ({event.reason}): nothing was "
                f"charged or minted, the {amount(event.refunded)} spent is available "
                "again"))])

    def _mint_restated(self, event: ev.IndexOrderMintRestated, seq: int, ts: int) -> Addressed:
        order = event.order
        return order.account, execution(order, seq, ts, "D", "B", [
            (EXEC_RESTATEMENT_REASON, "99"), (MINT_TX_HASH, event.tx_hash),
            (CHAIN_ID, str(self.chain_id)),
            (WALLET_ADDRESS, order.wallet), (TEXT, (
                f"settlement restated: {event.previous_tx} left the chain in a "
                f"reorganisation; the vault settled the order once, in {event.tx_hash}"))])

    def _rejected(self, event: ev.IndexOrderRejected, request: object, seq: int,
                  ts: int) -> Outgoing:
        symbol, cash = ("NONE", ZERO)
        if isinstance(request, SubmitIndexOrder):
            symbol, cash = request.index or "NONE", request.collateral
        return _order_reject(event.client_order_id, symbol, cash,
                             ORD_REJ_REASON_CODES[event.reason], event.text, str(seq), ts,
                             [(EVENT_SEQ_NUM, str(seq))])

    @staticmethod
    def _cancel_rejected(event: ev.CancelRejected, request: CancelIndexOrder | ReduceIndexOrder,
                         seq: int, ts: int) -> Outgoing:
        return _cancel_reject(
            event.order, event.request_id, event.client_order_id,
            "1" if isinstance(request, CancelIndexOrder) else "2",
            CXL_REJ_REASON_CODES.get(event.reason, "99"), event.text,
            [(TRANSACT_TIME, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))])

    # --- collateral -----------------------------------------------------------------------

    def _collateral(self, event: ev.CollateralDeposited | ev.CollateralReleased
                    | ev.CollateralSetAside | ev.CollateralGivenBack | ev.CollateralWithdrawn
                    | ev.CollateralRefunded,
                    seq: int,
                    ts: int, text: str, extra: list[tuple[int, str]]) -> Outgoing:
        return collateral_report(event.balance, event.account, event.asset, str(seq), None, [
            (QUANTITY, amount(event.amount)), (TEXT, text), *extra, (CHAIN_ID, str(self.chain_id)),
            (TRANSACT_TIME, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))])

    # --- quotes -----------------------------------------------------------------------------

    @staticmethod
    def quote(event: ev.QuoteIssued, quote_req_id: str, seq: int, ts: int) -> Outgoing:
        return Outgoing("S", (
            (QUOTE_REQ_ID, quote_req_id), (QUOTE_ID, str(seq)), (SYMBOL, event.index), (SIDE, "1"),
            (CASH_ORDER_QTY, amount(event.collateral)), (OFFER_PX, price(event.index_price)),
            (OFFER_SIZE, amount(event.units)), (TRANSACT_TIME, utc_timestamp(ts))))

    @staticmethod
    def quote_rejected(event: ev.QuoteRejected, quote_req_id: str, known: bool) -> Outgoing:
        return Outgoing("AG", ((QUOTE_REQ_ID, quote_req_id),
        (QUOTE_REQUEST_REJECT_REASON, "99" if known else "1"),
                               (NO_RELATED_SYM, "1"), (SYMBOL, event.index), (TEXT, event.text)))


def execution(order: OrderSnapshot, seq: int, ts: int, exec_type: str, status: str,
              extra: list[tuple[int, str]], cl_ord_id: str | None = None,
              leaves: Decimal = ZERO) -> Outgoing:
    """An ExecutionReport of ``order`` as the snapshot has it."""
    avg = order.spent / order.filled_units if order.filled_units else ZERO
    open_cash = order.remaining if order.is_open else ZERO
    return Outgoing("8", (
        (ORDER_ID, str(order.order_id)), (EXEC_ID, str(seq)), (EXEC_TYPE, exec_type),
        (ORD_STATUS, status),
        (CL_ORD_ID, cl_ord_id or order.client_id), *extra, (SYMBOL, order.index), (SIDE, "1"),
        (CASH_ORDER_QTY, amount(order.collateral)), (CURRENCY, order.collateral_asset),
        (CUM_QTY, amount(order.filled_units)), (AVG_PX, price(avg)), (LEAVES_QTY, amount(leaves)),
        (LEAVES_CASH_QTY, amount(open_cash)), (CUM_CASH_QTY, amount(order.spent)),
        (TRANSACT_TIME, utc_timestamp(ts)), (EVENT_SEQ_NUM, str(seq))))


def status(order: OrderSnapshot, ts: int, extra: Sequence[tuple[int, str]] = ()) -> Outgoing:
    """An order status report (150=I), outside the event stream."""
    report = execution(order, 0, ts, "I", _status(order), list(extra))
    return Outgoing(report.msg_type, tuple(
        (t, _refusal_id() if t == EXEC_ID else v) for t, v in report.fields if t != EVENT_SEQ_NUM))


def unknown_order(cl_ord_id: str, symbol: str, text: str,
                  extra: Sequence[tuple[int, str]]) -> Outgoing:
    """A status report (150=I) for an order we do not have: OrdStatus 8, and why."""
    return Outgoing("8", (
        (ORDER_ID, "NONE"), (EXEC_ID, _refusal_id()), (EXEC_TYPE, "I"), (ORD_STATUS, "8"),
        (CL_ORD_ID, cl_ord_id),
        *extra, (SYMBOL, symbol), (SIDE, "1"), (CUM_QTY, "0"), (AVG_PX, "0"), (LEAVES_QTY, "0"),
        (TEXT, text)))


def collateral_report(balance: Balance, account: str, asset: str, report_id: str,
                      inquiry_id: str | None, extra: list[tuple[int, str]]) -> Outgoing:
    """CollateralReport (BA): ``balance``, the account's balance of ``asset``."""
    inquiry = [] if inquiry_id is None else [(COLL_INQUIRY_ID, inquiry_id)]
    return Outgoing("BA", (
        (COLL_RPT_ID, report_id), *inquiry, (COLL_STATUS, "3"), (ACCOUNT, account),
        (CURRENCY, asset),
        (TOTAL_NET_VALUE, amount(balance.available + balance.reserved)),
        (CASH_OUTSTANDING, amount(balance.available)), *extra))


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
    cash = msg.get(CASH_ORDER_QTY)
    echoed = [(CASH_ORDER_QTY, cash)] if cash is not None and len(cash) <= MAX_NUMBER_LENGTH else []
    return _order_reject(msg.get(CL_ORD_ID) or "NONE", msg.get(SYMBOL) or "NONE", None, code, text,
                         _refusal_id(), None, echoed)


def cancel_refused(msg: Received, view: AccountView, account: str, code: str,
                   text: str) -> Outgoing:
    orig = msg.get(ORIG_CL_ORD_ID) or ""
    return _cancel_reject(view.order(account, orig), msg.get(CL_ORD_ID) or "NONE", orig or "NONE",
                          "1" if msg.msg_type == "F" else "2", code, text, [])


def quote_refused(msg: Received, code: str, text: str) -> Outgoing:
    return Outgoing("AG", ((QUOTE_REQ_ID, msg.get(QUOTE_REQ_ID) or "NONE"),
    (QUOTE_REQUEST_REJECT_REASON, code), (NO_RELATED_SYM, "1"),
                           (SYMBOL, msg.get(SYMBOL) or "NONE"), (TEXT, text)))


def business_reject(msg: Received, code: str, text: str) -> Outgoing:
    """BusinessMessageReject (j); 380: 3 unsupported message type, 0 other. It names the
    message's own id (ClOrdID, QuoteReqID, CollInquiryID) in 379 when that is fit to send."""
    ref = next((value for tag in _REF_IDS.get(msg.msg_type, ()) if (value := msg.clean(tag))),
               None)
    return Outgoing("j", ((REF_SEQ_NUM, msg.seq_num), (REF_MSG_TYPE, msg.msg_type), *(
        [(BUSINESS_REJECT_REF_ID, ref)] if ref else []), (BUSINESS_REJECT_REASON, code),
        (TEXT, text)))


_REF_IDS = {"D": (11,), "F": (11,), "G": (11,), "R": (131,), "BB": (909,), "H": (11,),
            "AF": (584,)}


def _order_reject(cl_ord_id: str, symbol: str, cash: Decimal | None, code: str, text: str,
                  exec_id: str, ts: int | None, extra: list[tuple[int, str]]) -> Outgoing:
    quantity = [] if cash is None else [(CASH_ORDER_QTY, amount(cash))]
    stamp = [] if ts is None else [(TRANSACT_TIME, utc_timestamp(ts))]
    return Outgoing("8", (
        (ORDER_ID, "NONE"), (EXEC_ID, exec_id), (EXEC_TYPE, "8"), (ORD_STATUS, "8"),
        (CL_ORD_ID, cl_ord_id), (SYMBOL, symbol),
        (SIDE, "1"), *quantity, (CUM_QTY, "0"), (AVG_PX, "0"), (LEAVES_QTY, "0"),
        (ORD_REJ_REASON, code), (TEXT, text),
        *stamp, *extra))


def _cancel_reject(order: OrderSnapshot | None, cl_ord_id: str, orig: str, response_to: str,
                   code: str, text: str, extra: list[tuple[int, str]]) -> Outgoing:
    status = "8" if order is None else _status(order)
    return Outgoing("9", (
        (ORDER_ID, "NONE" if order is None else str(order.order_id)), (CL_ORD_ID, cl_ord_id),
        (ORIG_CL_ORD_ID, orig),
        (ORD_STATUS, status), (CXL_REJ_RESPONSE_TO, response_to), (CXL_REJ_REASON, code),
        (TEXT, text), *extra))


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
