"""The inbound log: messages kept before ``fromApp`` returns are handled exactly once, across
restarts, whether or not the engine had them when the gateway stopped."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal as D
from pathlib import Path

import pytest
import simplefix

from fix_gateway import bridge, inbound_log
from fix_gateway.inbound_log import InboundLog, Mark
from mocks.fix_client import messages
from solver.core.commands import SubmitIndexOrder
from solver.journal.store import Journal
from tests.support.exchange import run
from tests.support.service import GATEWAY, field_of, report_where, service

ALICE_SESSION = f"FIX.4.4:{GATEWAY}->ALICE"


def resting_order(cl_ord_id: str) -> simplefix.FixMessage:
    return messages.new_order(cl_ord_id, "SY2", D("1000"), ord_type="2", price=D("900"))


def as_received(message: simplefix.FixMessage, seq: int) -> str:
    """The text QuickFIX hands to ``fromApp``: header and body, SOH-separated."""
    fields = [(35, message.get(35).decode()), (34, str(seq)), (49, "ALICE"), (56, GATEWAY)]
    fields += [(int(t), v.decode()) for t, v in message if int(t) != 35]
    return "".join(f"{t}={v}\x01" for t, v in fields)


def inbound_dir(tmp: Path) -> Path:
    return tmp / "fix-store" / "inbound"


# --- the log itself -------------------------------------------------------------------------


def test_records_after_the_mark_are_found_again_in_order(tmp_path: Path) -> None:
    log = InboundLog(tmp_path, 0)
    numbers = [log.append("s", f"text {n}") for n in range(5)]
    log.set_mark(Mark(2, 7))
    log.close()
    again = InboundLog(tmp_path, 0)
    assert numbers == [1, 2, 3, 4, 5]
    assert again.mark == Mark(2, 7)
    assert [(r.number, r.text) for r in again.unhandled()] == [(3, "text 2"), (4, "text 3"),
                                                               (5, "text 4")]
    assert (again.append("s", "more"), again.backlog) == (6, 4)


def test_a_torn_last_record_is_skipped(tmp_path: Path) -> None:
    log = InboundLog(tmp_path, 0)
    log.append("s", "whole")
    log.close()
    [segment] = tmp_path.glob("*.log")
    with segment.open("ab") as out:
        out.write(b'{"n": 2, "session": "s", "te')
    again = InboundLog(tmp_path, 0)
    assert [r.text for r in again.unhandled()] == ["whole"]
    assert again.append("s", "next") == 2


def test_a_new_log_is_marked_at_the_journals_last_transaction(tmp_path: Path) -> None:
    InboundLog(tmp_path, 41).close()
    assert InboundLog(tmp_path, 99).mark == Mark(0, 41)


def test_an_unreadable_mark_means_every_kept_record_is_handled_again(tmp_path: Path) -> None:
    log = InboundLog(tmp_path, 41)
    log.append("s", "one")
    log.set_mark(Mark(1, 42))
    log.close()
    (tmp_path / "handled").write_text("garbage")
    again = InboundLog(tmp_path, 99)
    assert (again.mark, [r.text for r in again.unhandled()]) == (Mark(0, 0), ["one"])


def test_segments_roll_over_and_handled_ones_are_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbound_log, "SEGMENT_BYTES", 200)
    log = InboundLog(tmp_path, 0)
    for _ in range(10):
        log.append("s", "x" * 50)
    segments = sorted(p.name for p in tmp_path.glob("*.log"))
    assert len(segments) == 5
    log.set_mark(Mark(5, 0))
    log.prune()
    assert sorted(p.name for p in tmp_path.glob("*.log")) == segments[2:]
    log.set_mark(Mark(10, 0))
    log.prune()
    assert sorted(p.name for p in tmp_path.glob("*.log")) == segments[-1:]  # being written
    log.close()
    assert InboundLog(tmp_path, 0).unhandled() == []


# --- the gateway's use of it ----------------------------------------------------------------


def test_a_message_kept_but_never_handled_is_handled_when_the_gateway_starts(
        tmp_path: Path) -> None:
    """As if the gateway died after ``fromApp`` kept an order and before the engine had it."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(resting_order("o1"))
            await report_where(alice, t11="o1", t150="0")
            await alice.logout()
        log = InboundLog(inbound_dir(tmp_path), 0)
        log.append(ALICE_SESSION, as_received(resting_order("o2"), 99))
        log.close()
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            await report_where(alice, t11="o2", t150="0")
            await alice.test_request()
            order = s.runtime.engine.order("alice", "o2")
            assert order is not None and order.is_open
            assert len(s.runtime.engine.orders) == 2
            assert s.gateway.inbound_log.backlog == 0
        assert [field_of(m, 150) for m in alice.received
                if field_of(m, 11) == "o2" and field_of(m, 35) == "8"] == ["0"]
    run(scenario())


