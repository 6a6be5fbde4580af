"""The service on a chain: the vault watcher feeds deposits and withdrawals to the writer, the
settler turns mints into settlements, and every account's wallet is bound at start."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from chain.deploy import contract
from chain.deployment import ChainDeployment
from chain.provider import node_provider
from chain.reconciler import VaultReconciler
from chain.records import Records
from chain.settler import Settler, SettleSettings
from chain.watcher import VaultWatcher, WatchSettings
from solver.config.deployment import ChainSettings
from solver.config.fields import ConfigError
from solver.core.commands import BindWallet, VaultReadThrough
from solver.service.chain_memory import ChainMemory
from solver.service.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ChainLink:
    w3: AsyncWeb3[Any]
    deployment: ChainDeployment
    operator: LocalAccount = field(repr=False)
    wallets: Mapping[str, str]
    """account -> its wallet"""
    collateral: str = "USDC"
    collateral_decimals: int = 6
    watch: WatchSettings = field(default_factory=WatchSettings)
    settle: SettleSettings = field(default_factory=SettleSettings)


async def connect(settings: ChainSettings, wallets: Mapping[str, str],
                  collateral: str) -> ChainLink:
    """The chain a deployment file names: its node, its contracts, the operator's key from the
    environment. A ``ConfigError`` says what is wrong."""
    try:
        operator = operator_of(settings)
        deployment = ChainDeployment.load(settings.deployment)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"chain: {error}") from None
    except OSError as error:
        raise ConfigError(f"chain.deployment: {error}") from None
    w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(settings.rpc))
    if await w3.eth.chain_id != deployment.chain_id:
        raise ConfigError(f"chain.rpc: the node is chain {await w3.eth.chain_id}, the "
                          f"deployment file chain {deployment.chain_id}")
    token = contract(w3, "MockUSDC", deployment.collateral)  # any ERC-20's decimals()
    poll_s = settings.poll_ms / 1000
    return ChainLink(w3, deployment, operator, wallets, collateral,
                     int(await token.functions.decimals().call()),
                     WatchSettings(settings.confirmations, poll_s=poll_s),
                     SettleSettings(settings.confirmations, poll_s=poll_s,
                                    in_flight=settings.settlements_in_flight))


def operator_of(settings: ChainSettings) -> LocalAccount:
    """The operator's key: from the environment, or a keystore opened with the password the
    environment holds. Neither is ever logged."""
    secret = settings.secret()
    if settings.operator_keystore is None:
        account: LocalAccount = Account.from_key(secret)
        return account
    try:
        sealed = json.loads(settings.operator_keystore.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"chain.operator_keystore: {error}") from None
    try:
        opened: LocalAccount = Account.from_key(Account.decrypt(sealed, secret))
    except ValueError:
        raise ConfigError("chain.operator_keystore: the password does not open it") from None
    return opened


@dataclass(frozen=True)
class ChainAdapters:
    watcher: VaultWatcher
    settler: Settler
    reconciler: VaultReconciler


@contextlib.asynccontextmanager
async def chain_adapters(link: ChainLink, runtime: Runtime, records: Records,
                         memory: ChainMemory) -> AsyncIterator[ChainAdapters]:
    """The watcher, the settler and the reconciler, taking up what their projections
    (``memory``, following the bus since the start) hold."""
    vault = contract(link.w3, "CollateralVault", link.deployment.vault)
    watcher = VaultWatcher(link.w3, vault, link.collateral, link.collateral_decimals, records,
                           runtime.submit, runtime.clock, link.deployment.start_block,
                           link.watch)
    settler = Settler(link.w3, vault, link.deployment, link.operator, records, runtime.submit,
                      runtime.clock, runtime.engine.client_order_prefix,
                      link.collateral_decimals, memory.mints, link.settle)
    reconciler = VaultReconciler(link.w3, vault, link.collateral, link.collateral_decimals,
                                 link.wallets, watcher.journaled_through, memory.ledger_side,
                                 settler.unapplied)
    runtime.bus.observe(watcher)
    settler.attach(runtime.bus)
    reconciler.attach(runtime.bus)
    settler.after_confirmed = reconciler.after_settlement
    for account, wallet in sorted(link.wallets.items()):
        runtime.submit(BindWallet(runtime.clock(), wallet, account))
    tasks = [asyncio.create_task(_watch(watcher, runtime)),
             asyncio.create_task(settler.run())]
    try:
        yield ChainAdapters(watcher, settler, reconciler)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _watch(watcher: VaultWatcher, runtime: Runtime) -> None:
    """Catch up with the chain (the engine says so to an order refused for collateral
    meanwhile), then follow it."""
    while True:
        try:
            block = await watcher.catch_up()
            break
        except Exception:  # the node away: try again
            log.exception("chain catch-up failed: trying again")
            await asyncio.sleep(watcher.settings.poll_s)
    log.info("chain deposits read up to the head", block=block)
    runtime.submit(VaultReadThrough(runtime.clock(), block))
    await watcher.run()
