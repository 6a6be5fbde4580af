"""The two chains the chain adapter is tested on: the embedded one (py-evm through eth-tester,
in process) and anvil (the npm package pinned in package.json, installed by ``make test``,
started on a free loopback port). Each test gets a fresh chain; what differs between them
(mining on demand, reorganisations) is behind one small interface."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

ROOT = Path(__file__).parent.parent.parent
BACKENDS = ("embedded", "anvil")


class Chain(Protocol):
    w3: AsyncWeb3[Any]

    async def mine(self, blocks: int) -> None: ...

    async def automine(self, on: bool) -> None: ...

    async def mark(self) -> Any:
        """A point to go back to (``undo``)."""

    async def undo(self, mark: Any) -> None:
        """The blocks since ``mark`` leave the chain, as in a reorganisation."""


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

    async def mark(self) -> Any:
        return self._tester.take_snapshot()

    async def undo(self, mark: Any) -> None:
        self._tester.revert_to_snapshot(mark)


class Anvil:
    def __init__(self, url: str) -> None:
        self.w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(url))

    async def _rpc(self, method: str, *params: Any) -> Any:
        response = await self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    async def mine(self, blocks: int) -> None:
        await self._rpc("anvil_mine", hex(blocks))

    async def automine(self, on: bool) -> None:
        await self._rpc("evm_setAutomine", on)

    async def mark(self) -> Any:
        return await self.w3.eth.block_number

    async def undo(self, mark: Any) -> None:
        depth = await self.w3.eth.block_number - int(mark)
        if depth:
            await self._rpc("anvil_reorg", depth, [])  # the blocks replaced by empty ones


def anvil_binary() -> Path:
    found = sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError("anvil is not installed: `make test` installs it (npm ci)")
    return found[0]


@contextlib.asynccontextmanager
async def chain(backend: str) -> AsyncIterator[Chain]:
    if backend == "embedded":
        yield Embedded()
        return
    process = await asyncio.create_subprocess_exec(
        str(anvil_binary()), "--host", "127.0.0.1", "--port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    draining: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(_listening(process.stdout), 30)
        draining = asyncio.create_task(_drain(process.stdout))  # a full pipe would stop it
        anvil = Anvil(url)
        try:
            yield anvil
        finally:
            await anvil.w3.provider.disconnect()
    finally:
        process.terminate()
        await process.wait()
        if draining is not None:
            draining.cancel()


async def _drain(stdout: asyncio.StreamReader) -> None:
    while await stdout.read(65536):
        pass


async def _listening(stdout: asyncio.StreamReader) -> str:
    while line := (await stdout.readline()).decode():
        found = re.search(r"Listening on (127\.0\.0\.1:\d+)", line)
        if found:
            return f"http://{found[1]}"
    raise RuntimeError("anvil exited before listening")
