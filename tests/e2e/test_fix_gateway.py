"""The FIX gateway over real TCP on loopback: QuickFIX 1.16 acceptor in front of the runtime
trading on the mock Binance, and the simplefix client as the counterparty."""

from __future__ import annotations

import re
from decimal import Decimal as D
from pathlib import Path

import pytest
import simplefix

from fix_gateway import requests
from fix_gateway.tags import CUM_CASH_QTY, EVENT_SEQ_NUM, LEAVES_CASH_QTY
from fix_gateway.wire import Outgoing
from mocks.fix_client import FixClient, LogonRefused, SessionConfig, messages
from solver.core.commands import SettlementMoved
from solver.journal.snapshot import state_of
from solver.plumbing.clock import now_ms
from tests.support.exchange import run, until
from tests.support.service import GATEWAY, Service, field_of, report_where, service

# --- logon ---------------------------------------------------------------------------------


def test_logon_needs_a_known_comp_id_and_the_right_password(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path) as s:
            good = await s.client("alice")
            await good.test_request()
            assert good.logged_on
            with pytest.raises(LogonRefused, match="wrong password"):
                await s.client("bob", password="not-bobs")
            with pytest.raises(LogonRefused):
                await s.client("mallory", password="anything")
            stranger = FixClient(SessionConfig("127.0.0.1", s.port, "BOB", GATEWAY, "ALICE",
                                               "alice-test-password"))
            s.clients.append(stranger)
            with pytest.raises(LogonRefused, match="Username"):
                await stranger.connect()
            assert s.gateway.logged_on == {"alice"}
    run(scenario())


# --- orders ------------------------------------------------------------------------------


def test_an_order_is_acked_filled_in_parts_canceled_and_its_mint_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("5000"), currency="USDC"))
            ack = await report_where(alice, t150="0")
            assert (field_of(ack, 11), field_of(ack, 39), field_of(ack, 152)) == ("o1", "0", "5000")
            fills = [await report_where(alice, t150="F") for _ in range(2)]
            for fill in fills:
                assert field_of(fill, 39) == "1"
                last_qty, last_px = D(field_of(fill, 32) or ""), D(field_of(fill, 31) or "")
                assert abs(last_qty * last_px - D(field_of(fill, 381) or "")) < D("0.00001")
            assert D(field_of(fills[1], 14) or "") > D(field_of(fills[0], 14) or "")
            await alice.send(messages.cancel("c1", "o1", "SY2"))
            done = await report_where(alice, t11="c1", t150="4")
            assert (field_of(done, 41), field_of(done, 39), field_of(done, 151)) == ("o1", "4", "0")
            mint = await report_where(alice, t150="B")
            order = s.runtime.engine.order("alice", "o1")
            assert order is not None and order.mint_tx is not None
            assert field_of(mint, 39) == "B"
            assert field_of(mint, messages.MINT_TX_HASH) == order.mint_tx
            assert D(field_of(mint, messages.MINT_QTY) or "") == order.minted_units > 0
            assert field_of(mint, messages.CHAIN_ID) == "31337"
            assert D(field_of(mint, 14) or "") == order.filled_units
            assert D(field_of(mint, messages.CUM_CASH_QTY) or "") == order.spent
            # a deep reorganisation moved the settlement: the settler says so, FIX restates
            moved_to, previous = "0x" + "ab" * 32, order.mint_tx
            s.runtime.submit(SettlementMoved(now_ms(), order.id, moved_to, 99))
            restated = await report_where(alice, t150="D")
            assert (field_of(restated, 39), field_of(restated, 378)) == ("B", "99")
            assert field_of(restated, messages.MINT_TX_HASH) == moved_to
            assert previous in (field_of(restated, 58) or "")
            assert "reorganisation" in (field_of(restated, 58) or "")
    run(scenario(), timeout=90)