def test_a_kept_message_that_cannot_be_handled_is_answered_and_skipped_at_start(
        tmp_path: Path) -> None:
    """A record with bytes that are not UTF-8 (kept as QuickFIX handed it over) is refused
    with a reject when replayed, and the mark moves past it: never replayed forever."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.test_request()
            await alice.logout()
        log = InboundLog(inbound_dir(tmp_path), 0)
        bad = as_received(resting_order("p1-"), 99).replace("11=p1-", "11=p1-\udcff\udc80")
        log.append(ALICE_SESSION, bad)
        log.append(ALICE_SESSION, as_received(resting_order("o2"), 100))
        log.close()
        received = []
        for _ in range(2):
            async with service(tmp_path) as s:
                alice = await s.client("alice")
                await alice.test_request()
                assert s.gateway.inbound_log.backlog == 0
                assert [o.client_order_id for o in s.runtime.engine.orders.values()] == ["o2"]
                received += alice.received
        [reject] = [m for m in received if field_of(m, 35) == "j"]
        assert field_of(reject, 58) == "ClOrdID(11) must be printable ASCII; the message " \
            "changed nothing"
    run(scenario())


def test_a_kept_message_the_journal_already_holds_is_not_applied_again(tmp_path: Path) -> None:
    """As if the gateway died after the order's commit and before its record was marked."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(resting_order("o1"))
            await report_where(alice, t11="o1", t150="0")
            await alice.send(messages.collateral_inquiry("i1"))
            await report_where(alice, t35="BG")
            await alice.logout()
        journal = Journal.open(tmp_path / "journal.db")
        [before_o1] = [t.number - 1 for t in journal.transactions()
                       if isinstance(t.input, SubmitIndexOrder)]
        journal.close()
        log = InboundLog(inbound_dir(tmp_path), 0)
        assert len(log.unhandled()) == 0 and log.mark.record == 2
        log.set_mark(Mark(0, before_o1))
        log.close()
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            await report_where(alice, t35="BG")  # an answer is given again
            await alice.test_request()
            assert len(s.runtime.engine.orders) == 1
            assert s.gateway.inbound_log.mark.record == 2
        assert not any(field_of(m, 11) == "o1" for m in alice.received)  # no duplicate reject
    run(scenario())


def test_a_possible_duplicate_of_a_taken_order_gets_its_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(resting_order("o1"))
            await report_where(alice, t11="o1", t150="0")
            await alice.send(resting_order("o1"), poss_dup=True)
            status = await report_where(alice, t11="o1")
            resent = resting_order("o1")
            resent.append_pair(97, "Y")
            await alice.send(resent)
            status_again = await report_where(alice, t11="o1")
            await alice.send(resting_order("o2"), poss_dup=True)  # never seen: it is new
            await report_where(alice, t11="o2", t150="0")
            assert [(field_of(m, 150), field_of(m, 39)) for m in (status, status_again)] == [
                ("I", "0"), ("I", "0")]
            assert len(s.runtime.engine.orders) == 2
    run(scenario())


