"""The engine's order lifecycle: accept/reject, batches, fills, cancel, expiry, mints, events."""

from dataclasses import replace
from decimal import Decimal
from unittest.mock import ANY

import pytest

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BookUpdated,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    FeeAssetFunded,
    MintConfirmed,
    MintFailed,
    ReduceIndexOrder,
    RequestQuote,
    SettlementMoved,
)
from solver.core.engine import Engine
from solver.core.invariants import violations
from solver.core.inventory import Assignment, Inventory, Lot
from solver.core.ledger import Balance, CollateralLedger
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Collateral, Constituent, Index, Side
from solver.core.orders import CancelRejectReason, MintStatus, OrderStatus, RejectReason
from tests.support.builders import D, Desk, book, desk, index, market, params, rules


def fill(d: Desk, request: ev.AssetOrderRequested, quantity: str, price: str | None = None,
         trade: str | None = None, commission: str = "0", asset: str = "USDC") -> None:
    d.apply(AssetOrderFilled, request.asset_order_id, trade or f"t{d.now}",
            D(price) if price else request.price, D(quantity), D(commission), asset)


def end(d: Desk, request: ev.AssetOrderRequested, executed: str,
        outcome: AssetOrderOutcome = AssetOrderOutcome.EXPIRED) -> ev.Transaction:
    return d.apply(AssetOrderEnded, request.asset_order_id, outcome, D(executed))


def fill_all(d: Desk, requests: list[ev.AssetOrderRequested]) -> list[ev.Transaction]:
    done = []
    for r in requests:
        fill(d, r, str(r.quantity))
        done.append(end(d, r, str(r.quantity), AssetOrderOutcome.FILLED))
    return done


def all_events(d: Desk) -> list[ev.Event]:
    return [e.event for t in d.transactions for e in t.events]


# --- accept and reject ---------------------------------------------------------------------


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


# --- one batch, start to mint --------------------------------------------------------------


def test_order_is_filled_completed_and_minted_once():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    planned = d.plan()
    requests = planned.of_type(ev.AssetOrderRequested)
    assert {(r.symbol, r.side, r.price, r.quantity) for r in requests} == {
        ("A1USDC", Side.BUY, D(100), D(8)), ("A2USDC", Side.BUY, D(200), D(1))}
    assert [r.client_order_id for r in requests] == ["ixs-1", "ixs-2"]
    d.apply(AssetOrderAccepted, requests[0].asset_order_id, "x-1")
    fill(d, requests[0], "5", commission="0.5")
    fill(d, requests[0], "3", commission="0.3")
    end(d, requests[0], "8", AssetOrderOutcome.FILLED)
    fill(d, requests[1], "1", commission="0.2")
    last = end(d, requests[1], "1", AssetOrderOutcome.FILLED)

    # 1000 collateral, no fee reserve, 1 USDC of commission: a unit costs 1001, so the order
    # gets 1000 / 1001 units (floored to 18 decimals); the cost is rounded up to 6 decimals.
    [filled] = last.of_type(ev.IndexOrderFilled)
    units = D("0.999000999000999000")
    assert (filled.units, filled.cost, filled.fees) == (units, D("1000.000000"), D("0.999000"))
    order = d.engine.order("alice", "o1")
    assert order.spent == order.collateral and order.status is OrderStatus.FILLED
    [minted] = last.of_type(ev.MintRequested)
    assert (minted.order_id, minted.wallet, minted.units) == (order.id, "alice", units)
    d.apply(MintConfirmed, order.id, "0xabc")
    again = d.apply(MintConfirmed, order.id, "0xabc")
    assert again.of_type(ev.InputIgnored)
    assert (order.mint_status, order.minted_units, order.mint_tx) == (
        MintStatus.MINTED, units, "0xabc")
    assert violations(d.engine) == []
    # a deep reorganisation moved the settlement to another transaction: restated, once
    [moved] = d.apply(SettlementMoved, order.id, "0xdef", 7).of_type(ev.IndexOrderMintRestated)
    assert (moved.previous_tx, moved.tx_hash, order.mint_tx) == ("0xabc", "0xdef", "0xdef")
    assert d.apply(SettlementMoved, order.id, "0xdef", 7).of_type(ev.InputIgnored)
    assert d.apply(SettlementMoved, 999, "0xdef", 7).of_type(ev.InputIgnored)
    assert order.minted_units == units and violations(d.engine) == []


def test_cost_never_exceeds_collateral_when_fees_exceed_the_reserve():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    requests = d.plan().of_type(ev.AssetOrderRequested)
    for r in requests:
        fill(d, r, str(r.quantity), commission=str(r.quantity * r.price / 10))
        end(d, r, str(r.quantity), AssetOrderOutcome.FILLED)
    order = d.engine.order("alice", "o1")
    # 10% commission: one unit costs 1100, so 1000 buys 0.909090... units.
    assert order.filled_units == D("0.909090909090909090")
    assert order.spent <= D(1000)
    assert violations(d.engine) == []


def test_unspent_collateral_is_released_and_leftover_assets_go_to_inventory():
    d = desk(solver_params=params(dust_threshold=D(1)))
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1000")
    requests = d.plan().of_type(ev.AssetOrderRequested)
    a1, a2 = requests
    fill(d, a1, "8")
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    fill(d, a2, "0.5")
    t = end(d, a2, "0.5")
    [filled] = t.of_type(ev.IndexOrderFilled)
    assert (filled.units, filled.cost) == (D("0.5"), D(500))
    order = d.engine.order("alice", "o1")
    assert order.is_open and order.remaining == D(500)
    assert d.engine.inventory.positions() == {"A1": D(4), "A2": D(0)}
    # The next batch uses the 4 A1 of inventory before buying more.
    t2 = d.plan()
    [planned] = t2.of_type(ev.BatchPlanned)
    assert dict(planned.inventory_used) == {"A1": D(4)}
    assert [(r.symbol, r.quantity) for r in t2.of_type(ev.AssetOrderRequested)] == [
        ("A2USDC", D("0.5"))]
    fill_all(d, t2.of_type(ev.AssetOrderRequested))
    assert order.status is OrderStatus.FILLED
    assert (order.filled_units, order.spent, order.released) == (D(1), D(1000), D(0))
    assert violations(d.engine) == []