def test_an_order_too_small_to_be_bought_is_refused_with_the_minimum(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await until(lambda: s.runtime.market_data.live, what="the books live")
            await alice.send(messages.new_order("tiny", "SY2", D("10"), currency="USDC"))
            reject = await report_where(alice, t11="tiny")
            assert (field_of(reject, 150), field_of(reject, 39), field_of(reject, 103)) == (
                "8", "8", "13")
            text = field_of(reject, 58) or ""
            minimum = re.search(r"the smallest SY2 order at today's prices is ([0-9.]+) USDC",
                                text)
            assert minimum and D(minimum.group(1)) > 10, text
            await alice.send(messages.new_order("enough", "SY2", D(minimum.group(1))))
            assert field_of(await report_where(alice, t11="enough"), 150) == "0"
    run(scenario(), timeout=90)


def test_replace_lowers_the_amount_and_later_requests_use_the_new_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("3000"), ord_type="2",
                                                price=D("900")))
            await report_where(alice, t150="0")
            await alice.send(messages.replace("r1", "o1", "SY2", D("2000"), ord_type="2",
                                              price=D("900")))
            replaced = await report_where(alice, t11="r1")
            assert (field_of(replaced, 150), field_of(replaced, 41),
                    field_of(replaced, 152)) == ("5", "o1", "2000")
            await alice.send(messages.replace("r2", "r1", "SY2", D("2500"), ord_type="2",
                                              price=D("900")))
            higher = await report_where(alice, t35="9")
            assert (field_of(higher, 11), field_of(higher, 434), field_of(higher, 102)) == (
                "r2", "2", "99")
            await alice.send(messages.cancel("c1", "r1", "SY2"))
            canceled = await report_where(alice, t11="c1")
            assert (field_of(canceled, 150), field_of(canceled, 41)) == ("4", "r1")
            balance = s.runtime.engine.ledger.balance("alice", "USDC")
            assert balance.available == D(6000)
    run(scenario())


