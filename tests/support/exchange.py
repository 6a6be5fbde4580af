"""A mock Binance on a free loopback port (``mocks.binance.local``), and python-binance and
connector clients for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from mocks.binance.local import KEY
from mocks.binance.server import MockBinance
from solver.exchange.connector import BinanceConnector, stop_reading
from solver.exchange.endpoints import client_class, local


@contextlib.asynccontextmanager
async def binance_client(server: MockBinance, secret: str | None = None) -> AsyncIterator[Any]:
    """Stock python-binance ``AsyncClient`` pointed at the mock."""
    client = await client_class(local(server.port)).create(KEY.key, secret or KEY.secret)
    try:
        yield client
    finally:
        await stop_reading(client.ws_api)
        await client.close_connection()


@contextlib.asynccontextmanager
async def connector(server: MockBinance, timeout_s: float = 2) -> AsyncIterator[BinanceConnector]:
    conn = BinanceConnector(local(server.port), KEY, request_timeout_s=timeout_s)
    await conn.start()
    try:
        yield conn
    finally:
        await conn.close()


async def until(condition: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Wait for ``condition`` with a bound; fail with ``what`` if it never holds."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


def run(coroutine: Awaitable[Any], timeout: float = 60) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, timeout)
    return asyncio.run(bounded())