def test_two_orders_pay_the_same_vwap_whatever_the_fill_order():
    def run(order_of_fills: list[int]) -> list[tuple[Decimal, Decimal]]:
        d = desk()
        d.deposit("alice", "1000")
        d.deposit("bob", "3000")
        d.order("alice", "o1", "1000")
        d.order("bob", "o2", "3000")
        a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
        fills = [(a1, "10", "99", "1"), (a1, "22", "100", "2"), (a2, "4", "199", "3")]
        for n in order_of_fills:
            r, qty, price, trade = fills[n]
            fill(d, r, qty, price=price, trade=trade, commission="0.1")
        end(d, a2, "4", AssetOrderOutcome.FILLED)
        end(d, a1, "32", AssetOrderOutcome.FILLED)
        return [(o.filled_units, o.spent) for o in d.engine.orders.values()]

    first = run([0, 1, 2])
    assert first == run([2, 1, 0]) == run([1, 2, 0])
    (u1, s1), (u2, s2) = first
    assert u2 == 3 * u1 and abs(s1 / u1 - s2 / u2) < D("0.000002")


def test_a_rejected_asset_order_does_not_stop_the_batch_or_the_service():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    fill(d, a1, "8")
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    t = end(d, a2, "0", AssetOrderOutcome.REJECTED)
    [settled] = t.of_type(ev.BatchSettled)
    assert dict(settled.filled_units) == {1: D(0)}
    order = d.engine.order("alice", "o1")
    assert order.is_ready and order.filled_units == 0
    # The next batch uses the A1 bought and only asks for A2.
    requests = d.plan().of_type(ev.AssetOrderRequested)
    assert [r.symbol for r in requests] == ["A2USDC"]


def test_trades_reported_after_the_end_of_their_order_still_settle_the_batch():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    end(d, a2, "1", AssetOrderOutcome.FILLED)
    assert not d.engine.batches[1].settled
    fill(d, a1, "8")
    fill(d, a2, "1")
    assert d.engine.batches[1].settled
    assert d.engine.order("alice", "o1").filled_units == D(1)


def test_duplicate_trades_are_counted_once():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    fill(d, a1, "8", trade="42")
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "42", D(100), D(8), D(0), "USDC")
    assert t.of_type(ev.InputIgnored)
    assert d.engine.asset_orders[a1.asset_order_id].filled == D(8)


def test_commission_in_the_base_asset_reduces_the_lot():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "7", D(100), D(8), D("0.008"), "A1")
    [lot] = t.of_type(ev.LotOpened)
    assert (lot.quantity, lot.fee) == (D("7.992"), D("0.8"))


def bnb_desk(with_book: bool) -> Desk:
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000")),
               market("BNB", ("600", "50"))]
    d = Desk(Engine([index()], [m.rules for m in markets], params(fee_reserve=D("0.25"))))
    d.books(*(m.book for m in (markets if with_book else markets[:2])))
    d.apply(FeeAssetFunded, "fund-1", "BNB", D("0.1"))
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    return d


def test_commission_in_a_third_asset_is_charged_at_its_price_and_debited_from_the_house():
    d = bnb_desk(with_book=True)
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "7", a1.price, a1.quantity,
                D("0.001"), "BNB")
    [lot] = t.of_type(ev.LotOpened)
    [debit] = t.of_type(ev.CommissionDebited)
    assert (lot.quantity, lot.fee) == (a1.quantity, D("0.6"))  # 0.001 BNB at 600
    assert (debit.asset, debit.quantity, debit.value, debit.balance) == (
        "BNB", D("0.001"), D("0.6"), D("0.099"))
    end(d, a1, str(a1.quantity), AssetOrderOutcome.FILLED)
    fill(d, a2, str(a2.quantity))
    [filled] = end(d, a2, str(a2.quantity), AssetOrderOutcome.FILLED).of_type(
        ev.IndexOrderFilled)
    assert filled.fees == D("0.6")
    held = d.engine.fee_assets["BNB"]
    assert (held.funded, held.paid, held.unvalued, held.balance) == (
        D("0.1"), D("0.001"), 0, D("0.099"))
    assert violations(d.engine) == []


def test_a_third_asset_commission_without_a_price_is_borne_by_the_house_and_recorded():
    d = bnb_desk(with_book=False)
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "7", a1.price, a1.quantity,
                D("0.001"), "BNB")
    [lot] = t.of_type(ev.LotOpened)
    [debit] = t.of_type(ev.CommissionDebited)
    assert lot.fee == 0 and debit.value is None and debit.balance == D("0.099")
    assert d.engine.fee_assets["BNB"].unvalued == D("0.001")


def test_fee_asset_funding_is_credited_once_and_overdrawn_balances_are_flagged():
    d = bnb_desk(with_book=True)
    assert d.apply(FeeAssetFunded, "fund-1", "BNB", D("5")).of_type(ev.InputIgnored)
    assert d.apply(FeeAssetFunded, "fund-2", "BNB", D("-1")).of_type(ev.InputIgnored)
    assert d.engine.fee_assets["BNB"].funded == D("0.1")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    d.apply(AssetOrderFilled, a1.asset_order_id, "7", a1.price, a1.quantity, D("0.3"), "BNB")
    assert violations(d.engine) == [
        "fee asset BNB: commissions paid 0.3 exceed its funding 0.1 (fund it)"]


