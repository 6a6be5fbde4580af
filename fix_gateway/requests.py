"""What a client's application message asks for: an engine command, or a reject saying why
not. The checks here are the ones FIX's form needs (which size field, which order type, which
time in force), and numbers within the door's bound (``wire.amount_field``: no longer than 64
characters, below 1E+24, at most 18 decimals); what the order means (known index, enough
collateral, a new ClOrdID, amounts within the collateral's precision) is the engine's to judge,
so each rule lives in one place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from Crypto.Hash import keccak

from fix_gateway import reports
from fix_gateway.account_view import AccountView
from fix_gateway.signing import OrderSigning, signed_terms
from fix_gateway.tags import (
    ACCOUNT,
    CASH_ORDER_QTY,
    CL_ORD_ID,
    CURRENCY,
    EXPIRE_TIME,
    NO_RELATED_SYM,
    ORD_TYPE,
    ORDER_QTY,
    ORDER_SIGNATURE,
    ORIG_CL_ORD_ID,
    PRICE,
    SIDE,
    SYMBOL,
    TIME_IN_FORCE,
    WALLET_ADDRESS,
)
from fix_gateway.wire import (
    Outgoing,
    Received,
    amount_field,
    decimal_field,
    parse_utc_timestamp,
    unix_ms,
    utc_timestamp,
)
from solver.core.commands import CancelIndexOrder, ReduceIndexOrder, RequestQuote, SubmitIndexOrder
from solver.core.model import Side
from solver.core.signed_terms import SignedTerms

MAX_ID_LENGTH = 64
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

# OrdRejReason(103) and CxlRejReason(102) values used for the form checks.
UNKNOWN_SYMBOL = "1"
EXCHANGE_CLOSED = "2"
UNSUPPORTED = "11"
INCORRECT_QUANTITY = "13"
UNKNOWN_ACCOUNT = "15"
OTHER = "99"

_SIDES = {"1": Side.BUY, "2": Side.SELL}


def new_order(msg: Received, account: str, now: int,
              signing: OrderSigning | None = None) -> SubmitIndexOrder | Outgoing:
    def reject(code: str, text: str) -> Outgoing:
        return reports.order_refused(msg, code, text)

    cl_ord_id = msg.get(CL_ORD_ID) or ""
    if len(cl_ord_id) > MAX_ID_LENGTH:
        return reject(OTHER, f"ClOrdID(11) is longer than {MAX_ID_LENGTH} characters")
    if not msg.get(SYMBOL):
        return reject(UNKNOWN_SYMBOL, "Symbol(55) is required: the index to buy")
    if msg.get(ACCOUNT) not in (None, account):
        return reject(UNKNOWN_ACCOUNT, f"Account(1) must be this session's account {account}")
    cash = _cash(msg)
    if isinstance(cash, str):
        return reject(INCORRECT_QUANTITY, cash)
    side = _SIDES.get(msg.get(SIDE) or "")
    if side is None:
        return reject(UNSUPPORTED, f"Side(54)={msg.get(SIDE)} is not supported: use 1 (buy)")
    if msg.get(ORD_TYPE) not in ("1", "2"):
        return reject(UNSUPPORTED, f"OrdType(40)={msg.get(ORD_TYPE)} is not supported: use 1 "
                                   "(market) or 2 (limit)")
    max_price = _max_price(msg)
    if isinstance(max_price, str):
        return reject(OTHER, max_price)
    expire_at = _expiry(msg, now)
    if isinstance(expire_at, str):
        return reject(UNSUPPORTED, expire_at)
    wallet = msg.get(WALLET_ADDRESS)
    problem = None if wallet is None else wallet_problem(wallet)
    if problem:
        return reject(OTHER, f"WalletAddress({WALLET_ADDRESS}) {problem}")
    signed: SignedTerms | None = None
    if msg.has(ORDER_SIGNATURE) or (signing is not None and signing.required):
        symbol = msg.get(SYMBOL) or ""
        if signing is not None and symbol not in signing.tokens:
            return reject(UNKNOWN_SYMBOL, f"unknown index {symbol}; known: "
                                          + ", ".join(sorted(signing.tokens)))
        terms = _signed(msg, account, signing, cash, max_price, expire_at)
        if isinstance(terms, str):
            return reject(OTHER, terms)
        signed, max_price = terms, None  # Price(44) is the signed limit, fees included
    return SubmitIndexOrder(now, account, cl_ord_id, msg.get(SYMBOL) or "", cash, side,
                            msg.get(CURRENCY), max_price, expire_at, wallet, signed)


def _signed(msg: Received, account: str, signing: OrderSigning | None, cash: Decimal,
            limit: Decimal | None, expire_at: int | None) -> SignedTerms | str:
    if signing is None:
        return (f"OrderSignature({ORDER_SIGNATURE}) is for a gateway whose vault checks "
                "signatures; this one takes orders without it")
    if not msg.has(ORDER_SIGNATURE):
        return (f"OrderSignature({ORDER_SIGNATURE}) is required: every order is signed by "
                "the account's wallet (docs/fix-gateway.md, Signed orders)")
    return signed_terms(msg, account, signing, cash, limit, expire_at)


def wallet_problem(address: str) -> str | None:
    """Why ``address`` is not an EVM address the index tokens can be minted to, or None: 0x
    and 40 hex digits, in one case or with a valid EIP-55 checksum."""
    if not _EVM_ADDRESS.fullmatch(address):
        return f"must be 0x and 40 hex digits, got {address!r}"
    digits = address[2:]
    if digits in (digits.lower(), digits.upper()):
        return None
    digest = keccak.new(data=digits.lower().encode(), digest_bits=256).hexdigest()
    expected = "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(
        digits.lower(), digest, strict=False))
    return None if digits == expected else f"has a wrong EIP-55 checksum (0x{expected})"


def cancel(msg: Received, account: str, view: AccountView,
           now: int) -> CancelIndexOrder | Outgoing:
    problem = _change_problem(msg, account, view)
    if problem:
        return reports.cancel_refused(msg, view, account, OTHER, problem)
    return CancelIndexOrder(now, account, msg.get(ORIG_CL_ORD_ID) or "", msg.get(CL_ORD_ID) or "")


def replace(msg: Received, account: str, view: AccountView,
            now: int) -> ReduceIndexOrder | Outgoing:
    def refuse(text: str) -> Outgoing:
        return reports.cancel_refused(msg, view, account, OTHER, text)

    problem = _change_problem(msg, account, view)
    if problem:
        return refuse(problem)
    cash = _cash(msg)
    if isinstance(cash, str):
        return refuse(cash)
    order = view.order(account, msg.get(ORIG_CL_ORD_ID) or "")
    if order is not None:
        price = order.max_price if order.limit is None else order.limit
        ord_type = "1" if price is None else "2"
        new_price = decimal_field(msg.get(PRICE))
        if msg.get(ORD_TYPE) != ord_type or (msg.has(PRICE) and new_price != price):
            return refuse("only CashOrderQty(152) can be changed, to a lower amount; "
                          f"keep OrdType(40)={ord_type}"
                          + ("" if price is None else f" and Price(44)={price}"))
    return ReduceIndexOrder(now, account, msg.get(ORIG_CL_ORD_ID) or "", cash,
    msg.get(CL_ORD_ID) or "")


def quote_request(msg: Received, quote_id: str, now: int) -> RequestQuote | Outgoing:
    if not msg.get(SYMBOL):
        return reports.quote_refused(msg, UNKNOWN_SYMBOL, "Symbol(55) is required")
    if msg.get(NO_RELATED_SYM) != "1":
        return reports.quote_refused(msg, OTHER, "ask for one symbol per QuoteRequest")
    if msg.get(SIDE) not in (None, "1"):
        return reports.quote_refused(msg, OTHER, "only buy quotes (Side 1) are given")
    cash = _cash(msg)
    if isinstance(cash, str):
        return reports.quote_refused(msg, OTHER, cash)
    return RequestQuote(now, quote_id, msg.get(SYMBOL) or "", cash)


def _cash(msg: Received) -> Decimal | str:
    """CashOrderQty(152), the collateral amount within the door's bound; the engine judges
    whether it is positive and within the collateral's precision."""
    if msg.has(ORDER_QTY):
        return "OrderQty(38) is not accepted: give the collateral amount in CashOrderQty(152)"
    text = msg.get(CASH_ORDER_QTY)
    if text is None:
        return "CashOrderQty(152) is required: the collateral amount to spend"
    return amount_field("CashOrderQty(152)", text)


