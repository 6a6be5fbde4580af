"""The order tracker: any arrival order of answers, stream events and duplicates gives the
same facts, once; states never go back; unknown outcomes and misses resolve by the rules."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    Input,
)
from solver.core.events import AssetOrderRequested
from solver.core.model import Side
from solver.exchange.tracker import ExchangeStatus, OrderReport, OrderTracker, TradeReport

REQUEST = AssetOrderRequested(7, "idx-7", 1, "A1USDC", Side.BUY, D("100.50"), D(5))
T1 = TradeReport("A1USDC", 1000, 11, D("100.00"), D(1), D("0.001"), "A1")
T2 = TradeReport("A1USDC", 1000, 12, D("100.50"), D(2), D("0.002"), "A1")


def report(state: ExchangeStatus, executed: str, client_id: str = "idx-7") -> OrderReport:
    return OrderReport("A1USDC", client_id, 1000, state, D(executed))


# What the exchange may say of one IOC order that traded 3 of 5 and expired:
MESSAGES = [
    ("answer", report(ExchangeStatus.EXPIRED, "3"), (T1, T2)),  # the REST FULL answer
    ("stream", report(ExchangeStatus.NEW, "0"), ()),
    ("stream", report(ExchangeStatus.PARTIALLY_FILLED, "1"), (T1,)),
    ("stream", report(ExchangeStatus.PARTIALLY_FILLED, "3"), (T2,)),
    ("stream", report(ExchangeStatus.EXPIRED, "3"), ()),
    ("query", report(ExchangeStatus.EXPIRED, "3"), ()),
]


def deliver(tracker: OrderTracker, order: list[int]) -> list[Input]:
    facts: list[Input] = []
    for n, index in enumerate(order):
        _, rep, trades = MESSAGES[index]
        facts += tracker.on_report(rep, n, trades)
    return facts


@settings(max_examples=300, deadline=None)
@given(st.permutations(range(len(MESSAGES))), st.lists(st.integers(0, len(MESSAGES) - 1),
                                                      max_size=4))
def test_any_arrival_order_with_duplicates_gives_the_same_facts_once(
        order: list[int], duplicates: list[int]) -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    facts = deliver(tracker, [*order, *duplicates])
    assert isinstance(facts[0], AssetOrderAccepted) and facts[0].exchange_order_id == "1000"
    assert sum(isinstance(f, AssetOrderAccepted) for f in facts) == 1
    fills = [f for f in facts if isinstance(f, AssetOrderFilled)]
    assert sorted(f.trade_id for f in fills) == ["11", "12"]
    ended = [f for f in facts if isinstance(f, AssetOrderEnded)]
    assert len(ended) == 1 and ended[0].outcome == AssetOrderOutcome.EXPIRED
    order_state = tracker.get("idx-7")
    assert order_state is not None and order_state.state == ExchangeStatus.EXPIRED
    assert order_state.executed == D(3) and not order_state.missing_trades


def test_a_late_report_never_takes_the_state_back() -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    tracker.on_report(report(ExchangeStatus.FILLED, "5"), 1)
    assert tracker.on_report(report(ExchangeStatus.NEW, "0"), 2) == []
    order = tracker.get("idx-7")
    assert order is not None and (order.state, order.executed) == (ExchangeStatus.FILLED, D(5))
    assert order.missing_trades  # 5 executed, no trade seen yet: myTrades will be asked


def test_cancel_reports_match_by_exchange_id_and_fills_after_cancel_count() -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    tracker.on_report(report(ExchangeStatus.NEW, "0"), 1)
    facts = tracker.on_report(report(ExchangeStatus.CANCELED, "0", client_id="cancel-99"), 2)
    assert [type(f) for f in facts] == [AssetOrderEnded]
    assert facts[0].outcome == AssetOrderOutcome.CANCELED  # type: ignore[union-attr]
    late = tracker.on_trade(T1, 3)
    assert [type(f) for f in late] == [AssetOrderFilled]


def test_cancel_before_ack_is_sent_when_the_ack_shows_the_order_live() -> None:
    tracker = OrderTracker()
    order = tracker.track(REQUEST, 0)
    assert tracker.request_cancel("idx-7") is False  # not acked: cannot cancel yet
    assert not order.wants_cancel
    tracker.on_report(report(ExchangeStatus.NEW, "0"), 1)
    assert order.wants_cancel
    tracker.on_report(report(ExchangeStatus.CANCELED, "0"), 2)
    assert not order.wants_cancel and order.state == ExchangeStatus.CANCELED


def test_unknown_outcome_stays_pending_until_a_query_answers() -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    tracker.on_unknown("idx-7", "TimeoutError", 1)
    order = tracker.get("idx-7")
    assert order is not None and order.outcome_unknown and order.state == ExchangeStatus.PENDING_NEW
    facts = tracker.on_report(report(ExchangeStatus.FILLED, "5"), 2)
    assert [type(f) for f in facts] == [AssetOrderAccepted, AssetOrderEnded]
    assert not order.outcome_unknown


def test_misses_end_an_order_only_after_the_limit() -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    assert tracker.on_not_found("idx-7", 1, max_misses=3) == []
    assert tracker.on_not_found("idx-7", 2, max_misses=3) == []
    ended = tracker.on_not_found("idx-7", 3, max_misses=3)
    assert len(ended) == 1 and isinstance(ended[0], AssetOrderEnded)
    assert ended[0].outcome == AssetOrderOutcome.REJECTED  # never acked: it was not placed
    acked = OrderTracker()
    acked.track(REQUEST, 0)
    acked.on_report(report(ExchangeStatus.PARTIALLY_FILLED, "1"), 1, (T1,))
    facts = [f for n in range(3) for f in acked.on_not_found("idx-7", 2 + n, max_misses=3)]
    assert isinstance(facts[-1], AssetOrderEnded)
    assert (facts[-1].outcome, facts[-1].executed_quantity) == (AssetOrderOutcome.CANCELED, D(1))


def test_a_reject_ends_the_order_once_and_unknown_orders_are_ignored() -> None:
    tracker = OrderTracker()
    tracker.track(REQUEST, 0)
    facts = tracker.on_rejected("idx-7", "-1013 Filter failure: LOT_SIZE", 1)
    assert isinstance(facts[0], AssetOrderEnded) and facts[0].reason.endswith("LOT_SIZE")
    assert tracker.on_rejected("idx-7", "again", 2) == []
    assert tracker.on_report(report(ExchangeStatus.NEW, "0", client_id="someone-else"), 3) == []