def test_a_heartbeat_answering_a_test_request_follows_the_earlier_answers(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            for n in range(20):
                await alice.send(messages.new_order(f"o{n}", "SY2", D("200"), ord_type="2",
                                                    price=D("900")))
            await alice.test_request()
            acked = [field_of(m, 11) for m in alice.received if field_of(m, 150) == "0"]
            assert acked == [f"o{n}" for n in range(20)]
    run(scenario())


def test_a_copy_right_behind_its_original_gets_no_second_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            for n in range(5):
                await alice.send(resting_order(f"o{n}"))
                await alice.send(resting_order(f"o{n}"), poss_dup=True)  # still on its way
            await alice.test_request()
            answers = [(field_of(m, 11), field_of(m, 150)) for m in alice.received
                       if field_of(m, 35) == "8"]
            # Each order is taken once; a copy gets nothing while its original is on its way,
            # or the order's status (150=I) if the original got there first; never a reject.
            assert sorted(a for a in answers if a[1] != "I") == [(f"o{n}", "0")
                                                                 for n in range(5)]
            assert len(s.runtime.engine.orders) == 5
    run(scenario())


def test_an_order_that_first_arrived_as_a_copy_is_matched_when_replayed(
        tmp_path: Path) -> None:
    """Its record, judged now, is a copy of a known order; judged as it came, it is the
    order the journal holds. The records after it are matched too."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            first = resting_order("o1")
            first.append_pair(97, "Y")
            await alice.send(first)
            await report_where(alice, t11="o1", t150="0")
            await alice.send(resting_order("o2"))
            await report_where(alice, t11="o2", t150="0")
            await alice.logout()
        with Journal.open(tmp_path / "journal.db") as journal:
            [before_o1, _] = [t.number - 1 for t in journal.transactions()
                              if isinstance(t.input, SubmitIndexOrder)]
        log = InboundLog(inbound_dir(tmp_path), 0)
        log.set_mark(Mark(0, before_o1))
        log.close()
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            await alice.test_request()
            assert len(s.runtime.engine.orders) == 2
            assert s.gateway.inbound_log.mark.record == 2
        assert not any(field_of(m, 11) in ("o1", "o2") for m in alice.received)
    run(scenario())


def test_a_number_missing_from_the_log_does_not_hold_the_mark_back(tmp_path: Path) -> None:
    """A torn or failed write leaves a gap in the numbers; the records around it are
    handled and the mark passes it."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}):
            pass
        log = InboundLog(inbound_dir(tmp_path), 0)
        mark = log.mark.record
        log.close()
        segment = inbound_dir(tmp_path) / f"{mark + 1:020d}.log"
        segment.write_text("".join(
            json.dumps({"n": n, "session": ALICE_SESSION,
                        "text": as_received(resting_order(f"o{n}"), 90 + n)}) + "\n"
            for n in (mark + 1, mark + 3)))
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            await report_where(alice, t11=f"o{mark + 3}", t150="0")
            assert s.gateway.inbound_log.mark.record == mark + 3
            assert len(s.runtime.engine.orders) == 2
    run(scenario())


def test_a_full_backlog_holds_the_quickfix_thread_until_the_loop_makes_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge, "MAX_BACKLOG", 2)
    log = InboundLog(tmp_path, 0)
    loop = asyncio.new_event_loop()
    gate = bridge.Bridge(loop, lambda msg: None, lambda *a: None, log, lambda session: None)
    log.append("s", "one")
    log.append("s", "two")
    through = threading.Event()
    waiting = threading.Thread(target=lambda: (gate._wait_for_room("s"), through.set()))
    waiting.start()
    assert not through.wait(0.2)  # still held: nothing was handled
    log.set_mark(Mark(1, 0))
    gate.room_made()
    assert through.wait(5)
    waiting.join(5)
    log.close()
    loop.close()