def test_reports_say_the_order_as_of_their_own_transaction(tmp_path: Path) -> None:
    """Reports made live (under group commit: an order and its cancel committed together)
    are the reports made again from the journal afterwards; the New ack of an order canceled
    in the same group still says its whole amount is open."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "9000"}) as s:
            sent: list[Outgoing] = []
            outbound = s.gateway.outbound
            assert outbound is not None
            send = outbound.send

            def recording(session: str, report: Outgoing) -> None:
                if report.get(EVENT_SEQ_NUM) is not None:
                    sent.append(report)
                send(session, report)

            outbound.send = recording  # type: ignore[method-assign]
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("500"), ord_type="2",
                                                price=D("900")))
            await alice.send(messages.cancel("c1", "o1", "SY2"))  # most likely one group
            await report_where(alice, t11="c1", t150="4")
            await alice.send(messages.new_order("o2", "SY2", D("5000")))
            await report_where(alice, t11="o2", t150="F")
            await alice.send(messages.replace("r2", "o2", "SY2", D("4000")))
            await report_where(alice, t11="r2")
            await alice.send(messages.cancel("c2", "r2", "SY2"))
            await report_where(alice, t150="B")
            await alice.test_request()
            made_again = [report for t in s.journal.transactions()
                          for account, report in s.gateway.maker.reports(t)
                          if account == "alice"]
            assert [r.fields for r in sent] == [r.fields for r in made_again]
            [ack] = [r for r in sent if r.get(11) == "o1" and r.get(150) == "0"]
            assert (ack.get(LEAVES_CASH_QTY), ack.get(CUM_CASH_QTY)) == ("500", "0")
    run(scenario(), timeout=90)


def status_request(cl_ord_id: str, request_id: str = "") -> simplefix.FixMessage:
    message = simplefix.FixMessage()
    for tag, value in ((35, "H"), (11, cl_ord_id), (55, "SY2"), (54, "1"),
                       *([(790, request_id)] if request_id else [])):
        message.append_pair(tag, value)
    return message


def mass_status(request_id: str, kind: str, symbol: str | None = None) -> simplefix.FixMessage:
    message = simplefix.FixMessage()
    for tag, value in ((35, "AF"), (584, request_id), (585, kind),
                       *([(55, symbol)] if symbol else [])):
        message.append_pair(tag, value)
    return message


def test_a_reconnecting_client_learns_every_live_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000", "bob": "6000"}) as s:
            alice = await s.client("alice")
            for cl_ord_id, cash in (("o1", "1000"), ("o2", "2000"), ("o3", "500")):
                await alice.send(messages.new_order(cl_ord_id, "SY2", D(cash), ord_type="2",
                                                    price=D("900")))
                await report_where(alice, t11=cl_ord_id, t150="0")
            await alice.send(messages.replace("r2", "o2", "SY2", D("1500"), ord_type="2",
                                              price=D("900")))
            await report_where(alice, t11="r2", t150="5")
            await alice.send(messages.cancel("c3", "o3", "SY2"))
            await report_where(alice, t11="c3", t150="4")
            await alice.logout()
            again = await s.client("alice")  # a second terminal of the desk, say
            await again.send(status_request("r2", "s1"))
            known = await report_where(again, t790="s1")
            assert (field_of(known, 150), field_of(known, 39), field_of(known, 11),
                    field_of(known, 152), field_of(known, 20010)) == ("I", "0", "r2", "1500",
                                                                       "1500")
            await again.send(status_request("o3", "s2"))
            closed = await report_where(again, t790="s2")
            assert (field_of(closed, 39), field_of(closed, 11)) == ("4", "o3")
            await again.send(mass_status("m1", "7"))
            live = [await report_where(again, t584="m1") for _ in range(2)]
            assert [(field_of(r, 11), field_of(r, 150), field_of(r, 911), field_of(r, 912))
                    for r in live] == [("o1", "I", "2", "N"), ("r2", "I", "2", "Y")]
            await again.send(mass_status("m2", "1", "SY2"))
            assert field_of(await report_where(again, t584="m2"), 911) == "2"
            bob = await s.client("bob")  # another account sees none of alice's
            await bob.send(status_request("o1", "b1"))
            unknown = await report_where(bob, t790="b1")
            assert (field_of(unknown, 39), field_of(unknown, 58)) == (
                "8", "no order o1 for account bob")
            await bob.send(mass_status("b2", "7"))
            none = await report_where(bob, t584="b2")
            assert (field_of(none, 39), field_of(none, 911), field_of(none, 912)) == (
                "8", "0", "Y")
    run(scenario(), timeout=90)


def test_quotes_price_the_index_on_the_exchange_books(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            await until(lambda: s.runtime.market_data.live, what="books in sync")
            await alice.send(messages.quote_request("q1", "SY2", D("1000")))
            quote = await report_where(alice, t35="S")
            assert field_of(quote, 131) == "q1"
            price, units = D(field_of(quote, 133) or ""), D(field_of(quote, 135) or "")
            assert D(1000) <= price <= D(1011)  # 8 A1 at 100 + 1 A2 at 200, tolerance, fees
            assert units * price <= D(1000)
            await alice.send(messages.quote_request("q2", "NOPE", D("1000")))
            rejected = await report_where(alice, t35="AG")
            assert (field_of(rejected, 131), field_of(rejected, 658)) == ("q2", "1")
    run(scenario())


def test_collateral_inquiry_is_acked_and_reported_and_deposits_are_reported(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            deposit = await report_where(alice, t35="BA")
            assert (field_of(deposit, 53), field_of(deposit, messages.DEPOSIT_TX_HASH)) == (
                "6000", "test-deposit-0")
            await alice.send(messages.collateral_inquiry("i1"))
            ack = await report_where(alice, t35="BG")
            assert (field_of(ack, 909), field_of(ack, 945), field_of(ack, 911)) == ("i1", "0", "1")
            report = await report_where(alice, t35="BA", t909="i1")
            assert (field_of(report, 15), field_of(report, 900), field_of(report, 901)) == (
                "USDC", "6000", "6000")
    run(scenario())


def test_each_session_sees_and_changes_only_its_own_accounts_orders(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000", "bob": "3000"}) as s:
            alice, bob = await s.client("alice"), await s.client("bob")
            await alice.send(messages.new_order("o1", "SY2", D("1000"), ord_type="2",
                                                price=D("900")))  # below the market: it rests
            await report_where(alice, t150="0")
            await bob.send(messages.cancel("c1", "o1", "SY2"))
            refused = await report_where(bob, t35="9")
            assert (field_of(refused, 102), field_of(refused, 37)) == ("1", "NONE")
            await bob.send(messages.new_order("o1", "SY2", D("500"), ord_type="2",
                                              price=D("900")))  # his own o1
            await report_where(bob, t150="0", t152="500")
            await alice.test_request()
            await bob.test_request()
            assert all(field_of(m, 1) in (None, "alice") for m in alice.received)
            assert all(field_of(m, 152) != "500" for m in alice.received)
            assert all(field_of(m, 152) != "1000" for m in bob.received if field_of(m, 35) == "8")
            order = s.runtime.engine.order("alice", "o1")
            assert order is not None and order.is_open
    run(scenario())


def test_the_test_session_profile_behaves_as_quickfixs_acceptance_application(
        tmp_path: Path) -> None:
    """It echoes NewOrderSingle and SecurityDefinition (PossResend kept), drops a PossResend
    copy of an order it has seen since logon, and answers anything else as unsupported."""
    async def scenario() -> None:
        async with service(tmp_path, test_session=True) as s:
            tester = FixClient(SessionConfig("127.0.0.1", s.port, "TESTER", "ECHO",
                                             reset_seq_num=True))
            s.clients.append(tester)
            await tester.connect()
            await tester.send(messages.new_order("e1", "ANY", D("1")))
            echoed = await tester.next_message(5)
            assert (field_of(echoed, 35), field_of(echoed, 11), field_of(echoed, 55),
                    field_of(echoed, 97)) == ("D", "e1", "ANY", None)
            again = messages.new_order("e1", "ANY", D("1"))
            again.append_pair(97, "Y")
            await tester.send(again)  # seen: dropped
            fresh = messages.new_order("e2", "ANY", D("1"))
            fresh.append_pair(97, "Y")
            await tester.send(fresh)  # not seen: echoed, still a PossResend
            echoed = await tester.next_message(5)
            assert (field_of(echoed, 11), field_of(echoed, 97)) == ("e2", "Y")
            definition = simplefix.FixMessage()
            for tag, value in ((35, "d"), (320, "sd1"), (322, "r1"), (323, "1"), (55, "ANY")):
                definition.append_pair(tag, value)
            await tester.send(definition)
            echoed = await tester.next_message(5)
            assert (field_of(echoed, 35), field_of(echoed, 320)) == ("d", "sd1")
            await tester.send(messages.cancel("c1", "e1", "ANY"))
            reject = await tester.next_message(5)
            assert (field_of(reject, 35), field_of(reject, 380), field_of(reject, 58)) == (
                "j", "3", "Unsupported Message Type")
            await tester.logout()  # the orders seen are forgotten
            await tester.connect()
            await tester.send(again)
            echoed = await tester.next_message(5)
            assert (field_of(echoed, 11), field_of(echoed, 97)) == ("e1", "Y")
            assert s.runtime.engine.orders == {}
    run(scenario())


def test_a_failure_while_handling_a_message_is_answered_and_the_session_survives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(requests, "new_order", broken)

    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("1000")))
            reject = await report_where(alice, t35="j")
            assert field_of(reject, 372) == "D"
            assert "changed nothing" in (field_of(reject, 58) or "")
            await alice.test_request()
            assert s.runtime.engine.orders == {}
    run(scenario())


def engine_state(s: Service) -> dict[str, object]:
    state = state_of(s.runtime.engine)
    return {k: v for k, v in state.items() if k not in ("transactions", "last_seq", "books")}