def test_unknown_facts_are_ignored_without_change():
    d = desk()
    for t in (d.apply(AssetOrderAccepted, 99, "x"),
              d.apply(AssetOrderFilled, 99, "1", D(1), D(1), D(0), "USDC"),
              d.apply(AssetOrderEnded, 99, AssetOrderOutcome.FILLED, D(1)),
              d.apply(MintConfirmed, 99, "0x1"), d.apply(MintFailed, 99, 1, "boom")):
        assert [type(e.event) for e in t.events] == [ev.InputIgnored]


# --- cancel, reduce, expire ----------------------------------------------------------------


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


# --- mints ---------------------------------------------------------------------------------


def test_failed_mint_is_retried_with_backoff_and_never_requested_twice():
    d = desk(solver_params=params(mint_retry_delay_ms=100))
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    order = d.engine.order("alice", "o1")
    [scheduled] = d.apply(MintFailed, order.id, 1, "rpc timeout").of_type(
        ev.MintRetryScheduled)
    assert scheduled.attempt == 2 and scheduled.retry_at == d.now + 100
    assert not d.engine.is_due(d.now + 1)
    assert d.apply(ClockTicked).of_type(ev.MintRetryRequested) == []
    d.now = scheduled.retry_at
    assert d.engine.is_due(d.now + 1)
    [retry] = d.apply(ClockTicked).of_type(ev.MintRetryRequested)
    assert (retry.attempt, retry.units) == (2, order.filled_units)
    assert not d.engine.is_due(d.now + 1)
    stale = d.apply(MintFailed, order.id, 1, "rpc timeout, delivered again")
    assert stale.of_type(ev.InputIgnored) and not stale.of_type(ev.MintRetryScheduled)
    [again] = d.apply(MintFailed, order.id, 2, "rpc timeout").of_type(ev.MintRetryScheduled)
    assert again.retry_at == d.now + 200
    d.apply(MintConfirmed, order.id, "0xfeed")
    assert order.mint_status is MintStatus.MINTED
    requested = [e for e in all_events(d) if isinstance(e, ev.MintRequested)]
    assert len(requested) == 1


# --- events --------------------------------------------------------------------------------


def test_events_carry_global_sequence_numbers_and_the_input_time():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    envelopes = [e for t in d.transactions for e in t.events]
    assert [e.seq for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert [t.number for t in d.transactions] == list(range(1, len(d.transactions) + 1))
    for t in d.transactions:
        assert all(e.ts == t.ts == t.input.ts for e in t.events)


def test_bus_delivers_by_topic_after_the_state_changed():
    d = desk()
    bus = EventBus()
    seen: list[tuple[str, object]] = []
    bus.subscribe(ev.IndexOrderAccepted, lambda e: seen.append(
        ("accepted", d.engine.orders[e.event.order_id].collateral)))
    bus.subscribe(ev.Event, lambda e: seen.append(("any", type(e.event).__name__)))

    class Boundaries:
        def transaction_began(self, t): seen.append(("begin", t.number))
        def transaction_ended(self, t): seen.append(("end", t.number))

    bus.observe(Boundaries())
    d.deposit("alice", "1000")
    bus.publish(d.order("alice", "o1", "1000"))
    assert seen == [("begin", 4), ("accepted", D(1000)), ("any", "IndexOrderAccepted"),
                    ("any", "CollateralReserved"), ("end", 4)]


def test_quotes_price_the_index_and_reject_unknown_ones():
    d = desk(markets=[market("A1", ("100", "1000")), market("A2", ("200", "0.5"))])
    [q] = d.apply(RequestQuote, "q1", "SY2", D(1000)).of_type(ev.QuoteIssued)
    assert (q.index_price, q.units) == (D(1000), D("0.5"))
    assert d.apply(RequestQuote, "q2", "NOPE", D(1)).of_type(ev.QuoteRejected)
    assert d.apply(RequestQuote, "q3", "SY2", D(0)).of_type(ev.QuoteRejected)


def test_two_indexes_share_an_asset_order():
    sy2, sy3 = index(), index("SY3", A1="1", A3="2")
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000")),
               market("A3", ("50", "1000"))]
    d = Desk(Engine(
        [sy2, sy3], [m.rules for m in markets], params()))
    d.books(*(m.book for m in markets))
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1000")
    d.order("alice", "o2", "200", index="SY3")
    requests = d.plan().of_type(ev.AssetOrderRequested)
    assert {r.symbol: r.quantity for r in requests} == {
        "A1USDC": D(9), "A2USDC": D(1), "A3USDC": D(2)}
    fill_all(d, requests)
    assert [o.filled_units for o in d.engine.orders.values()] == [D(1), D(1)]
    assert violations(d.engine) == []


# --- review findings: bad numbers, pricing of leftovers, FIFO, collateral per batch ---------


@pytest.mark.parametrize("price, quantity, commission, asset", [
    ("NaN", "1", "0", "USDC"), ("100", "NaN", "0", "USDC"), ("100", "1", "NaN", "USDC"),
    ("Infinity", "1", "0", "USDC"), ("100", "-1", "0", "USDC"), ("100", "1", "-1", "USDC"),
    ("100", "1", "5", "A1"),  # a commission in the asset larger than the trade
    ("100", "1E+30", "0", "USDC"),
    ("0", "1", "0", "USDC"), ("100", "0", "0", "USDC"), ("100", "1E+24", "0", "USDC"),
])
def test_impossible_trades_are_ignored(price, quantity, commission, asset):
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "1", D(price), D(quantity), D(commission),
                asset)
    assert [type(e.event) for e in t.events] == [ev.InputIgnored]
    assert list(d.engine.inventory.lots()) == []


