"""The service as an operator runs it, for the tests that need the real process: the
contracts on anvil with the users' deposits in the vault, the mock Binance, a deployment file
made from the example, and ``index-solver run`` as a subprocess (killed, restarted, stopped by
a signal)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix

from chain.deploy import contract, deploy_local, transact
from mocks.binance.local import KEY, mock_server, running
from mocks.binance.server import MockBinance
from mocks.fix_client import FixClient, SessionConfig, messages
from mocks.fix_client.wallet import Vault, Wallet
from mocks.ports import free_port
from solver.core import events as ev
from solver.core.commands import ExpireIndexOrder
from solver.core.orders import OrderStatus
from solver.journal.store import Journal
from tests.support.chains import Anvil, chain
from tests.support.service import _HASHES, GATEWAY, PASSWORDS

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "deployment" / "local.toml"
ALICES_EVENTS = (ev.IndexOrderAccepted, ev.IndexOrderRejected, ev.IndexOrderFilled,
                 ev.IndexOrderCompleted,
                 ev.IndexOrderMinted, ev.CollateralDeposited, ev.CollateralReleased,
                 ev.IndexOrderEndPending, ev.CancelRejected)


DEPOSITS = {"alice": 20_000, "bob": 3_000}
"""Alice's is enough for 300 orders of the minimum size."""
WALLET_KEYS = {
    "alice": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "bob": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdd443a6",
}
"""anvil's public development keys of its accounts 1 and 2: alice's and bob's wallets here."""
DEADLINE = datetime.now(UTC) + timedelta(days=1)
"""Every order's signed deadline in a run: an order sent again is signed alike."""
MARKET_LIMIT = Decimal(1100)
"""What a market-like order signs per unit of SY2, fees included (it costs about 1,000)."""


def signed_order(tmp: Path, account: str, cl_ord_id: str, cash: Decimal,
                 limit: Decimal = MARKET_LIMIT) -> simplefix.FixMessage:
    """``account``'s NewOrderSingle for SY2, signed by its wallet for the contracts of
    ``tmp``/chain.json (``on_chain``)."""
    chain = json.loads((tmp / "chain.json").read_text())
    vault = Vault(chain["chain_id"], chain["vault"], chain["index_tokens"])
    signed = Wallet(WALLET_KEYS[account], vault).sign(cl_ord_id, "SY2", cash, limit, DEADLINE,
                                                      50)
    return messages.new_order(cl_ord_id, "SY2", cash, signed=signed)


async def on_chain(tmp: Path, node: Anvil) -> tuple[dict[str, Any], dict[str, str], str]:
    """The contracts on ``node``, each account's deposit in the vault from its wallet: the
    deployment's [chain] section, the wallets, and the operator's key."""
    w3 = node.w3
    owner, *spare = await w3.eth.accounts
    wallets = dict(zip(PASSWORDS, spare, strict=False))
    deployment, operator = await deploy_local(
        w3, owner, owner, 3600, {"SY2": "Two assets"})
    deployment.save(tmp / "chain.json")
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    for account, amount in DEPOSITS.items():
        wallet = wallets[account]
        await transact(w3, wallet, usdc.functions.mint(wallet, amount * 10**6))
        await transact(w3, wallet, usdc.functions.approve(vault.address, amount * 10**6))
        await transact(w3, wallet, vault.functions.deposit(amount * 10**6, 0))
    section = {"rpc": str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
               "deployment": str(tmp / "chain.json"), "operator_key_env": "CHAIN_OPERATOR_KEY",
               "confirmations": 0, "poll_ms": 50}
    return section, wallets, operator.key.hex()


