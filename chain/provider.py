"""The connection to a node: web3's ``AsyncHTTPProvider``, its session kept without web3's
process-wide lock.

web3 (8.0.0) takes one ``threading.Lock``, shared by every provider in the process, on every
request, acquiring it on a worker thread. A request cancelled while it waits for the lock (a
timeout, a task stopped at shutdown) releases the lock under its holder, and the worker
thread then takes it for good: every later request in the process waits for ever, and the
process cannot exit, since that thread never finishes (web3.py issue 3867, open). The
service cancels requests on every stop and timeout, so here each provider keeps its event
loop's session itself: a dictionary read, with no lock, on the loop's own thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from eth_typing import URI
from web3 import AsyncHTTPProvider
from web3._utils.http_session_manager import HTTPSessionManager


class _LoopSessions(HTTPSessionManager):
    """One session per event loop, made on its first request, as web3 makes it."""

    async def async_cache_and_return_session(
            self, endpoint_uri: URI, session: ClientSession | None = None,
            request_timeout: ClientTimeout | None = None) -> ClientSession:
        key = f"{id(asyncio.get_running_loop())}:{endpoint_uri}"
        cached: ClientSession | None = self.session_cache.get_cache_entry(key)
        if cached is None or cached.closed:
            cached = session or ClientSession(
                raise_for_status=True,
                connector=TCPConnector(force_close=True, enable_cleanup_closed=True))
            self.session_cache.cache(key, cached)
        return cached


def node_provider(url: str, request_kwargs: dict[str, Any] | None = None) -> AsyncHTTPProvider:
    """A provider for the node at ``url`` that no cancelled request can stop."""
    provider = AsyncHTTPProvider(url, request_kwargs)
    provider._request_session_manager = _LoopSessions()
    return provider
