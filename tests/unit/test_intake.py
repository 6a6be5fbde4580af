"""Index orders in and changed: accepted or rejected with a reason, cancelled, reduced,
expired, quoted; the minimum order."""

from unittest.mock import ANY

import pytest

from solver.core import events as ev
from solver.core.commands import (
    AssetOrderOutcome,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    ReduceIndexOrder,
    RequestQuote,
)
from solver.core.engine import Engine
from solver.core.invariants import violations
from solver.core.market import OrderBook
from solver.core.model import Side
from solver.core.orders import CancelRejectReason, OrderStatus, RejectReason
from tests.support.builders import D, Desk, book, desk, index, market, params, rules
from tests.unit.engine_steps import end, events_of, fill, fill_all, filtered_desk


def test_accepted_order_reserves_its_collateral():
    d = desk()
    d.deposit("alice", "1500")
    t = d.order("alice", "o1", "1000")
    assert [type(e.event) for e in t.events] == [ev.IndexOrderAccepted, ev.CollateralReserved]
    balance = d.engine.ledger.balance("alice", "USDC")
    assert (balance.available, balance.reserved) == (D(500), D(1000))


@pytest.mark.parametrize("kwargs, reason", [
    ({"index": "NOPE"}, RejectReason.UNKNOWN_INDEX),
    ({"amount": "0"}, RejectReason.INVALID_AMOUNT),
    ({"amount": "-5"}, RejectReason.INVALID_AMOUNT),
    ({"amount": "NaN"}, RejectReason.INVALID_AMOUNT),
    ({"amount": "1.0000001"}, RejectReason.TOO_PRECISE),
    ({"amount": "5"}, RejectReason.BELOW_MINIMUM),
    ({"amount": "2000"}, RejectReason.INSUFFICIENT_COLLATERAL),
    ({"side": Side.SELL}, RejectReason.UNSUPPORTED_SIDE),
    ({"currency": "USDT"}, RejectReason.WRONG_CURRENCY),
    ({"max_price": D(0)}, RejectReason.INVALID_PRICE),
    ({"expire_at": 1}, RejectReason.ALREADY_EXPIRED),
])
def test_bad_orders_are_rejected_with_a_reason_and_change_nothing(kwargs, reason):
    d = desk(solver_params=params(min_order_collateral=D(10)))
    d.deposit("alice", "1500")
    before = d.engine.ledger.balances()
    kwargs = dict(kwargs)  # the parameters are shared: a test run twice in one process
    amount = kwargs.pop("amount", "100")
    t = d.order("alice", "o1", amount, **kwargs)
    [rejected] = [e.event for e in t.events]
    assert isinstance(rejected, ev.IndexOrderRejected)
    assert rejected.reason is reason and rejected.text
    assert d.engine.ledger.balances() == before
    assert d.engine.orders == {}


def test_duplicate_client_order_id_is_rejected_per_account():
    d = desk()
    d.deposit("alice", "1500")
    d.deposit("bob", "1500")
    d.order("alice", "o1", "100")
    [rejected] = d.order("alice", "o1", "100").of_type(ev.IndexOrderRejected)
    assert rejected.reason is RejectReason.DUPLICATE_ORDER_ID
    assert d.order("bob", "o1", "100").of_type(ev.IndexOrderAccepted)


def test_duplicate_deposit_is_credited_once():
    d = desk()
    d.apply(DepositConfirmed,
            "tx-1", "alice", "USDC", D(100))
    t = d.apply(DepositConfirmed,
                "tx-1", "alice", "USDC", D(100))
    assert t.of_type(ev.InputIgnored)
    assert d.engine.ledger.balance("alice", "USDC").deposited == D(100)


def test_cancel_before_any_batch_releases_everything_and_mints_nothing():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    t = d.apply(CancelIndexOrder, "alice", "o1")
    assert [type(e.event) for e in t.events] == [ev.IndexOrderCompleted, ev.CollateralReleased]
    assert d.engine.ledger.balance("alice", "USDC").available == D(1000)
    assert not t.of_type(ev.MintRequested)


