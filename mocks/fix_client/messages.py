"""Our FIX 4.4 application messages (reference fix-gateway.md §8), built and described.

Builders return bodies with MsgType(35) only; ``FixClient.send`` adds the header. Amounts are
``Decimal`` written with ``format(x, "f")``: never a float, never an exponent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import simplefix

from mocks.fix_client.wallet import SignedFields

DICTIONARY = Path(__file__).resolve().parents[2] / "fix_gateway" / "spec" / "FIX44-gw.xml"
"""The gateway's published data dictionary: the client reads its user-defined tags there, as
a counterparty's client would, rather than importing the gateway."""


@cache
def _fields() -> dict[str, int]:
    fields = ElementTree.parse(DICTIONARY).getroot().find("fields")
    assert fields is not None, f"{DICTIONARY} has no <fields>"
    return {f.attrib["name"]: int(f.attrib["number"]) for f in fields}


MINT_TX_HASH = _fields()["MintTxHash"]
MINT_QTY = _fields()["MintQty"]
CHAIN_ID = _fields()["ChainID"]
WALLET_ADDRESS = _fields()["WalletAddress"]
DEPOSIT_TX_HASH = _fields()["DepositTxHash"]
LEAVES_CASH_QTY = _fields()["LeavesCashQty"]
CUM_CASH_QTY = _fields()["CumCashQty"]
MANAGEMENT_FEE = _fields()["ManagementFee"]
EXCHANGE_FEE = _fields()["ExchangeFee"]
ORDER_SIGNATURE = _fields()["OrderSignature"]
MAX_FEE_BPS = _fields()["MaxFeeBps"]

EXEC_TYPES = {"0": "new", "8": "rejected", "F": "fill", "4": "canceled", "C": "expired",
              "5": "replaced", "6": "pending-cancel", "B": "minted", "A": "pending-new"}
TERMINAL_STATUSES = {"2": "filled", "4": "canceled", "C": "expired", "8": "rejected"}


