"""Local books from the mock's depth streams: in sync through dropped updates, and withdrawn
from the engine when the stream goes quiet."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from mocks.binance.faults import Faults
from mocks.binance.local import mock_server, running
from solver.exchange.books import BookStatus
from solver.exchange.market_data import MarketData
from tests.support.exchange import connector, run, until

SYMBOLS = ["A1USDC", "A2USDC"]


def test_books_resync_through_gaps_and_match_the_exchange() -> None:
    async def scenario() -> None:
        async with running(mock_server(step_ms=10, faults=Faults(depth_gap=0.2))) as server, \
                connector(server) as conn:
            data = MarketData(conn, SYMBOLS)
            following = asyncio.create_task(data.run())
            await until(lambda: all(b.resyncs > 0 for b in data.books.values()), timeout=30,
                        what="a gap in every book")
            server.faults.depth_gap = 0.0
            await until(lambda: data.live, timeout=30, what="books live again")
            server.step_ms = 0  # hold the market still, then compare
            server._stepper.cancel()  # type: ignore[union-attr]
            server.exchange.step(server.now())  # one last diff to catch up on
            for symbol in SYMBOLS:
                exchange_book = server.exchange.books[symbol]
                await until(lambda s=symbol, b=exchange_book: data.books[s].last_update_id
                            == b.update_id, timeout=10, what="the last update")
                local = data.books[symbol]
                assert local.asks == exchange_book.asks and local.bids == exchange_book.bids
            updates = {u.book.symbol: u.book for u in data.book_updates()}
            assert updates["A1USDC"].best_ask == min(server.exchange.books["A1USDC"].asks)
            assert data.book_updates() == []  # nothing moved since: nothing to journal
            following.cancel()
            await asyncio.wait([following], timeout=5)
    run(scenario(), timeout=90)


def test_a_silent_stream_makes_the_book_stale_and_empty_for_the_engine() -> None:
    async def scenario() -> None:
        async with running(mock_server(step_ms=10)) as server, connector(server) as conn:
            data = MarketData(conn, SYMBOLS, max_age_ms=300)
            following = asyncio.create_task(data.run())
            await until(lambda: data.live, timeout=30, what="books live")
            assert all(u.book.asks for u in data.book_updates())
            server.faults.stale_book = True
            await until(lambda: all(v.asks == () for v in data.views().values()),
                        timeout=10, what="every book stale, so empty for the engine")
            assert all(b.status == BookStatus.LIVE for b in data.books.values())
            server.faults.stale_book = False
            await until(lambda: data.live, timeout=30, what="books live again")
            following.cancel()
            await asyncio.wait([following], timeout=5)
    run(scenario(), timeout=90)


def test_book_update_quantities_are_exact_decimals() -> None:
    async def scenario() -> None:
        async with running(mock_server(step_ms=10)) as server, connector(server) as conn:
            data = MarketData(conn, ["BTCUSDC"])
            following = asyncio.create_task(data.run())
            await until(lambda: data.live, timeout=30, what="book live")
            book = data.book_updates()[0].book
            assert all(isinstance(level.quantity, D) for level in book.asks)
            assert book.is_well_formed()
            following.cancel()
            await asyncio.wait([following], timeout=5)
    run(scenario(), timeout=60)