def test_impossible_end_reports_books_and_deposits_are_ignored():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    assert d.apply(AssetOrderEnded, a1.asset_order_id, AssetOrderOutcome.FILLED,
                   D("NaN")).of_type(ev.InputIgnored)
    for asks in ((("NaN", "1"),), (("100", "0"),), (("101", "1"), ("100", "1")),
                 (("100", "1E+24"),), (("1E+24", "1"),)):
        assert d.apply(BookUpdated, book("A1", *asks)).of_type(ev.InputIgnored)
    assert d.apply(DepositConfirmed, "big", "alice", "USDC", D("9E+99")).of_type(
        ev.InputIgnored)
    assert d.apply(RequestQuote, "q", "SY2", D(100)).of_type(ev.QuoteIssued)
    assert violations(d.engine) == []


def test_markets_must_be_quoted_in_the_index_collateral():
    with pytest.raises(ValueError, match="A2 needs a market quoted in USDC"):
        Engine([index()], [rules("A1"), MarketRules("A2USDT", "A2", "USDT")])


def test_each_batch_has_one_collateral():
    dai = Index("SYD", "DAI", (Constituent("D1", "D1DAI", D(1)),))
    markets = [rules("A1"), rules("A2"), MarketRules("D1DAI", "D1", "DAI", D("0.01"))]
    d = Desk(Engine([index(), dai], markets, params(),
                    [Collateral("USDC", 6), Collateral("DAI", 18)]))
    d.books(book("A1", ("100", "100")), book("A2", ("200", "100")),
            OrderBook("D1DAI", (Level(D(50), D(100)),)))
    d.deposit("alice", "1000")
    d.apply(DepositConfirmed, "dai-1", "alice", "DAI", D("100.000000000000000001"))
    d.order("alice", "o1", "1000")
    d.order("alice", "o2", "100.000000000000000001", index="SYD")
    first, second = d.plan(), d.plan()
    assert [e.order_id for e in first.of_type(ev.BatchPlanned)[0].engagements] == [1]
    assert [e.order_id for e in second.of_type(ev.BatchPlanned)[0].engagements] == [2]


def test_leftover_inventory_keeps_the_price_orders_were_charged():
    """What orders are charged plus what stays in inventory (at cost) is what was paid."""
    d = desk()
    d.deposit("alice", "10000")
    for oid, a1_price in (("o1", "100"), ("o2", "150")):
        d.books(book("A1", (a1_price, "1000")), book("A2", ("200", "1000")))
        d.order("alice", oid, "1000")
        for r in d.plan().of_type(ev.AssetOrderRequested):
            quantity = r.quantity if r.symbol == "A1USDC" else D("0.5") * r.quantity
            fill(d, r, str(quantity))
            end(d, r, str(quantity))
    inventory = d.engine.inventory
    paid = sum(lot.price * lot.quantity + lot.fee for lot in inventory.lots())
    charged = sum(o.spent for o in d.engine.orders.values())
    held = sum(inventory.unassigned(lot.id) * lot.price for lot in inventory.lots())
    assert abs(charged + held - paid) <= D("0.00001")
    assert violations(d.engine) == []


def test_max_price_holds_when_the_pool_has_dearer_inventory():
    d = desk()
    d.deposit("alice", "10000")
    d.books(book("A1", ("150", "1000")), book("A2", ("200", "1000")))
    d.order("alice", "o1", "1400")
    for r in d.plan().of_type(ev.AssetOrderRequested):  # A2 only half fills: A1 left over
        quantity = r.quantity if r.symbol == "A1USDC" else D("0.5")
        fill(d, r, str(quantity))
        end(d, r, str(quantity))
    d.apply(CancelIndexOrder, "alice", "o1")
    d.books(book("A1", ("100", "1000")), book("A2", ("200", "1000")))
    d.order("alice", "o2", "1000", max_price=D(1100))
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    order = d.engine.order("alice", "o2")
    assert order.filled_units == 0 or order.spent / order.filled_units <= D(1100)
    assert violations(d.engine) == []


def test_inventory_is_consumed_in_exchange_trade_order_whatever_settles_first():
    def run(settle_first: list[str]) -> tuple[Decimal, Decimal]:
        d = desk()
        d.deposit("alice", "10000")
        requests = {}
        for oid, a1_price in (("o1", "100"), ("o2", "150")):
            d.books(book("A1", (a1_price, "1000")), book("A2", ("200", "1000")))
            d.order("alice", oid, "1000")
            requests[oid] = d.plan().of_type(ev.AssetOrderRequested)
        for oid in settle_first:
            for r in requests[oid]:
                quantity = r.quantity if r.symbol == "A1USDC" else D("0.5")
                fill(d, r, str(quantity), trade=str(r.asset_order_id))
                end(d, r, str(quantity))
        d.apply(CancelIndexOrder, "alice", "o1")
        d.apply(CancelIndexOrder, "alice", "o2")
        d.books(book("A1", ("100", "1000")), book("A2", ("200", "1000")))
        d.order("alice", "o3", "300")
        fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
        o3 = d.engine.order("alice", "o3")
        assert violations(d.engine) == []
        return o3.filled_units, o3.spent

    assert run(["o1", "o2"]) == run(["o2", "o1"])


def test_inflight_notional_caps_the_next_batch_until_the_first_settles():
    d = desk(solver_params=params(max_inflight_notional=D(1500), max_orders_per_batch=1))
    d.deposit("alice", "3000")
    d.order("alice", "o1", "1000")
    d.order("alice", "o2", "1000")
    first = d.plan().of_type(ev.AssetOrderRequested)
    [second] = d.plan().of_type(ev.BatchPlanned)
    assert [(e.order_id, e.units) for e in second.engagements] == [(2, D("0.5"))]
    assert d.plan().of_type(ev.BatchPlanned) == []  # 1500 in flight: no room
    fill_all(d, first)
    assert d.engine.inflight_notional() == D(500)
    [expired] = d.apply(ExpireIndexOrder, "alice", "o2").of_type(ev.IndexOrderEndPending)
    assert expired.ending is OrderStatus.EXPIRED
    assert violations(d.engine) == []


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


