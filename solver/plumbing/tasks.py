"""Waiting and stopping asyncio tasks robustly (python-binance can swallow a cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` was set within ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel until done: a ``wait_for`` racing its own result can lose one cancellation."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.5)