def write_config(tmp: Path, fix_port: int, exchange_port: int, chain_section: dict[str, Any],
                 wallets: dict[str, str], **sections: dict[str, Any]) -> Path:
    """The example deployment on these ports and this chain, with these accounts (and any
    other ``sections``; ``service`` adds to the service's keys), its state in ``tmp``."""
    deployment = tomllib.loads(EXAMPLE.read_text())
    deployment["solver"]["indexes"] = [str(EXAMPLE.parent / i)
                                       for i in deployment["solver"]["indexes"]]
    deployment["service"] = {"journal": "journal.db", "exchange": f"local:{exchange_port}",
                             **sections.pop("service", {})}
    deployment["fix"] = {"port": fix_port, "comp_id": GATEWAY, "store": "fix-store"}
    deployment["accounts"] = {name: {"comp_id": name.upper(), "password_hash": _HASHES[name],
                                     "wallet": wallets[name]} for name in PASSWORDS}
    deployment["chain"] = chain_section
    for optional in ("admin", "metrics"):  # the example's ports may be taken here
        deployment.pop(optional, None)
    deployment.update(sections)
    path = tmp / "deployment.json"
    path.write_text(json.dumps(deployment))
    return path


@contextlib.contextmanager
def gateway_process(config: Path, log: Path, operator_key: str,
                    **env_vars: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "BINANCE_API_KEY": KEY.key, "BINANCE_API_SECRET": KEY.secret,
           "CHAIN_OPERATOR_KEY": operator_key, **env_vars}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "solver.cli", "run", "--config",
                                    str(config)], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def wait_accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"gateway exited: {log.read_text()[-3000:]}")
        if await accepting(port):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("gateway never accepted connections")


def alice_client(tmp: Path, fix_port: int) -> FixClient:
    """Alice's client, its sequence numbers kept across connections and gateway restarts."""
    return FixClient(SessionConfig("127.0.0.1", fix_port, "ALICE", GATEWAY, "ALICE",
                                   PASSWORDS["alice"], store_dir=tmp / "client"))


def journaled_fills(journal: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT events FROM transactions").fetchall()
    return sum(e.count('"IndexOrderFilled"') for (e,) in rows)


def expected_seqs(journal_path: Path, account: str) -> Counter[int]:
    """Per event that concerns ``account``'s orders or collateral, its sequence number."""
    with Journal.open(journal_path) as journal:
        transactions = list(journal.transactions())
    ours = {e.order_id for t in transactions for e in t.of_type(ev.IndexOrderAccepted)
            if e.account == account}
    seqs: Counter[int] = Counter()
    for transaction in transactions:
        filled_now = {f.order_id for f in transaction.of_type(ev.IndexOrderFilled)}
        for envelope in transaction.events:
            event = envelope.event
            if not isinstance(event, ALICES_EVENTS):
                continue
            if isinstance(event, ev.IndexOrderCompleted) and event.order_id in filled_now \
                    and event.status is OrderStatus.FILLED:
                continue  # its last fill reported it (a cancel is reported on its own)
            if isinstance(event, ev.IndexOrderEndPending) and not event.request_id:
                continue  # an expiry waiting for its batch: nothing to report yet
            if isinstance(event, ev.CancelRejected) and isinstance(
                    transaction.input, ExpireIndexOrder):
                continue  # the operator's: not the client's to hear of
            if getattr(event, "account", None) == account or getattr(
                    event, "order_id", None) in ours:
                seqs[envelope.seq] += 1
    return seqs



@dataclass
class OnAnvil:
    """The mock Binance and anvil with the contracts and deposits, for a service subprocess."""

    tmp: Path
    server: MockBinance
    node: Anvil
    section: dict[str, Any]
    """The deployment file's [chain] section."""
    wallets: dict[str, str]
    key: str
    """The operator's private key."""
    fix_port: int
    log: Path

    def config(self, **sections: dict[str, Any]) -> Path:
        return write_config(self.tmp, self.fix_port, self.server.port, self.section,
                            self.wallets, **sections)

    @contextlib.contextmanager
    def process(self, config: Path, **env_vars: str) -> Iterator[subprocess.Popen[bytes]]:
        with gateway_process(config, self.log, self.key, **env_vars) as process:
            yield process

    async def accepting(self, process: subprocess.Popen[bytes]) -> None:
        await wait_accepting(self.fix_port, process, self.log)


@contextlib.asynccontextmanager
async def on_anvil(tmp: Path, step_ms: int = 100) -> AsyncIterator[OnAnvil]:
    async with running(mock_server(step_ms=step_ms)) as server, chain("anvil") as node:
        assert isinstance(node, Anvil)
        section, wallets, key = await on_chain(tmp, node)
        yield OnAnvil(tmp, server, node, section, wallets, key, free_port(),
                      tmp / "service.log")