def test_cancel_while_engaged_settles_the_fills_then_releases_the_rest():
    d = desk()
    d.deposit("alice", "2000")
    d.order("alice", "o1", "2000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(CancelIndexOrder, "alice", "o1")
    assert t.of_type(ev.IndexOrderEndPending)
    [again] = d.apply(CancelIndexOrder, "alice", "o1").of_type(ev.CancelRejected)
    assert again.reason is CancelRejectReason.ALREADY_PENDING
    assert d.plan().of_type(ev.BatchPlanned) == []  # no further engagement
    fill(d, a1, "8")
    end(d, a1, "8")
    fill(d, a2, "1")
    last = end(d, a2, "1")
    order = d.engine.order("alice", "o1")
    assert order.status is OrderStatus.CANCELED
    assert (order.filled_units, order.spent, order.released) == (D(1), D(1000), D(1000))
    [minted] = last.of_type(ev.MintRequested)
    assert minted.units == D(1)
    assert violations(d.engine) == []


def test_cancel_rejects_unknown_and_closed_orders():
    d = desk()
    d.deposit("alice", "1000")
    [unknown] = d.apply(CancelIndexOrder, "alice", "nope").of_type(ev.CancelRejected)
    assert unknown.reason is CancelRejectReason.UNKNOWN_ORDER
    d.order("alice", "o1", "100")
    d.apply(CancelIndexOrder, "alice", "o1")
    [closed] = d.apply(CancelIndexOrder, "alice", "o1").of_type(ev.CancelRejected)
    assert closed.reason is CancelRejectReason.ALREADY_CLOSED
    [other] = d.apply(CancelIndexOrder, "bob", "o1").of_type(ev.CancelRejected)
    assert other.reason is CancelRejectReason.UNKNOWN_ORDER


def test_reduce_releases_the_difference_and_refuses_what_is_committed():
    d = desk(solver_params=params(max_order_notional=D(1000)))
    d.deposit("alice", "3000")
    d.order("alice", "o1", "3000")
    t = d.apply(ReduceIndexOrder, "alice", "o1", D(2000))
    assert t.of_type(ev.IndexOrderReduced)[0].released == D(1000)
    assert d.engine.ledger.balance("alice", "USDC").available == D(1000)
    [up] = d.apply(ReduceIndexOrder, "alice", "o1", D(2500)).of_type(ev.CancelRejected)
    assert up.reason is CancelRejectReason.NOT_A_REDUCTION
    d.plan()  # engages 1 unit at 1000: that much may still be spent
    [low] = d.apply(ReduceIndexOrder, "alice", "o1", D("999.99")).of_type(ev.CancelRejected)
    assert low.reason is CancelRejectReason.BELOW_COMMITTED
    [precise] = d.apply(ReduceIndexOrder, "alice", "o1", D("1500.0000001")).of_type(
        ev.CancelRejected)
    assert precise.reason is CancelRejectReason.TOO_PRECISE
    assert d.apply(ReduceIndexOrder, "alice", "o1", D(1000)).of_type(ev.IndexOrderReduced)
    assert d.engine.ledger.balance("alice", "USDC").available == D(2000)
    assert violations(d.engine) == []


def test_reduce_to_what_was_spent_completes_the_order():
    d = desk(solver_params=params(max_order_notional=D(1000)))
    d.deposit("alice", "3000")
    d.order("alice", "o1", "3000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    t = d.apply(ReduceIndexOrder, "alice", "o1", D(1000))
    [done] = t.of_type(ev.IndexOrderCompleted)
    assert (done.status, done.spent, done.released) == (OrderStatus.FILLED, D(1000), D(0))
    assert violations(d.engine) == []


def test_orders_expire_on_the_clock_and_by_operator():
    d = desk()
    d.deposit("alice", "3000")
    d.order("alice", "o1", "1000", expire_at=50)
    d.order("alice", "o2", "1000")
    assert not d.engine.is_due(d.now + 1)  # a tick now would change nothing: none is sent
    assert d.apply(ClockTicked).of_type(ev.IndexOrderCompleted) == []
    d.now = 60
    assert d.engine.is_due(d.now + 1)
    [expired] = d.apply(ClockTicked).of_type(ev.IndexOrderCompleted)
    assert (expired.order_id, expired.status) == (1, OrderStatus.EXPIRED)
    assert not d.engine.is_due(d.now + 1)
    [ended] = d.apply(ExpireIndexOrder, "alice", "o2").of_type(ev.IndexOrderCompleted)
    assert ended.status is OrderStatus.EXPIRED
    assert d.engine.ledger.balance("alice", "USDC").available == D(3000)


def test_quotes_price_the_index_and_reject_unknown_ones():
    d = desk(markets=[market("A1", ("100", "1000")), market("A2", ("200", "0.5"))])
    [q] = d.apply(RequestQuote, "q1", "SY2", D(1000)).of_type(ev.QuoteIssued)
    assert (q.index_price, q.units) == (D(1000), D("0.5"))
    assert d.apply(RequestQuote, "q2", "NOPE", D(1)).of_type(ev.QuoteRejected)
    assert d.apply(RequestQuote, "q3", "SY2", D(0)).of_type(ev.QuoteRejected)


def test_cancel_and_replace_requests_carry_their_own_ids():
    d = desk()
    d.deposit("alice", "10000")
    d.order("alice", "o1", "3000")
    [reduced] = d.apply(ReduceIndexOrder, "alice", "o1", D(2000), "r1").of_type(
        ev.IndexOrderReduced)
    assert reduced.request_id == "r1"
    assert d.engine.order("alice", "r1") is d.engine.order("alice", "o1")
    assert d.engine.order("alice", "o1").current_client_id == "r1"
    [again] = d.apply(ReduceIndexOrder, "alice", "r1", D(1500), "r1").of_type(
        ev.CancelRejected)
    assert (again.reason, again.request_id) == (CancelRejectReason.DUPLICATE_REQUEST_ID, "r1")
    assert d.engine.order("alice", "o1").collateral == D(2000)
    [dup] = d.order("alice", "r1", "100").of_type(ev.IndexOrderRejected)
    assert dup.reason is RejectReason.DUPLICATE_ORDER_ID
    [done] = d.apply(CancelIndexOrder, "alice", "r1", "c1").of_type(ev.IndexOrderCompleted)
    assert (done.status, done.request_id) == (OrderStatus.CANCELED, "c1")


def test_a_pending_cancel_completes_with_its_request_id():
    d = desk()
    d.deposit("alice", "2000")
    d.order("alice", "o1", "2000")
    requests = d.plan().of_type(ev.AssetOrderRequested)
    [pending] = d.apply(CancelIndexOrder, "alice", "o1", "c1").of_type(ev.IndexOrderEndPending)
    assert pending.request_id == "c1"
    done = [c for t in fill_all(d, requests) for c in t.of_type(ev.IndexOrderCompleted)]
    assert [(c.status, c.request_id) for c in done] == [(OrderStatus.CANCELED, "c1")]


def test_an_order_too_small_to_be_bought_alone_is_refused_naming_the_minimum():
    d = filtered_desk()
    d.deposit("alice", "100")
    [rejected] = d.order("alice", "o1", "29.99").of_type(ev.IndexOrderRejected)
    assert rejected.reason is RejectReason.BELOW_MINIMUM
    assert "the smallest SY2 order at today's prices is 30 USDC" in rejected.text
    assert d.engine.order("alice", "o1") is None
    assert d.engine.ledger.balance("alice", "USDC").available == D(100)
    assert d.order("alice", "o1", "30").of_type(ev.IndexOrderAccepted)
    assert violations(d.engine) == []


def test_an_index_the_caps_cannot_buy_is_refused_at_submission_naming_the_caps():
    d = filtered_desk(max_batch_notional=D(29), fee_reserve=D("0.002"))
    d.deposit("alice", "2000")
    [refused] = d.order("alice", "o1", "1000").of_type(ev.IndexOrderRejected)
    assert refused.reason is RejectReason.NOT_TRADABLE
    assert refused.text == (
        "SY2 cannot be bought at today's prices within the caps: its smallest tradable "
        "quantity costs 30.06 USDC, more than one order may engage in a batch (29.058 USDC "
        "with the fee reserve)")
    assert d.engine.ledger.balance("alice", "USDC").available == D(2000)


def test_the_minimum_follows_the_books_and_is_not_applied_without_them():
    d = filtered_desk(fee_reserve=D("0.01"))
    d.deposit("alice", "100")
    [rejected] = d.order("alice", "o1", "30").of_type(ev.IndexOrderRejected)
    assert "is 30.3 USDC" in rejected.text  # the fee reserve comes on top
    d.books(book("A1", ("50", "1000")))  # the index now costs 600: 0.03 units cost 18.18
    assert d.order("alice", "o1", "30").of_type(ev.IndexOrderAccepted)
    unpriced = Desk(Engine([index()], [rules("A1"), rules("A2")], params()))
    unpriced.deposit("bob", "10")
    assert unpriced.order("bob", "o1", "1").of_type(ev.IndexOrderAccepted)


def test_a_reduce_reports_the_new_amount_and_the_release_and_must_lower_the_amount():
    d = desk()
    d.deposit("alice", "3000")
    d.order("alice", "o1", "3000")
    assert events_of(d.apply(ReduceIndexOrder, "alice", "o1", D(2000), "r1")) == [
        ev.IndexOrderReduced(1, D(2000), D(1000), ANY, "r1"),
        ev.CollateralReleased("alice", "USDC", D(1000), 1, ANY)]
    assert events_of(d.apply(ReduceIndexOrder, "alice", "r1", D(2000), "r2")) == [
        ev.CancelRejected("alice", "r1", CancelRejectReason.NOT_A_REDUCTION,
                          "new amount 2000 is not below 2000", ANY, "r2")]
    assert d.engine.ledger.balance("alice", "USDC").available == D(1000)


def test_a_reduce_keeps_what_the_batch_in_flight_may_spend_with_the_fee_reserve():
    # 0.4 units engaged at 1000 (at most 400 per order per batch): the batch may charge
    # 400 x 1.25 = 500 with the 25% fee reserve, so the order cannot go below 500.
    d = desk(solver_params=params(fee_reserve=D("0.25"), max_order_notional=D(400)))
    d.deposit("alice", "2000")
    d.order("alice", "o1", "2000")
    [planned] = d.plan().of_type(ev.BatchPlanned)
    assert [(e.order_id, e.units) for e in planned.engagements] == [(1, D("0.4"))]
    [low] = d.apply(ReduceIndexOrder, "alice", "o1", D("499.99")).of_type(ev.CancelRejected)
    assert low.reason is CancelRejectReason.BELOW_COMMITTED
    [reduced] = d.apply(ReduceIndexOrder, "alice", "o1", D(500)).of_type(ev.IndexOrderReduced)
    assert (reduced.collateral, reduced.released) == (D(500), D(1500))


def test_a_cancel_reports_its_request_id_and_uses_it_up():
    d = desk()
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1000")
    d.order("alice", "o2", "1000")
    assert events_of(d.apply(CancelIndexOrder, "alice", "o1", "c1")) == [
        ev.IndexOrderCompleted(1, OrderStatus.CANCELED, D(0), D(0), D(1000), ANY, "c1",
                               "canceled at the user's request"),
        ev.CollateralReleased("alice", "USDC", D(1000), 1, ANY)]
    assert events_of(d.apply(CancelIndexOrder, "alice", "o2", "c1")) == [
        ev.CancelRejected("alice", "o2", CancelRejectReason.DUPLICATE_REQUEST_ID,
                          "request id c1 is already used by this account", ANY, "c1")]
    assert d.engine.order("alice", "o2").is_open
    assert events_of(d.apply(CancelIndexOrder, "alice", "c1", "c2")) == [
        ev.CancelRejected("alice", "c1", CancelRejectReason.ALREADY_CLOSED,
                          "order c1 is canceled", ANY, "c2")]


def test_orders_expire_at_their_expiry_time_each_with_its_reason():
    d = desk()
    d.deposit("alice", "3000")
    d.order("alice", "o1", "1000", expire_at=50)
    d.order("alice", "o2", "1000", expire_at=50)
    d.order("alice", "o3", "1000")
    d.now = 49  # the tick comes at 50, the expiry time itself
    passed = "expired: its expiry time passed"
    assert events_of(d.apply(ClockTicked)) == [
        ev.IndexOrderCompleted(1, OrderStatus.EXPIRED, D(0), D(0), D(1000), ANY, "", passed),
        ev.CollateralReleased("alice", "USDC", D(1000), 1, ANY),
        ev.IndexOrderCompleted(2, OrderStatus.EXPIRED, D(0), D(0), D(1000), ANY, "", passed),
        ev.CollateralReleased("alice", "USDC", D(1000), 2, ANY)]
    [ended] = d.apply(ExpireIndexOrder, "alice", "o3").of_type(ev.IndexOrderCompleted)
    assert ended.reason == "expired: ended by the operator"
    assert events_of(d.apply(ExpireIndexOrder, "alice", "o1")) == [
        ev.CancelRejected("alice", "o1", CancelRejectReason.ALREADY_CLOSED,
                          "order o1 is expired", ANY)]
    assert d.engine.ledger.balance("alice", "USDC").available == D(3000)


def test_a_quote_counts_free_inventory_and_names_its_request():
    d = desk(solver_params=params(dust_threshold=D(1)))
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    fill(d, a1, "8")
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    fill(d, a2, "0.5")
    end(d, a2, "0.5")  # half a unit settles: 4 A1 are left free
    d.books(book("A1", ("100", "2")))
    # 1000 would buy 1 unit, but A1 has 2 on the book and 4 free: 6 / 8 = 0.75 units.
    assert events_of(d.apply(RequestQuote, "q1", "SY2", D(1000))) == [
        ev.QuoteIssued("q1", "SY2", D(1000), D(1000), D("0.75"))]
    assert events_of(d.apply(RequestQuote, "q2", "NOPE", D(1))) == [
        ev.QuoteRejected("q2", "NOPE", "unknown index NOPE")]
    assert events_of(d.apply(RequestQuote, "q3", "SY2", D("1.0000001"))) == [
        ev.QuoteRejected("q3", "SY2", "USDC has 6 decimals, got 1.0000001")]
    d.books(OrderBook("A2USDC", ()))
    assert events_of(d.apply(RequestQuote, "q4", "SY2", D(1000))) == [
        ev.QuoteRejected("q4", "SY2", "no ask price for every asset of SY2")]


def test_a_pending_cancel_waits_for_its_batch_even_when_the_order_has_fills():
    d = desk(solver_params=params(max_order_notional=D(1000)))
    d.deposit("alice", "3000")
    d.order("alice", "o1", "3000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))  # 1 unit for 1000
    requests = d.plan().of_type(ev.AssetOrderRequested)  # 1 more in flight
    assert events_of(d.apply(CancelIndexOrder, "alice", "o1", "c1")) == [
        ev.IndexOrderEndPending(1, OrderStatus.CANCELED, ANY, "c1")]
    assert events_of(d.apply(ExpireIndexOrder, "alice", "o1")) == [
        ev.CancelRejected("alice", "o1", CancelRejectReason.ALREADY_PENDING,
                          "order o1 is already being canceled", ANY)]
    assert d.plan().of_type(ev.IndexOrderCompleted) == []
    [done] = [c for t in fill_all(d, requests) for c in t.of_type(ev.IndexOrderCompleted)]
    assert done == ev.IndexOrderCompleted(1, OrderStatus.CANCELED, D(2), D(2000), D(1000), ANY,
                                          "c1",
                                          "canceled at the user's request")
    assert violations(d.engine) == []


def test_an_accepted_order_reports_its_reservation_and_mints_to_the_deposit_wallet():
    d = desk()
    assert events_of(d.apply(DepositConfirmed, "dep-1", "alice", "USDC", D(1000), "0xa11ce")) == [
        ev.CollateralDeposited("alice", "USDC", D(1000), "dep-1", ANY)]
    t = d.order("alice", "o1", "1000")
    assert events_of(t) == [ev.IndexOrderAccepted(1, "alice", "o1", "SY2", D(1000), ANY),
                            ev.CollateralReserved("alice", "USDC", D(1000), 1, ANY)]
    order = d.engine.order("alice", "o1")
    assert (order.wallet, order.accepted_ts) == ("0xa11ce", t.ts)
    planned = d.plan()
    assert d.engine.batches[1].ts == planned.ts
    [minted] = [m for t in fill_all(d, planned.of_type(ev.AssetOrderRequested))
                for m in t.of_type(ev.MintRequested)]
    assert minted == ev.MintRequested(1, "alice", "0xa11ce", "SY2", D(1))


@pytest.mark.parametrize("kwargs, text", [
    ({"index": "NOPE"}, "unknown index NOPE; known: SY2, SY3"),
    ({"side": Side.SELL}, "only buy orders are supported"),
    ({"amount": "1.0000001"}, "USDC has 6 decimals, got 1.0000001"),
    ({"max_price": D(0)}, "maximum price must be > 0, got 0"),
    ({"max_price": D("1E+24")}, "maximum price must be below 1E+24, got 1E+24"),
    ({"expire_at": 2}, "expiry time is not in the future"),  # the order comes at 2
    ({"client_order_id": "o1"}, "order id o1 is already used by this account"),
])
def test_rejected_orders_say_why_in_words(kwargs, text):
    d = Desk(Engine([index(), index("SY3")], [rules("A1"), rules("A2")], params()))
    d.deposit("alice", "1500")
    kwargs = dict(kwargs)
    if kwargs.pop("client_order_id", None):
        d.order("alice", "o1", "100")
    t = d.order("alice", "o1", kwargs.pop("amount", "100"), **kwargs)
    [rejected] = events_of(t)
    assert rejected == ev.IndexOrderRejected("alice", "o1", rejected.reason, text)


def test_an_order_at_the_minimum_or_with_a_max_price_below_1_is_accepted():
    d = desk(solver_params=params(min_order_collateral=D(10)))
    d.deposit("alice", "1000")
    assert d.order("alice", "o1", "10").of_type(ev.IndexOrderAccepted)
    assert d.order("alice", "o2", "10", max_price=D("0.5")).of_type(ev.IndexOrderAccepted)


def test_without_exchange_steps_the_minimum_order_is_the_smallest_fill():
    # No step or minimum on either market: any quantity trades, but no order is sold less
    # than the smallest fill, 0.01 USDC (1e-5 units at 1000).
    d = desk(markets=[market("A1", ("100", "1000"), step="0"),
                      market("A2", ("200", "1000"), step="0")])
    d.deposit("alice", "1")
    [rejected] = events_of(d.order("alice", "o1", "0.009999"))
    assert rejected == ev.IndexOrderRejected(
        "alice", "o1", RejectReason.BELOW_MINIMUM,
        "the smallest SY2 order at today's prices is 0.01 USDC: less cannot buy the index's "
        "smallest tradable quantity (the exchange's minimum quantities and notionals) with "
        "the fee reserve")
    assert d.order("alice", "o2", "0.01").of_type(ev.IndexOrderAccepted)
