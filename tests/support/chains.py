"""The two chains the chain adapter is tested on: the embedded one (py-evm through eth-tester,
in process) and anvil (the npm package pinned in package.json, installed by ``make test``,
started on a free loopback port). Each test gets a fresh chain; what differs between them
(mining on demand, reorganisations) is behind one small interface."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from eth_account import Account
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from chain.local_node import anvil
from chain.provider import node_provider

BACKENDS = ("embedded", "anvil")


def _anvil_keys() -> dict[str, str]:
    """anvil's accounts and their keys: its public development mnemonic's first ten."""
    Account.enable_unaudited_hdwallet_features()
    accounts = (Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{n}")
                for n in range(10))
    return {a.address: a.key.to_0x_hex() for a in accounts}


ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_KEYS = _anvil_keys()


class Chain(Protocol):
    w3: AsyncWeb3[Any]

    async def mine(self, blocks: int) -> None: ...

    async def automine(self, on: bool) -> None: ...

    async def advance(self, seconds: int) -> None:
        """Move the chain's clock forward (a block is mined)."""

    async def mark(self) -> Any:
        """A point to go back to (``undo``)."""

    async def undo(self, mark: Any) -> None:
        """The blocks since ``mark`` leave the chain, as in a reorganisation."""

    def key(self, address: str) -> str:
        """The private key of an account the node holds (they sign orders)."""


class Embedded:
    def __init__(self) -> None:
        self.w3: AsyncWeb3[Any] = AsyncWeb3(AsyncEthereumTesterProvider())
        self._tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]

    async def mine(self, blocks: int) -> None:
        self._tester.mine_blocks(blocks)

    async def automine(self, on: bool) -> None:
        if on:
            self._tester.enable_auto_mine_transactions()
        else:
            self._tester.disable_auto_mine_transactions()

    async def advance(self, seconds: int) -> None:
        latest = await self.w3.eth.get_block("latest")
        self._tester.time_travel(int(latest["timestamp"]) + seconds)

    async def mark(self) -> Any:
        return self._tester.take_snapshot()

    async def undo(self, mark: Any) -> None:
        self._tester.revert_to_snapshot(mark)

    def key(self, address: str) -> str:
        (found,) = [k for k in self._tester.backend.account_keys
                    if k.public_key.to_checksum_address() == address]
        return str(found.to_hex())


class Anvil:
    def __init__(self, url: str) -> None:
        self.w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(url))

    async def _rpc(self, method: str, *params: Any) -> Any:
        response = await self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    async def mine(self, blocks: int) -> None:
        await self._rpc("anvil_mine", hex(blocks))

    async def automine(self, on: bool) -> None:
        await self._rpc("evm_setAutomine", on)

    async def advance(self, seconds: int) -> None:
        await self._rpc("evm_increaseTime", seconds)
        await self._rpc("anvil_mine", "0x1")

    async def mark(self) -> Any:
        return await self.w3.eth.block_number

    async def undo(self, mark: Any) -> None:
        depth = await self.w3.eth.block_number - int(mark)
        if depth:
            await self._rpc("anvil_reorg", depth, [])  # the blocks replaced by empty ones

    def key(self, address: str) -> str:
        return ANVIL_KEYS[address]


@contextlib.asynccontextmanager
async def chain(backend: str) -> AsyncIterator[Chain]:
    if backend == "embedded":
        yield Embedded()
        return
    async with anvil_node() as node:
        yield node


@contextlib.asynccontextmanager
async def anvil_node(*options: str) -> AsyncIterator[Anvil]:
    """A fresh anvil (with ``options``) and a connection to it, closed on the way out: a
    connection left to the garbage collector logs from a finalizer at any moment, and in
    Python 3.11 one landing inside ``ast.parse`` (hypothesis reads its rules' source) fails
    it."""
    async with anvil(*options) as url:
        node = Anvil(url)
        try:
            yield node
        finally:
            await node.w3.provider.disconnect()