def _max_price(msg: Received) -> Decimal | str | None:
    """The limit (OrdType 2) or None (OrdType 1, market)."""
    text = msg.get(PRICE)
    if msg.get(ORD_TYPE) == "1":
        return None if text is None else "Price(44) is only for limit orders (OrdType 2)"
    if text is None:
        return "Price(44), the highest index price to pay, is required for a limit order"
    return amount_field("Price(44)", text)


def _expiry(msg: Received, now: int) -> int | str | None:
    tif, expire = msg.get(TIME_IN_FORCE), msg.get(EXPIRE_TIME)
    if tif == "6":
        moment = None if expire is None else parse_utc_timestamp(expire)
        return "TimeInForce 6 (GTD) needs ExpireTime(126)" if moment is None else moment
    if expire is not None:
        return "ExpireTime(126) goes with TimeInForce(59)=6 (good till date)"
    if tif in (None, "1"):
        return None
    if tif == "0":  # a day order ends at the next UTC midnight
        day = datetime.fromisoformat(utc_timestamp(now)[:8]).date() + timedelta(days=1)
        return unix_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
    return (f"TimeInForce(59)={tif} is not supported: use 0 (day), 1 (good till cancel) "
            "or 6 (good till date)")


def _change_problem(msg: Received, account: str, view: AccountView) -> str | None:
    """Form problems of a cancel or replace; unknown or closed orders are the engine's."""
    if len(msg.get(CL_ORD_ID) or "") > MAX_ID_LENGTH:
        return f"ClOrdID(11) is longer than {MAX_ID_LENGTH} characters"
    if msg.get(ACCOUNT) not in (None, account):
        return f"Account(1) must be this session's account {account}"
    order = view.order(account, msg.get(ORIG_CL_ORD_ID) or "")
    if order is not None and msg.get(SYMBOL) != order.index:
        return f"Symbol(55) {msg.get(SYMBOL)} is not the order's symbol {order.index}"
    return None
