"""Bad input, table-driven: each malformed or invalid message gets its reject, the session
stays up, and the engine's state does not change."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest
import simplefix

from fix_gateway.requests import new_order, quote_request
from fix_gateway.wire import SOH, Outgoing, Received
from mocks.fix_client import FixClient, messages
from solver.core.commands import SubmitIndexOrder
from tests.support.exchange import run, until
from tests.support.service import comparable, edit, field_of, report_where, service

Build = Callable[[], simplefix.FixMessage]


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    reply: str
    """35 of the answer: 3 session Reject, 8 ExecutionReport, 9, AG, j, BG; "" ignored."""
    fields: dict[int, str]


def order(**changes: str | bytes | None) -> Build:
    """A valid resting order (limit below the market), with fields changed or removed."""
    def build() -> simplefix.FixMessage:
        message = messages.new_order("bad", "SY2", D("100"), ord_type="2", price=D("900"))
        return edit(message, changes)
    return build


def twice(tag: int, value: str) -> Build:
    def build() -> simplefix.FixMessage:
        message = order()()
        message.append_pair(tag, value)
        return message
    return build


def cancel(orig: str = "rest1", cl_ord_id: str | bytes = "cx",
           **changes: str | bytes | None) -> Build:
    return lambda: edit(messages.cancel(cl_ord_id, orig, "SY2"), changes)


def replace(orig: str = "rest1", cash: str = "500", **changes: str | None) -> Build:
    return lambda: edit(messages.replace("rx", orig, "SY2", D(cash), ord_type="2",
                                         price=D("900")), changes)


def quote(**changes: str | bytes | None) -> Build:
    return lambda: edit(messages.quote_request("qx", "SY2", D("100")), changes)


def bare(msg_type: str, *pairs: tuple[int, str]) -> Build:
    def build() -> simplefix.FixMessage:
        message = simplefix.FixMessage()
        message.append_pair(35, msg_type)
        for tag, value in pairs:
            message.append_pair(tag, value)
        return message
    return build


NOW = "20261122-00:00:00.000"
BEYOND_THE_CONTEXT = "999." + "9" * 65  # 68 digits: 1000 once normalised in the core's 60
CASES = [
    # QuickFIX's session-level Reject (35=3): the message breaks the data dictionary
    Case("cash not a number", order(t152="abc"), "3", {373: "6"}),
    Case("price not a number", order(t44="1.2.3"), "3", {373: "6"}),
    Case("side outside its values", order(t54="Z"), "3", {373: "5"}),
    Case("order type outside its values", order(t40="Q"), "3", {373: "5"}),
    Case("time in force outside its values", order(t59="Z"), "3", {373: "5"}),
    Case("no ClOrdID", order(t11=None), "3", {373: "1"}),
    Case("no Side", order(t54=None), "3", {373: "1"}),
    Case("no TransactTime", order(t60=None), "3", {373: "1"}),
    Case("no OrdType", order(t40=None), "3", {373: "1"}),
    Case("empty ClOrdID", order(t11=""), "3", {373: "4"}),
    Case("undefined tag", order(t29999="x"), "3", {373: "0"}),
    Case("our tag where it does not belong", order(t20001="0xabc"), "3", {373: "2"}),
    Case("repeated tag", twice(11, "again"), "3", {373: "13"}),
    Case("TransactTime garbled", order(t60="yesterday"), "3", {373: "6"}),
    Case("cancel without OrigClOrdID", cancel(t41=None), "3", {373: "1"}),
    Case("quote request without QuoteReqID", quote(t131=None), "3", {373: "1"}),
    Case("unknown message type", bare("ZZ"), "3", {373: "11"}),
    # ExecutionReport rejected (150=8): OrdRejReason and Text
    Case("both OrderQty and CashOrderQty", order(t38="1"), "8", {103: "13"}),
    Case("OrderQty instead of CashOrderQty", order(t38="1", t152=None), "8", {103: "13"}),
    Case("neither OrderQty nor CashOrderQty", order(t152=None), "8", {103: "13"}),
    Case("zero cash", order(t152="0"), "8", {103: "13"}),
    Case("negative cash", order(t152="-5"), "8", {103: "13"}),
    Case("cash finer than USDC's 6 decimals", order(t152="100.1234567"), "8", {103: "13"}),
    Case("cash with an exponent", order(t152="1e5"), "3", {373: "6"}),
    Case("absurd cash", order(t152="1" + "0" * 30), "8", {103: "13"}),
    Case("cash longer than 64 characters", order(t152=BEYOND_THE_CONTEXT), "8",
         {103: "13", 58: "CashOrderQty(152) is longer than 64 characters"}),
    Case("cash with more digits than the core carries", order(t152="999." + "9" * 60), "8",
         {103: "13"}),
    Case("limit price longer than 64 characters", order(t44="899." + "9" * 65), "8",
         {103: "99", 58: "Price(44) is longer than 64 characters"}),
    Case("more cash than deposited", order(t152="1000000"), "8", {103: "3"}),
    Case("too little cash to buy the index's smallest tradable quantity", order(t152="10"),
         "8", {103: "13"}),
    Case("unknown index", order(t55="NOPE"), "8", {103: "1"}),
    Case("no Symbol", order(t55=None), "8", {103: "1"}),
    Case("sell side", order(t54="2"), "8", {103: "11"}),
    Case("sell short side", order(t54="5"), "8", {103: "11"}),
    Case("stop order type", order(t40="3"), "8", {103: "11"}),
    Case("limit without price", order(t44=None), "8", {103: "99"}),
    Case("market with price", order(t40="1"), "8", {103: "99"}),
    Case("zero limit price", order(t44="0"), "8", {103: "99"}),
    Case("negative limit price", order(t44="-1"), "8", {103: "99"}),
    Case("immediate or cancel", order(t59="3"), "8", {103: "11"}),
    Case("fill or kill", order(t59="4"), "8", {103: "11"}),
    Case("good till date without ExpireTime", order(t59="6"), "8", {103: "11"}),
    Case("ExpireTime without good till date", order(t126=NOW), "8", {103: "11"}),
    Case("expiry in the past", order(t59="6", t126="20200101-00:00:00"), "8", {103: "4"}),
    Case("wrong currency", order(t15="EUR"), "8", {103: "11"}),
    Case("another account", order(t1="bob"), "8", {103: "15"}),
    Case("duplicate ClOrdID", order(t11="rest1"), "8", {103: "6"}),
    Case("ClOrdID too long", order(t11="x" * 65), "8", {103: "99"}),
    # OrderCancelReject (9): CxlRejReason and Text
    Case("cancel an unknown order", cancel("nope"), "9", {102: "1", 434: "1"}),
    Case("cancel with a used ClOrdID", cancel(cl_ord_id="rest1"), "9", {102: "6"}),
    Case("cancel naming another symbol", cancel(t55="OTHER"), "9", {102: "99"}),
    Case("cancel a closed order", cancel("closed1"), "9", {102: "0"}),
    Case("cancel for another account", cancel(t1="bob"), "9", {102: "99"}),
    Case("replace to a higher amount", replace(cash="5000"), "9", {102: "99", 434: "2"}),
    Case("replace to zero", replace(cash="0"), "9", {102: "99"}),
    Case("replace finer than 6 decimals", replace(cash="1.0000001"), "9", {102: "99"}),
    Case("replace with OrderQty", replace(t38="1"), "9", {102: "99"}),
    Case("replace an unknown order", replace("nope"), "9", {102: "1"}),
    Case("replace changing the price", replace(t44="950"), "9", {102: "99"}),
    Case("replace changing the order type", replace(t40="1", t44=None), "9", {102: "99"}),
    # QuoteRequestReject (AG)
    Case("quote an unknown index", quote(t55="NOPE"), "AG", {658: "1"}),
    Case("quote without cash", quote(t152=None), "AG", {658: "99"}),
    Case("quote with OrderQty", quote(t38="1"), "AG", {658: "99"}),
    Case("quote to sell", quote(t54="2"), "AG", {658: "99"}),
    Case("quote zero cash", quote(t152="0"), "AG", {658: "99"}),
    Case("quote cash longer than 64 characters", quote(t152="99." + "9" * 65), "AG",
         {658: "99", 58: "CashOrderQty(152) is longer than 64 characters"}),
    # BusinessMessageReject (j) and CollateralInquiryAck rejected (BG 945=4)
    Case("quote cancel", bare("Z", (131, "qx"), (117, "qx"), (298, "1")), "j", {380: "3"}),
    Case("order status of an unknown order", bare("H", (11, "nope"), (55, "SY2"), (54, "1")),
         "8", {150: "I", 39: "8", 58: "no order nope for account alice"}),
    Case("mass status of an unsupported kind", bare("AF", (584, "m1"), (585, "8")), "j",
         {380: "0", 379: "m1"}),
    Case("collateral assignment", bare("AY", (902, "a1"), (895, "0"), (903, "0"),
                                       (60, NOW)), "j", {380: "3"}),
    Case("collateral inquiry for another account", bare("BB", (909, "i1"), (1, "bob")), "BG",
         {945: "4"}),
    Case("collateral inquiry for an unknown currency", bare("BB", (909, "i2"), (15, "ZZZ")),
         "BG", {945: "4", 946: "2"}),
    # Bytes that are not printable ASCII, or too many: refused at the door naming the field,
    # the message's own id echoed only when it is fit to send back.
    Case("ClOrdID with bytes that are not UTF-8", order(t11=b"p1-\xff\x80"), "j",
         {380: "0", 379: None, 58: "ClOrdID(11) must be printable ASCII; the message "
                                    "changed nothing"}),
    Case("ClOrdID in latin-1", order(t11=b"caf\xe9"), "j", {380: "0", 379: None}),
    Case("WalletAddress with a byte that is not UTF-8", order(t20004=b"0x\xff"), "j",
         {380: "0", 379: "bad", 58: "WalletAddress(20004) must be printable ASCII; the "
                                     "message changed nothing"}),
    Case("Symbol with a byte that is not UTF-8", order(t55=b"SY\xff"), "j", {380: "0"}),
    Case("Currency with a byte that is not UTF-8", order(t15=b"US\xff"), "j", {380: "0"}),
    Case("Account with a control character", order(t1=b"alice\x07"), "j", {380: "0"}),
    Case("cancel ClOrdID in latin-1", cancel(cl_ord_id=b"c\xe9"), "j", {380: "0", 372: "F"}),
    Case("QuoteReqID with a byte that is not UTF-8", quote(t131=b"q\xff"), "j",
         {380: "0", 372: "R"}),
    Case("WalletAddress of 10 KB", order(t20004="0x" + "a" * 10_000), "j",
         {58: "WalletAddress(20004) is longer than 256 characters; the message changed "
              "nothing"}),
    Case("Text of 1 MB", order(t58="x" * 2**20), "j", {380: "0", 379: "bad"}),
    Case("WalletAddress that is no EVM address", order(t20004="0xabc"), "8", {103: "99"}),
    Case("WalletAddress with a wrong checksum",
         order(t20004="0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), "8",
         {103: "99", 58: "WalletAddress(20004) has a wrong EIP-55 checksum "
                         "(0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed)"}),
]


def test_there_are_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


def test_each_bad_message_is_rejected_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await until(lambda: s.runtime.market_data.live, what="the books live")
            await prepare(alice)
            before = comparable(s)
            for case in CASES:
                await check(alice, case)
            for garbled in garbled_messages(alice):
                await alice.send_raw(garbled)
                await alice.test_request()  # ignored, as FIX says: the session goes on
            assert alice.logged_on
            assert comparable(s) == before
    run(scenario(), timeout=120)


async def prepare(alice: FixClient) -> None:
    """A resting order to refer to, and a closed one."""
    for cl_ord_id in ("rest1", "closed1"):
        await alice.send(messages.new_order(cl_ord_id, "SY2", D("1000"), ord_type="2",
                                            price=D("900")))
        await report_where(alice, t11=cl_ord_id, t150="0")
    await alice.send(messages.cancel("closing", "closed1", "SY2"))
    await report_where(alice, t11="closing", t150="4")


async def check(alice: FixClient, case: Case) -> None:
    seen, rejects = len(alice.received), len(alice.session_rejects)
    await alice.send(case.build())
    await alice.test_request()
    answers = alice.received[seen:] + alice.session_rejects[rejects:]
    answers = [a for a in answers if field_of(a, 35) != "BA"]  # balance news, not an answer
    assert len(answers) == 1, f"{case.name}: {[a.to_string('|') for a in answers]}"
    [answer] = answers
    got = {t: field_of(answer, t) for t in case.fields}
    assert (field_of(answer, 35), got) == (case.reply, case.fields), (
        f"{case.name}: {answer.to_string('|')}")
    if case.reply in ("3", "8", "9", "AG", "j", "BG"):
        assert field_of(answer, 58), f"{case.name}: no Text(58)"


def garbled_messages(alice: FixClient) -> list[bytes]:
    good = alice._encode(order()(), alice.next_out)
    bad_checksum = good[:-4] + b"000\x01"
    bad_length = re.sub(rb"\x019=\d+", b"\x019=20", good, count=1)
    return [bad_checksum, bad_length, b"garbage\x01"]


def test_time_in_force_sets_the_expiry_exactly() -> None:
    from fix_gateway.requests import new_order
    from fix_gateway.wire import SOH, Outgoing, Received, utc_timestamp

    def expiry(*fields: str) -> int | None:
        text = SOH.join(("35=D", "11=o", "55=SY2", "54=1", "40=1", "152=10", *fields))
        command = new_order(Received.parse("s", text), "alice", 1795307908661)
        assert not isinstance(command, messages_type), command
        return command.expire_at

    messages_type = Outgoing
    assert expiry() is None and expiry("59=1") is None
    day = expiry("59=0")
    assert day is not None and utc_timestamp(day) == "20261123-00:00:00.000"
    gtd = expiry("59=6", "126=20261124-10:00:00.250")
    assert gtd is not None and utc_timestamp(gtd) == "20261124-10:00:00.250"


# --- numbers at the door: no longer than 64 characters, below 1E+24, at most 18 decimals -----


def text_of(answer: object) -> str:
    assert isinstance(answer, Outgoing), answer
    return answer.get(58) or ""


def new_order_with(*fields: str) -> SubmitIndexOrder | Outgoing:
    text = SOH.join(("35=D", "11=o", "55=SY2", "54=1", *fields))
    return new_order(Received.parse("s", text), "alice", 1)


@pytest.mark.parametrize("cash, problem", [
    (BEYOND_THE_CONTEXT, "CashOrderQty(152) is longer than 64 characters"),
    ("999." + "9" * 60, "CashOrderQty(152) must have at most 18 decimals"),
    ("1" + "0" * 24, "CashOrderQty(152) must be below 1E+24"),
    ("-1" + "0" * 24, "CashOrderQty(152) must be above -1E+24"),
])
def test_cash_beyond_the_bound_is_refused_naming_the_tag(cash: str, problem: str) -> None:
    answer = new_order_with("40=1", f"152={cash}")
    assert problem in text_of(answer) and answer.get(103) == "13"  # type: ignore[union-attr]
    request = SOH.join(("35=R", "131=q", "146=1", "55=SY2", f"152={cash}"))
    assert problem in text_of(quote_request(Received.parse("s", request), "q1", 1))


def test_a_limit_beyond_the_bound_is_refused_naming_the_tag() -> None:
    answer = new_order_with("40=2", "152=100", f"44={BEYOND_THE_CONTEXT}")
    assert "Price(44) is longer than 64 characters" in text_of(answer)


def test_cash_up_to_the_bound_reaches_the_engine_and_no_further() -> None:
    largest = "999999999999999999999999.999999999999999999"
    command = new_order_with("40=1", f"152={largest}")
    assert isinstance(command, SubmitIndexOrder) and command.collateral == D(largest)
    assert "must be below 1E+24" in text_of(new_order_with("40=1", "152=1" + "0" * 24))
