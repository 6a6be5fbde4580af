"""Remainders too small to buy a step: they wait for company at most the completion wait,
complete or expire, and no sliver is sold at an absurd price."""



from solver.core import events as ev
from solver.core.commands import (
    AssetOrderOutcome,
    CancelIndexOrder,
    ClockTicked,
    ReduceIndexOrder,
)
from solver.core.invariants import violations
from solver.core.model import Constituent, Index
from solver.core.orders import CancelRejectReason, OrderStatus
from tests.support.builders import D, book, desk, index, market, params
from tests.unit.engine_steps import end, fill, fill_all, filtered_desk


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
