"""The connection to a node survives what stops web3's own: a request cancelled while it waits
for web3's process-wide session lock leaves the lock held for good (web3.py issue 3867), and
every request of a stock provider in the process then waits for ever."""

from __future__ import annotations

import asyncio

from web3._utils.http_session_manager import HTTPSessionManager

from tests.support.chains import anvil_node
from tests.support.exchange import run


def test_requests_go_through_while_web3s_shared_lock_is_held_for_good() -> None:
    async def scenario() -> None:
        async with anvil_node() as node:
            poisoned = HTTPSessionManager._lock
            poisoned.acquire()  # as a cancelled request leaves it
            try:
                async with asyncio.timeout(10):
                    assert await node.w3.eth.chain_id == 31337
                    assert await node.w3.eth.block_number >= 0
            finally:
                poisoned.release()
    run(scenario(), 60)