# --- remainders too small to buy a step; slivers not sold at absurd prices ------------------


def filtered_desk(**param_values: object) -> Desk:
    """SY2 (8 A1 + 1 A2) on markets with Binance-like filters, at most 1000 USDC per order per
    batch. The index's smallest tradable quantity is 0.03 units: A2's 5 USDC minimum notional
    at 200 is 0.025 A2, up to its 0.01 step 0.03 (A1 needs only 0.05 A1, 0.00625 units); at
    the index price of 1000 it costs 30 USDC."""
    markets = [market("A1", ("100", "1000"), min_qty="0.001", min_notional="5"),
               market("A2", ("200", "1000"), step="0.01", min_qty="0.01", min_notional="5")]
    return desk(markets=markets,
                solver_params=params(max_order_notional=D(1000), **param_values))


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


def test_a_remainder_too_small_to_be_bought_alone_waits_for_company():
    d = filtered_desk()
    d.deposit("alice", "2000")
    d.deposit("bob", "2000")
    d.order("alice", "o1", "1018")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    alice = d.engine.order("alice", "o1")
    # 18 USDC left: less than the 30 a step of the index costs alone, but a batch with other
    # orders of SY2 can buy it, so the order stays open.
    assert alice.is_open and (alice.filled_units, alice.remaining) == (D(1), D(18))
    [nothing] = d.plan().events
    assert nothing.event == ev.BatchNotPlanned(1, 0, (
        "USDC: A2USDC: the orders' buy of 0.01 at 200 fails NOTIONAL (step 0.01, min qty "
        "0.01, min notional 5)"))
    d.order("bob", "o1", "992")
    requests = d.plan().of_type(ev.AssetOrderRequested)
    assert {(r.symbol, r.quantity) for r in requests} == {
        ("A1USDC", D("8.08")), ("A2USDC", D("1.01"))}  # 0.018 + 0.992 units
    fill_all(d, requests)
    bob = d.engine.order("bob", "o1")
    assert (alice.status, alice.filled_units, alice.spent, alice.released) == (
        OrderStatus.FILLED, D("1.018"), D(1018), D(0))
    assert (bob.status, bob.filled_units, bob.spent) == (OrderStatus.FILLED, D("0.992"), D(992))
    assert violations(d.engine) == []


def test_orders_share_a_batch_that_neither_could_trade_alone():
    """IX = 1 A + 1 C; A asks 995 (step 0.001), C asks 5 (step 1, min notional 5); at most
    1000 USDC per order per batch. Two orders of 1500 each: the first batch buys 1 unit each,
    the second 0.5 each (1 C in all), so each gets 1.5 units for 1500."""
    ix = Index("IX", "USDC", (Constituent("A", "AUSDC", D(1)), Constituent("C", "CUSDC", D(1))))
    markets = [market("A", ("995", "1000")),
               market("C", ("5", "1000"), step="1", min_notional="5")]
    d = desk(ix, markets, params(max_order_notional=D(1000)))
    for user in ("alice", "bob"):
        d.deposit(user, "1500")
        d.order(user, "o1", "1500", index="IX")
    while requests := d.plan().of_type(ev.AssetOrderRequested):
        fill_all(d, requests)
    for user in ("alice", "bob"):
        order = d.engine.order(user, "o1")
        assert (order.status, order.filled_units, order.spent, order.released) == (
            OrderStatus.FILLED, D("1.5"), D(1500), D(0))
    assert len(d.engine.batches) == 2
    assert violations(d.engine) == []


def test_a_remainder_that_buys_a_step_stays_open_for_the_next_batch():
    d = filtered_desk()
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1030")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    order = d.engine.order("alice", "o1")
    assert order.is_open and order.remaining == D(30)
    requests = d.plan().of_type(ev.AssetOrderRequested)
    assert {(r.symbol, r.quantity) for r in requests} == {
        ("A1USDC", D("0.24")), ("A2USDC", D("0.03"))}
    fill_all(d, requests)
    assert (order.status, order.filled_units, order.spent, order.released) == (
        OrderStatus.FILLED, D("1.03"), D(1030), D(0))
    assert violations(d.engine) == []


def test_orders_that_got_nothing_for_want_of_liquidity_stay_open():
    d = filtered_desk()
    d.deposit("alice", "100")
    d.deposit("bob", "3000")
    d.order("alice", "small", "30")
    d.order("bob", "big", "3000")
    for r in d.plan().of_type(ev.AssetOrderRequested):
        end(d, r, "0")  # the books moved away: nothing executed
    small, big = d.engine.order("alice", "small"), d.engine.order("bob", "big")
    assert small.is_open and big.is_open and small.spent == big.spent == 0
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    assert (small.status, small.filled_units, small.released) == (
        OrderStatus.FILLED, D("0.03"), D(0))
    # Bob got a fill and has 2000 left; a batch that brings him nothing keeps his order open.
    assert big.is_open and big.remaining == D(2000)
    for r in d.plan().of_type(ev.AssetOrderRequested):
        end(d, r, "0")
    assert big.is_open and big.remaining == D(2000)
    assert violations(d.engine) == []


