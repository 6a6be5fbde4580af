"""Market data: one local book per symbol, kept in sync from the diff stream and REST
snapshots, and handed to the engine as ``BookUpdated`` inputs.

A stale or unsynced book reaches the engine as an empty book, so the solver fits no liquidity
on it instead of trusting old prices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from solver.core.commands import BookUpdated
from solver.core.market import OrderBook
from solver.exchange import metrics
from solver.exchange.books import BookStatus, LocalBook
from solver.exchange.connector import BinanceConnector
from solver.plumbing.clock import now_ms

log = structlog.get_logger(__name__)


class MarketData:
    def __init__(self, connector: BinanceConnector, symbols: list[str],
                 max_age_ms: int = 10_000, depth: int = 100, snapshot_limit: int = 1000,
                 clock: Callable[[], int] | None = None) -> None:
        self.connector = connector
        self.books = {s: LocalBook(s) for s in symbols}
        self.max_age_ms = max_age_ms
        self.depth = depth
        self.snapshot_limit = snapshot_limit
        self.clock = clock or now_ms
        self._pending: set[asyncio.Task[None]] = set()
        self._sent: dict[str, int] = {}

    def views(self) -> dict[str, OrderBook]:
        """What the engine should believe now: each live book, or an empty one if stale."""
        return {symbol: self._view(symbol, v) for symbol, v in self._versions().items()}

    def book_updates(self) -> list[BookUpdated]:
        """``BookUpdated`` for each book whose view changed since the last call, so that
        the journal holds a book only when it moved and is about to be used."""
        now = self.clock()
        updates = []
        for symbol, version in self._versions().items():
            if self._sent.get(symbol) != version:
                self._sent[symbol] = version
                updates.append(BookUpdated(now, self._view(symbol, version)))
        return updates

    def moved(self) -> bool:
        """Whether a book changed since the engine was last given the books."""
        return any(self._sent.get(s) != v for s, v in self._versions().items())

    def _check_books(self) -> set[str]:
        """Ask for the snapshots the books need (e.g. a quiet market at start); the stale
        books, counted by the gauge."""
        now = self.clock()
        for book in self.books.values():
            if book.status == BookStatus.NEEDS_SNAPSHOT:
                self._request_snapshot(book)
        stale = {s for s, book in self.books.items() if book.is_stale(now, self.max_age_ms)}
        metrics.STALE_BOOKS.set(len(stale))
        return stale

    def _versions(self) -> dict[str, int]:
        """Per symbol, the version of the engine's view: the update id, or -1 for the empty
        view of a stale book."""
        stale = self._check_books()
        return {s: -1 if s in stale else book.last_update_id for s, book in self.books.items()}

    def _view(self, symbol: str, version: int) -> OrderBook:
        return OrderBook(symbol, ()) if version == -1 \
            else self.books[symbol].order_book(self.depth)

    @property
    def live(self) -> bool:
        now = self.clock()
        return all(not b.is_stale(now, self.max_age_ms) for b in self.books.values())

    async def run(self) -> None:
        """Follow the diff streams for ever (python-binance reconnects the socket; a gap that
        leaves is caught by the update ids). Every book is synced at once, not on its first
        diff or first use: a quiet market must still be quotable; a snapshot older than the
        first diffs is caught as a gap and taken again."""
        for unsynced in self.books.values():
            if unsynced.status == BookStatus.NEEDS_SNAPSHOT:
                self._request_snapshot(unsynced)
        async for diff in self.connector.depth_diffs(sorted(self.books)):
            book = self.books.get(diff.symbol)
            if book is None:
                continue
            resyncs = book.resyncs
            if book.on_diff(diff, self.clock()) == BookStatus.NEEDS_SNAPSHOT:
                if book.resyncs > resyncs:
                    metrics.BOOK_RESYNCS.labels(diff.symbol).inc()
                self._request_snapshot(book)

    def _request_snapshot(self, book: LocalBook) -> None:
        if book.status == BookStatus.SYNCING:  # one is on its way
            return
        book.snapshot_requested()
        task = asyncio.create_task(self._snapshot(book))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _snapshot(self, book: LocalBook) -> None:
        try:
            snapshot = await self.connector.depth(book.symbol, self.snapshot_limit)
            status = book.on_snapshot(snapshot, self.clock())
            log.info("book snapshot", symbol=book.symbol, update_id=snapshot.last_update_id,
                     status=status.value, resyncs=book.resyncs)
        except Exception as error:  # the next diff or planning round asks again
            book.status = BookStatus.NEEDS_SNAPSHOT
            log.warning("book snapshot failed", symbol=book.symbol, error=repr(error))
