"""Local order books: snapshot plus diffs by Binance's rules, with gaps and reordering."""

from __future__ import annotations

import random
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from solver.exchange.books import BookStatus, LocalBook
from solver.exchange.wire import DepthDiff, DepthSnapshot


def diff(first: int, last: int, bids: dict[str, str] | None = None,
         asks: dict[str, str] | None = None) -> DepthDiff:
    return DepthDiff("A1USDC", first, last,
                     tuple((D(p), D(q)) for p, q in (bids or {}).items()),
                     tuple((D(p), D(q)) for p, q in (asks or {}).items()))


SNAPSHOT = DepthSnapshot("A1USDC", 10, ((D("99"), D(5)),), ((D("101"), D(5)), (D("102"), D(7))))


def test_diffs_before_the_snapshot_are_buffered_then_replayed_from_it() -> None:
    book = LocalBook("A1USDC")
    assert book.on_diff(diff(5, 8, asks={"101": "1"}), 0) == BookStatus.NEEDS_SNAPSHOT
    book.on_diff(diff(9, 11, asks={"101": "2"}), 0)  # straddles the snapshot: applies
    book.on_diff(diff(12, 12, asks={"102": "0"}), 0)
    book.snapshot_requested()
    assert book.on_snapshot(SNAPSHOT) == BookStatus.LIVE
    assert book.last_update_id == 12
    assert book.asks == {D("101"): D(2)}  # the old diff dropped; "0" removed 102
    assert book.order_book().best_ask == D("101")


def test_a_gap_discards_the_book_and_asks_for_a_new_snapshot() -> None:
    book = LocalBook("A1USDC")
    book.on_snapshot(SNAPSHOT)
    assert book.on_diff(diff(11, 12, bids={"99": "6"}), 0) == BookStatus.LIVE
    assert book.on_diff(diff(14, 15, bids={"98": "1"}), 0) == BookStatus.NEEDS_SNAPSHOT
    assert (book.bids, book.resyncs) == ({}, 1)
    book.on_diff(diff(16, 16, bids={"97": "1"}), 0)
    book.on_snapshot(DepthSnapshot("A1USDC", 15, ((D("98"), D(1)), (D("99"), D(6))), ()))
    assert book.bids == {D("97"): D(1), D("98"): D(1), D("99"): D(6)}
    assert book.status == BookStatus.LIVE


def test_a_snapshot_older_than_the_buffer_is_not_enough() -> None:
    book = LocalBook("A1USDC")
    book.on_diff(diff(20, 21, asks={"101": "3"}), 0)
    assert book.on_snapshot(SNAPSHOT) == BookStatus.NEEDS_SNAPSHOT  # 10 + 1 < 20: a gap
    assert book.buffer[-1].first_update_id == 20


def test_zero_quantity_is_compared_as_a_number() -> None:
    book = LocalBook("A1USDC")
    book.on_snapshot(SNAPSHOT)
    book.on_diff(diff(11, 11, asks={"101": "0E-8"}), 0)
    book.on_diff(diff(12, 12, asks={"102.00000000": "0.00"}), 0)
    assert book.asks == {}


def test_a_quiet_book_is_stale() -> None:
    book = LocalBook("A1USDC")
    assert book.is_stale(0, 5000)  # never synced
    book.on_diff(diff(11, 11), 1000)
    book.on_snapshot(SNAPSHOT)
    assert not book.is_stale(5000, 5000)
    assert book.is_stale(6001, 5000)


def test_a_book_just_synced_from_a_snapshot_is_fresh_though_its_market_is_quiet() -> None:
    book = LocalBook("A1USDC")
    book.on_snapshot(SNAPSHOT, 20_000)
    assert not book.is_stale(24_000, 5000)
    assert book.is_stale(25_001, 5000)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 40), st.floats(0, 0.3), st.floats(0, 0.3))
def test_whenever_the_book_is_live_it_equals_the_exchange_at_its_update_id(
        seed: int, steps: int, drop: float, swap: float) -> None:
    rng = random.Random(seed)
    truth: dict[D, D] = {D(100 + n): D(1) for n in range(5)}
    states = {1: dict(truth)}  # the exchange's book after each update id
    history = []
    for update_id in range(2, steps + 2):
        price, quantity = D(100 + rng.randint(0, 8)), D(rng.randint(0, 3))
        if quantity:
            truth[price] = quantity
        else:
            truth.pop(price, None)
        states[update_id] = dict(truth)
        history.append(diff(update_id, update_id, asks={str(price): str(quantity)}))
    delivered = [d for d in history if rng.random() >= drop]  # lost updates: gaps
    for n in range(len(delivered) - 1):
        if rng.random() < swap:  # reordered updates
            delivered[n], delivered[n + 1] = delivered[n + 1], delivered[n]

    def snapshot(update_id: int) -> DepthSnapshot:
        return DepthSnapshot("A1USDC", update_id, (), tuple(sorted(states[update_id].items())))

    book = LocalBook("A1USDC")
    book.on_snapshot(snapshot(1))
    sent = 1
    for event in delivered:
        sent = max(sent, event.last_update_id)
        if book.on_diff(event, 0) == BookStatus.NEEDS_SNAPSHOT:
            book.snapshot_requested()
            book.on_snapshot(snapshot(sent))  # the REST snapshot is as new as the stream
        if book.status == BookStatus.LIVE:
            assert book.asks == states[book.last_update_id]