def test_an_order_without_fills_never_ends_filled():
    d = filtered_desk(dust_threshold=D(50))
    d.deposit("alice", "100")
    d.order("alice", "o1", "40")  # at or below the dust threshold, but nothing bought yet
    order = d.engine.order("alice", "o1")
    for _ in range(2):
        t = d.plan()
        assert t.of_type(ev.IndexOrderCompleted) == []
        for r in t.of_type(ev.AssetOrderRequested):
            end(d, r, "0")
        assert order.is_open
    [refused] = d.apply(ReduceIndexOrder, "alice", "o1", D(20)).of_type(ev.CancelRejected)
    assert refused.reason is CancelRejectReason.BELOW_MINIMUM and "30 USDC" in refused.text
    [done] = d.apply(CancelIndexOrder, "alice", "o1").of_type(ev.IndexOrderCompleted)
    assert (done.status, done.filled_units, done.released) == (OrderStatus.CANCELED, 0, D(40))
    assert violations(d.engine) == []


def test_a_remainder_waits_for_company_at_most_the_completion_wait_then_completes():
    d = filtered_desk(completion_wait_ms=60_000)
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1040")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    d.books(book("A1", ("200", "1000")))  # the index now costs 1800: alone, a step costs 54
    plan = d.plan()
    assert not plan.of_type(ev.BatchPlanned) and plan.of_type(ev.BatchNotPlanned)
    order = d.engine.order("alice", "o1")
    assert order.is_open and order.remaining == D(40) and order.waits_until == d.now + 60_000
    d.now = order.waits_until - 2
    assert not d.engine.is_due(d.now + 1) and d.apply(ClockTicked).events == ()
    assert d.engine.is_due(d.now + 1)
    [done] = d.apply(ClockTicked).of_type(ev.IndexOrderCompleted)
    assert (done.status, done.filled_units, done.released) == (
        OrderStatus.FILLED, D(1), D(40))
    assert done.reason == (
        "filled: the 40 USDC left cannot buy the smallest tradable quantity of SY2 alone (54 "
        "USDC at today's prices), and no batch could buy it with other orders of SY2 within "
        "60 s")
    assert violations(d.engine) == []


def test_a_remainder_at_the_end_of_its_wait_is_bought_with_the_company_that_came():
    d = filtered_desk(completion_wait_ms=60_000)
    d.deposit("alice", "2000")
    d.deposit("bob", "2000")
    d.order("alice", "o1", "1018")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    d.plan()  # 18 USDC left, less than a step costs alone: the wait starts
    alice = d.engine.order("alice", "o1")
    d.order("bob", "o1", "992")
    d.now = alice.waits_until  # the next plan comes as the wait ends
    [planned] = d.plan().of_type(ev.BatchPlanned)
    assert {e.order_id for e in planned.engagements} == {1, 2}
    assert alice.is_open and alice.waits_until is None  # engaged: it waits anew if need be


def test_a_remainder_that_can_be_bought_alone_again_stops_its_clock():
    d = filtered_desk(completion_wait_ms=60_000)
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1040")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    d.books(book("A1", ("200", "1000")))
    d.plan()
    order = d.engine.order("alice", "o1")
    assert order.waits_until is not None
    d.books(book("A1", ("100", "1000")))  # back: 40 buys 0.04 units alone again
    d.now = order.waits_until
    assert d.apply(ClockTicked).events == () and order.waits_until is None and order.is_open
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    assert (order.status, order.filled_units, order.released) == (
        OrderStatus.FILLED, D("1.04"), D(0))


def test_an_order_without_fills_that_cannot_be_bought_alone_expires_after_the_wait():
    d = filtered_desk(completion_wait_ms=1_000)
    d.deposit("alice", "100")
    d.order("alice", "o1", "40")
    d.books(book("A1", ("200", "1000")))  # alone, a step now costs 54
    d.plan()
    d.now = d.engine.order("alice", "o1").waits_until
    [done] = d.apply(ClockTicked).of_type(ev.IndexOrderCompleted)
    assert (done.status, done.filled_units, done.released) == (OrderStatus.EXPIRED, 0, D(40))
    assert done.reason.startswith("expired: the 40 USDC left cannot buy")


def test_a_remainder_below_the_smallest_unit_of_the_index_completes_the_order():
    whole = Index("WH", "USDC", (Constituent("A1", "A1USDC", D(10)),), decimals=0)
    d = desk(whole, [market("A1", ("100", "1000"))])
    d.deposit("alice", "2000")
    d.order("alice", "o1", "1500", index="WH")
    [t] = fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    [done] = t.of_type(ev.IndexOrderCompleted)
    assert (done.status, done.filled_units, done.spent, done.released) == (
        OrderStatus.FILLED, D(1), D(1000), D(500))
    assert "500 USDC left buys less than the smallest fill of WH (1 unit" in done.reason
    assert t.of_type(ev.MintRequested)[0].units == D(1)
    assert violations(d.engine) == []


