"""The questions a client asks that the engine need not see, answered from the account view
(the orders and balances as of the last transaction): an order's status (H), every open
order's (AF), the account's collateral (BB)."""

from __future__ import annotations

from fix_gateway import reports
from fix_gateway.account_view import AccountView
from fix_gateway.tags import (
    ACCOUNT,
    CL_ORD_ID,
    COLL_INQUIRY_ID,
    COLL_INQUIRY_RESULT,
    COLL_INQUIRY_STATUS,
    CURRENCY,
    LAST_RPT_REQUESTED,
    MASS_STATUS_REQ_ID,
    MASS_STATUS_REQ_TYPE,
    ORD_STATUS_REQ_ID,
    SYMBOL,
    TEXT,
    TOT_NUM_REPORTS,
)
from fix_gateway.wire import Outgoing, Received, Replies


def order_status(msg: Received, account: str, view: AccountView, now: int) -> Replies:
    """OrderStatusRequest (H): the order as of the last transaction, or OrdStatus 8."""
    cl_ord_id, request = msg.get(CL_ORD_ID) or "", msg.get(ORD_STATUS_REQ_ID)
    echo = [(ORD_STATUS_REQ_ID, request)] if request else []
    order = view.order(account, cl_ord_id) if msg.get(ACCOUNT) in (None, account) else None
    if order is None:
        return (reports.unknown_order(cl_ord_id, msg.get(SYMBOL) or "NONE",
                                      f"no order {cl_ord_id} for account {account}", echo),)
    return (reports.status(order, now, echo),)


def mass_status(msg: Received, account: str, view: AccountView, now: int) -> Replies:
    """OrderMassStatusRequest (AF): every open order of the account (585=7), or of one index
    (585=1), one status report each; TotNumReports and LastRptRequested say how many and
    which is the last."""
    kind, symbol = msg.get(MASS_STATUS_REQ_TYPE), msg.get(SYMBOL)
    if msg.get(ACCOUNT) not in (None, account):
        return (reports.business_reject(msg, "0", f"Account(1) must be this session's "
                                                  f"account {account}"),)
    if kind not in ("1", "7") or (kind == "1" and not symbol):
        return (reports.business_reject(msg, "0", "MassStatusReqType(585) must be 7 (all "
                                                  "orders) or 1 (the orders of Symbol(55))"),)
    orders = view.open_orders(account, symbol if kind == "1" else None)
    request = [(MASS_STATUS_REQ_ID, msg.get(MASS_STATUS_REQ_ID) or "")]
    if not orders:
        return (reports.unknown_order("NONE", symbol or "NONE", "no open orders",
                                      [*request, (TOT_NUM_REPORTS, "0"),
                                       (LAST_RPT_REQUESTED, "Y")]),)
    last = len(orders)
    return tuple(reports.status(order, now, [*request, (TOT_NUM_REPORTS, str(last)),
                                             (LAST_RPT_REQUESTED, "Y" if n == last else "N")])
                 for n, order in enumerate(orders, 1))


def collateral_inquiry(msg: Received, account: str, view: AccountView,
                       collaterals: list[str]) -> Replies:
    """CollateralInquiry (BB): an acknowledgement, then a report per collateral asked for
    (Currency(15), or each one the gateway knows)."""
    inquiry = msg.get(COLL_INQUIRY_ID) or ""
    if msg.get(ACCOUNT) not in (None, account):
        return (_inquiry_refused(inquiry, msg.get(ACCOUNT) or "", None, "3",
                                 f"Account(1) must be this session's account {account}"),)
    currency = msg.get(CURRENCY)
    if currency is not None and currency not in collaterals:
        return (_inquiry_refused(inquiry, account, currency, "2",
                                 f"Currency(15) {currency} is no collateral here; known: "
                                 + ", ".join(collaterals)),)
    assets = [currency] if currency else collaterals
    acknowledged = Outgoing("BG", ((COLL_INQUIRY_ID, inquiry), (COLL_INQUIRY_STATUS, "0"),
                                   (TOT_NUM_REPORTS, str(len(assets))), (ACCOUNT, account)))
    return (acknowledged,
            *(reports.collateral_report(view.balance(account, asset), account, asset,
                                        f"{inquiry}-{n}", inquiry, [])
              for n, asset in enumerate(assets, 1)))


def _inquiry_refused(inquiry: str, account: str, currency: str | None, result: str,
                     text: str) -> Outgoing:
    """CollateralInquiryAck rejected (945=4), with the result code and why."""
    return Outgoing("BG", ((COLL_INQUIRY_ID, inquiry), (COLL_INQUIRY_STATUS, "4"),
                           (COLL_INQUIRY_RESULT, result), (ACCOUNT, account),
                           *([(CURRENCY, currency)] if currency is not None else []),
                           (TEXT, text)))