def amount(value: Decimal) -> str:
    """A FIX float from a Decimal; floats are refused (they carry binary rounding)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"amounts must be finite Decimals, not {value!r}")
    return format(value, "f")


def _message(kind: str, *pairs: tuple[int, str | None]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(35, kind)
    for tag, value in pairs:
        msg.append_pair(tag, value)     # None: the optional field is left out
    return msg


def _transact_time(msg: simplefix.FixMessage) -> None:
    msg.append_utc_timestamp(60, datetime.now(UTC), precision=3)


def new_order(cl_ord_id: str, symbol: str, cash: Decimal, *, currency: str | None = None,
              ord_type: str = "1", price: Decimal | None = None,
              time_in_force: str | None = None, expire_time: str | None = None,
              side: str = "1", account: str | None = None,
              signed: SignedFields | None = None) -> simplefix.FixMessage:
    """NewOrderSingle sized in collateral: CashOrderQty(152), never OrderQty(38). ``signed``:
    what the wallet signed (a limit order good till its deadline, with the signature)."""
    if signed is not None:
        ord_type, price, time_in_force, expire_time = ("2", signed.price, "6",
                                                       signed.expire_time)
    msg = _message("D", (11, cl_ord_id), (1, account), (55, symbol), (54, side))
    _transact_time(msg)
    for tag, value in ((40, ord_type), (44, None if price is None else amount(price)),
                       (152, amount(cash)), (15, currency), (59, time_in_force),
                       (126, expire_time)):
        msg.append_pair(tag, value)
    if signed is not None:
        msg.append_pair(MAX_FEE_BPS, str(signed.max_fee_bps))
        msg.append_pair(ORDER_SIGNATURE, signed.signature)
    return msg


def cancel(cl_ord_id: str, orig_cl_ord_id: str, symbol: str, *,
           side: str = "1") -> simplefix.FixMessage:
    msg = _message("F", (41, orig_cl_ord_id), (11, cl_ord_id), (55, symbol), (54, side))
    _transact_time(msg)
    return msg


def replace(cl_ord_id: str, orig_cl_ord_id: str, symbol: str, cash: Decimal, *,
            ord_type: str = "1", price: Decimal | None = None,
            side: str = "1") -> simplefix.FixMessage:
    """Cancel/replace: a lower CashOrderQty is a partial cancel."""
    msg = _message("G", (41, orig_cl_ord_id), (11, cl_ord_id), (55, symbol), (54, side))
    _transact_time(msg)
    for tag, value in ((40, ord_type), (44, None if price is None else amount(price)),
                       (152, amount(cash))):
        msg.append_pair(tag, value)
    return msg


def quote_request(quote_req_id: str, symbol: str, cash: Decimal, *, side: str = "1",
                  currency: str | None = None) -> simplefix.FixMessage:
    """QuoteRequest with one NoRelatedSym(146) entry; Symbol(55) first, as the group demands."""
    return _message("R", (131, quote_req_id), (146, "1"), (55, symbol), (54, side),
                    (152, amount(cash)), (15, currency))


def collateral_inquiry(inquiry_id: str) -> simplefix.FixMessage:
    return _message("BB", (909, inquiry_id))


# -- describing --------------------------------------------------------------------------------

_NAMES = {"8": "ExecutionReport", "9": "OrderCancelReject", "S": "Quote",
          "AG": "QuoteRequestReject", "BA": "CollateralReport", "BG": "CollateralInquiryAck",
          "AZ": "CollateralResponse", "j": "BusinessMessageReject", "3": "Reject",
          "D": "NewOrderSingle", "F": "OrderCancelRequest", "G": "OrderCancelReplaceRequest",
          "R": "QuoteRequest", "BB": "CollateralInquiry"}

_ORDER = ((11, "ClOrdID"), (41, "OrigClOrdID"), (55, "Symbol"), (152, "CashOrderQty"))
_FIELDS: dict[str, tuple[tuple[int, str], ...]] = {
    "8": (*_ORDER[:3], (32, "LastQty"), (31, "LastPx"), (14, "CumQty"),
          (6, "AvgPx"), (381, "GrossTradeAmt"), (CUM_CASH_QTY, "CumCashQty"),
          (LEAVES_CASH_QTY, "LeavesCashQty"), (MINT_QTY, "MintQty"),
          (MINT_TX_HASH, "MintTxHash"), (CHAIN_ID, "ChainID"),
          (MANAGEMENT_FEE, "ManagementFee"), (EXCHANGE_FEE, "ExchangeFee"),
          (103, "OrdRejReason")),
    "9": (*_ORDER[:2], (39, "OrdStatus"), (102, "CxlRejReason")),
    "S": ((131, "QuoteReqID"), (117, "QuoteID"), (55, "Symbol"), (152, "CashOrderQty"),
          (133, "OfferPx"), (135, "OfferSize"), (62, "ValidUntilTime")),
    "AG": ((131, "QuoteReqID"), (658, "QuoteRequestRejectReason")),
    "BA": ((908, "CollRptID"), (909, "CollInquiryID"), (1, "Account"), (15, "Currency"),
           (53, "Quantity"), (900, "TotalNetValue"), (901, "CashOutstanding"),
           (DEPOSIT_TX_HASH, "DepositTxHash")),
    "BG": ((909, "CollInquiryID"), (945, "CollInquiryStatus"), (911, "TotNumReports")),
    "AZ": ((902, "CollAsgnID"), (905, "CollAsgnRespType")),
    "j": ((372, "RefMsgType"), (379, "BusinessRejectRefID"), (380, "BusinessRejectReason")),
    "3": ((45, "RefSeqNum"), (371, "RefTagID"), (372, "RefMsgType"),
          (373, "SessionRejectReason")),
    "D": (_ORDER[0], *_ORDER[2:]), "F": _ORDER[:3], "G": _ORDER,
    "R": ((131, "QuoteReqID"), *_ORDER[2:]),
    "BB": ((909, "CollInquiryID"),),
}


def describe(message: simplefix.FixMessage) -> str:
    """One readable line, e.g. ``ExecutionReport new ClOrdID=o1 CumQty=0 LeavesCashQty=1000``."""
    kind = _text(message.get(35))
    words = [_NAMES.get(kind, f"MsgType={kind}")]
    if kind == "8":
        exec_type = _text(message.get(150))
        partial = exec_type == "F" and message.get(39) == b"1"
        words.append("partial-fill" if partial else
                     EXEC_TYPES.get(exec_type, f"ExecType={exec_type}"))
    for tag, name in (*_FIELDS.get(kind, ()), (58, "Text")):
        value = message.get(tag)
        if value is not None:
            words.append(f"{name}={_quoted(_text(value))}")
    if message.get(43) == b"Y":
        words.append("(PossDup)")
    return " ".join(words)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode(errors="replace")


def _quoted(value: str) -> str:
    return f'"{value}"' if not value or any(c.isspace() or c == '"' for c in value) else value