def test_reducing_a_filled_order_to_dust_completes_it():
    d = filtered_desk()
    d.deposit("alice", "3000")
    d.order("alice", "o1", "3000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    t = d.apply(ReduceIndexOrder, "alice", "o1", D(1020))
    assert t.of_type(ev.IndexOrderCompleted) == []  # 20 left: it waits for company
    t = d.apply(ReduceIndexOrder, "alice", "o1", D("1000.01"))
    [done] = t.of_type(ev.IndexOrderCompleted)
    assert (done.status, done.spent, done.released) == (OrderStatus.FILLED, D(1000), D("0.01"))
    assert done.reason == "filled: the 0.01 USDC left is at or below the dust threshold of " \
        "0.01 USDC"
    assert violations(d.engine) == []


def test_a_sliver_of_an_asset_is_not_sold_to_an_order_at_an_absurd_price():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    fill(d, a1, "8")
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    fill(d, a2, "0.000000000000000001")
    # 1e-18 units are worth 1e-15 USDC: charged 0.000001 they would be priced at 1e12.
    t = end(d, a2, "0.000000000000000001")
    assert t.of_type(ev.IndexOrderFilled) == []
    [settled] = t.of_type(ev.BatchSettled)
    assert settled.filled_units == ((1, D(0)),) and settled.assignments == ()
    order = d.engine.order("alice", "o1")
    assert order.is_open and order.spent == 0 and order.filled_units == 0
    assert d.engine.inventory.positions() == {"A1": D(8), "A2": D("1E-18")}
    assert violations(d.engine) == []


# --- found by the mutation run (docs/mutation.md): events in full, boundaries, house funds ----


def events_of(t: ev.Transaction) -> list[ev.Event]:
    return [e.event for e in t.events]


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


def test_a_mint_is_retried_at_its_retry_time_for_the_order_s_account_wallet_and_units():
    d = desk(solver_params=params(mint_retry_delay_ms=100))
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    assert events_of(d.apply(MintFailed, 1, 1, "rpc timeout")) == [
        ev.MintRetryScheduled(1, 2, d.now + 100, "rpc timeout")]
    d.now += 99  # the tick comes at the retry time itself
    assert events_of(d.apply(ClockTicked)) == [
        ev.MintRetryRequested(1, "alice", "alice", "SY2", D(1), 2)]
    assert events_of(d.apply(MintFailed, 1, 1, "late")) == [
        ev.InputIgnored("no mint attempt 1 in progress for order 1")]


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


def test_house_fee_funds_add_up_and_a_commission_needs_no_prior_funding():
    # BNB trades against USDT here: a BNB commission on a USDC trade has no USDC price, so the
    # house bears it (unvalued) and no order is charged for it.
    markets = [market("A1", ("100", "1000")), market("A2", ("200", "1000"))]
    bnb = MarketRules("BNBUSDT", "BNB", "USDT", D("0.01"), D("0.001"))
    d = Desk(Engine([index()], [m.rules for m in markets] + [bnb], params()))
    d.books(*(m.book for m in markets), OrderBook("BNBUSDT", (Level(D(600), D(50)),)))
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "7", D(100), D(5), D("0.001"), "BNB")
    assert events_of(t) == [
        ev.LotOpened("A1USDC:7", "A1", 1, 1, D(100), D(5), D(0)),
        ev.CommissionDebited("A1USDC:7", "BNB", D("0.001"), None, D("-0.001"))]
    d.apply(AssetOrderFilled, a1.asset_order_id, "8", D(100), D(3), D("0.002"), "BNB")
    held = d.engine.fee_assets["BNB"]
    assert (held.paid, held.unvalued, held.balance) == (D("0.003"), D("0.003"), D("-0.003"))
    assert events_of(d.apply(FeeAssetFunded, "f1", "BNB", D("0.1"))) == [
        ev.FeeAssetCredited("f1", "BNB", D("0.1"), D("0.097"))]
    assert events_of(d.apply(FeeAssetFunded, "f2", "BNB", D("0.2"))) == [
        ev.FeeAssetCredited("f2", "BNB", D("0.2"), D("0.297"))]
    assert events_of(d.apply(FeeAssetFunded, "f1", "BNB", D("0.2"))) == [
        ev.InputIgnored("fee asset funding f1 already credited")]
    assert events_of(d.apply(FeeAssetFunded, "f3", "BNB", D(-1))) == [
        ev.InputIgnored("fee asset funding f3: quantity out of range")]
    assert (held.funded, held.balance) == (D("0.3"), D("0.297"))
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    fill_all(d, [a2])
    order = d.engine.order("alice", "o1")
    assert (order.filled_units, order.spent, order.fees) == (D(1), D(1000), D(0))
    assert violations(d.engine) == []


def a1_lot(trade: str, batch_id: int, quantity: str) -> Lot:
    return Lot(f"A1USDC:{trade}", "A1", "A1USDC", trade, 1, batch_id, D(100), D(quantity), D(0), 0)


def test_a_batch_frees_what_is_left_of_its_own_lots_however_little():
    inventory = Inventory()
    inventory.open(a1_lot("1", 1, "0.75"))
    inventory.settle(1, [Assignment("A1USDC:1", 9, D("0.5"))])
    assert inventory.free_quantity("A1") == D("0.25")


def test_a_lot_held_by_two_batches_is_freed_once_with_what_neither_used():
    inventory = Inventory()
    inventory.open(a1_lot("1", 1, "10"))
    inventory.settle(1, ())  # its batch assigned none of it: 10 free
    inventory.hold(2, "A1", D(4))
    inventory.hold(3, "A1", D(6))  # all of it held, by two batches
    assert inventory.free_quantity("A1") == 0
    inventory.settle(2, [Assignment("A1USDC:1", 7, D(4))])  # batch 2 used all it held
    inventory.settle(3, [Assignment("A1USDC:1", 8, D("5.5"))])  # batch 3 left 0.5
    assert inventory.free_quantity("A1") == D("0.5")
    inventory.hold(4, "A1", D("0.5"))
    assert inventory.free_quantity("A1") == 0
    with pytest.raises(ValueError, match=r"hold A1: 0\.5 more than free inventory"):
        inventory.hold(5, "A1", D("0.5"))


