"""A batch from plan to mint: fills allocated at the pools' prices, fees, inventory, caps,
one collateral per batch; mints and their retries; events in order."""

from dataclasses import replace
from decimal import Decimal
from unittest.mock import ANY

import pytest

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderOutcome,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    MintConfirmed,
    MintFailed,
    SettlementMoved,
)
from solver.core.engine import Engine
from solver.core.invariants import violations
from solver.core.inventory import Assignment, Inventory, Lot
from solver.core.ledger import Balance, CollateralLedger
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Collateral, Constituent, Index, Side
from solver.core.orders import MintStatus, OrderStatus
from tests.support.builders import D, Desk, book, desk, index, market, params, rules
from tests.unit.engine_steps import all_events, end, events_of, fill, fill_all


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


def test_the_planner_engages_no_order_for_less_than_the_smallest_fill():
    # 0.000005 A2 on the book: 0.000005 units, worth 0.005 USDC, below the smallest fill.
    d = desk(markets=[market("A1", ("100", "1000"), step="0"),
                      market("A2", ("200", "0.000005"), step="0")])
    d.deposit("alice", "1000")
    d.order("alice", "o1", "1000")
    assert d.plan().of_type(ev.BatchPlanned) == []
