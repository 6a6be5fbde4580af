"""anvil, the local Ethereum node (npm ``@foundry-rs/anvil``, pinned in ``package.json`` and
installed by ``make test``), started on a free loopback port: for the tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent
LISTENING = re.compile(r"Listening on (127\.0\.0\.1:\d+)")


def anvil_binary() -> Path:
    found = sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError("anvil is not installed: `make test` installs it (npm ci)")
    return found[0]


@contextlib.asynccontextmanager
async def anvil(*options: str) -> AsyncIterator[str]:
    """A fresh anvil on 127.0.0.1 (with ``options``, such as ``--prune-history 16``); its URL
    while the block runs."""
    process = await asyncio.create_subprocess_exec(
        str(anvil_binary()), "--host", "127.0.0.1", "--port", "0", *options,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    draining: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(_listening(process.stdout), 30)
        draining = asyncio.create_task(_drain(process.stdout))  # a full pipe would stop it
        yield url
    finally:
        process.terminate()
        await process.wait()
        if draining is not None:
            draining.cancel()


@contextlib.contextmanager
def anvil_process(*options: str) -> Iterator[str]:
    """``anvil`` for code without an event loop (web3's synchronous ``Web3``)."""
    process = subprocess.Popen(
        [str(anvil_binary()), "--host", "127.0.0.1", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        found = next(filter(None, map(LISTENING.search, process.stdout)), None)
        if found is None:
            raise RuntimeError("anvil exited before listening")
        # a full pipe would stop it
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield f"http://{found[1]}"
    finally:
        process.terminate()
        process.wait()


async def _drain(stdout: asyncio.StreamReader) -> None:
    while await stdout.read(65536):
        pass


async def _listening(stdout: asyncio.StreamReader) -> str:
    while line := (await stdout.readline()).decode():
        found = LISTENING.search(line)
        if found:
            return f"http://{found[1]}"
    raise RuntimeError("anvil exited before listening")
