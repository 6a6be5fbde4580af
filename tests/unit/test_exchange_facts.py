"""The exchange's facts: trades recorded once, commissions in the asset bought or a third
asset, fee funds, impossible or unknown facts ignored, books."""


import pytest

from solver.core import events as ev
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BookUpdated,
    DepositConfirmed,
    FeeAssetFunded,
    MintConfirmed,
    MintFailed,
    RequestQuote,
)
from solver.core.engine import Engine
from solver.core.invariants import violations
from solver.core.inventory import Lot
from solver.core.market import Level, MarketRules, OrderBook
from tests.support.builders import D, Desk, book, desk, index, market, params
from tests.unit.engine_steps import end, events_of, fill, fill_all


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