def test_fills_report_batch_price_cost_and_totals_and_fees_add_up_over_batches():
    d = desk(solver_params=params(max_order_notional=D(1000)))
    d.deposit("alice", "2000")
    d.order("alice", "o1", "2000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    fill(d, a1, "8", trade="11", commission="1")
    end(d, a1, "8", AssetOrderOutcome.FILLED)
    fill(d, a2, "1", trade="12")
    # 1 unit at 8 x 100 + 200, plus the 1 USDC commission: 1001.
    assert events_of(end(d, a2, "1", AssetOrderOutcome.FILLED)) == [
        ev.AssetOrderClosed(2, AssetOrderOutcome.FILLED, D(1), ""),
        ev.BatchSettled(1, ((1, D(1)),), (("A1", D(100)), ("A2", D(200))), (
            Assignment("A1USDC:11", 1, D(8)), Assignment("A2USDC:12", 1, D(1)))),
        ev.IndexOrderFilled(1, 1, D(1), D(1001), D(1001), D(1), D(1), D(1001), D(999), ANY),
        ev.CollateralSpent("alice", "USDC", D(1001), D(1), 1, ANY)]
    # The 999 left buy 0.999 units at 1000, without commission: all of it is spent.
    last = fill_all(d, d.plan().of_type(ev.AssetOrderRequested))[-1]
    assert events_of(last)[2:] == [
        ev.IndexOrderFilled(1, 2, D("0.999"), D(1000), D(999), D(0), D("1.999"), D(2000),
                            D(0), ANY),
        ev.CollateralSpent("alice", "USDC", D(999), D(0), 1, ANY),
        ev.IndexOrderCompleted(1, OrderStatus.FILLED, D("1.999"), D(2000), D(0), ANY, "",
                               "filled: all of its collateral was spent"),
        ev.MintRequested(1, "alice", "alice", "SY2", D("1.999"))]
    order = d.engine.order("alice", "o1")
    assert (order.spent, order.fees) == (D(2000), D(1))
    assert d.engine.ledger.balance("alice", "USDC").fees == D(1)
    assert events_of(d.apply(MintConfirmed, 1, "0xabc")) == [
        ev.IndexOrderMinted(1, D("1.999"), "0xabc", ANY)]


def test_a_trade_reported_after_its_batch_settled_is_recorded_and_freed():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, a2 = d.plan().of_type(ev.AssetOrderRequested)
    fill_all(d, [a1, a2])
    assert d.engine.batches[1].settled
    fill(d, a1, "2", trade="late")
    assert d.engine.inventory.lot("A1USDC:late") == Lot(
        "A1USDC:late", "A1", "A1USDC", "late", 1, 1, D(100), D(2), D(0), d.now)
    assert d.engine.inventory.free_quantity("A1") == D(2)


def test_a_commission_of_the_whole_trade_in_the_asset_is_still_recorded_and_valued():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    t = d.apply(AssetOrderFilled, a1.asset_order_id, "5", D(100), D(2), D(2), "A1")
    assert events_of(t) == [ev.LotOpened("A1USDC:5", "A1", 1, 1, D(100), D(0), D(200))]
    assert d.engine.asset_orders[a1.asset_order_id].filled == D(2)


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


def test_remainders_priced_out_by_a_move_complete_together_at_the_next_plan():
    # Whole units only: 1000 of each order buys one unit at 1000, and the 1500 left would buy
    # another until A1 rises to 200 (a unit at 1800).
    sy0 = Index("SY2", "USDC", index().constituents, decimals=0)
    d = desk(sy0, solver_params=params(max_order_notional=D(1000)))
    d.deposit("alice", "2500")
    d.deposit("bob", "2500")
    d.order("alice", "o1", "2500")
    d.order("bob", "o2", "2500")
    fill_all(d, d.plan().of_type(ev.AssetOrderRequested))
    assert [o.remaining for o in d.engine.open_orders()] == [D(1500), D(1500)]
    d.books(book("A1", ("200", "1000")))
    completed = d.plan().of_type(ev.IndexOrderCompleted)
    assert [(c.order_id, c.status, c.released) for c in completed] == [
        (1, OrderStatus.FILLED, D(1500)), (2, OrderStatus.FILLED, D(1500))]


def test_the_ledger_keeps_fees_through_every_movement_and_flags_any_negative_part():
    ledger = CollateralLedger()
    ledger.credit("alice", "USDC", D(100))
    ledger.reserve("alice", "USDC", D(60))
    ledger.spend("alice", "USDC", D(10), D(1))
    ledger.release("alice", "USDC", D(20))
    ledger.spend("alice", "USDC", D(10), D(2))
    ledger.credit("alice", "USDC", D(50))
    ledger.reserve("alice", "USDC", D(5))
    assert ledger.balance("alice", "USDC") == Balance(D(150), D(105), D(25), D(20), D(3))
    for field in ("available", "reserved", "spent", "fees"):
        balance = replace(Balance(), **{field: D(-1)})
        assert balance.violation() == f"negative balance {balance}"


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


def test_the_planner_engages_no_order_for_less_than_the_smallest_fill():
    # 0.000005 A2 on the book: 0.000005 units, worth 0.005 USDC, below the smallest fill.
    d = desk(markets=[market("A1", ("100", "1000"), step="0"),
                      market("A2", ("200", "0.000005"), step="0")])
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    assert d.plan().of_type(ev.BatchPlanned) == []


@pytest.mark.parametrize("asks, bids", [
    ((("100", "1"), ("100", "1")), ()),
    ((("100", "1"),), (("99", "1"), ("99", "1"))),
    ((("100", "1"),), (("99", "1"), ("98", "1"), ("98.5", "1"))),
])
def test_books_with_levels_out_of_order_or_repeated_on_either_side_are_ignored(asks, bids):
    d = desk()
    bad = OrderBook("A1USDC", tuple(Level(D(p), D(q)) for p, q in asks),
                    tuple(Level(D(p), D(q)) for p, q in bids))
    assert [type(e) for e in events_of(d.apply(BookUpdated, bad))] == [ev.InputIgnored]
    assert d.engine.books["A1"].best_ask == D(100) and d.engine.books["A1"].bids == ()


def test_the_exchange_s_order_id_is_recorded_for_a_known_asset_order_only():
    d = desk()
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    a1, _ = d.plan().of_type(ev.AssetOrderRequested)
    assert events_of(d.apply(AssetOrderAccepted, a1.asset_order_id, "x-1")) == []
    assert d.engine.asset_orders[a1.asset_order_id].exchange_order_id == "x-1"
    assert events_of(d.apply(AssetOrderAccepted, 99, "x-2")) == [
        ev.InputIgnored("unknown asset order 99")]
