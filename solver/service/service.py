"""The one place where the service is assembled, and stopped in the order that matters.

``running_service`` builds the journal (or none), the engine (the journal's replay, or a fresh
one from the setup), the exchange connector, the runtime, the mint adapter and the FIX gateway;
starts them; and on the way out stops the gateway first (so the writer journals every message
it took), then the runtime (whose in-flight sends finish and are journaled), then closes the
connector and the journal. The gateway command, the demo, the tests and the benchmarks all use
it; ``solver/service/process.py`` runs it as ``index-solver run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from chain.ledger_side import LedgerSide
from chain.mints import MintsWaiting
from chain.records import MemoryRecords
from fix_gateway.account_view import AccountView
from fix_gateway.config import FixSettings
from fix_gateway.gateway import Gateway
from solver.config.fields import ConfigError
from solver.core.bus import TransactionObserver
from solver.core.commands import VaultReadingStarted
from solver.core.model import Index
from solver.core.setup import EngineSetup
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, Endpoints
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.chain_memory import ChainMemory
from solver.service.runtime import Runtime, RuntimeSettings
from solver.views.operations import OperationsStore
from solver.views.positions import PositionStore

if TYPE_CHECKING:  # web3 loads with the chain adapters, once the writer runs
    from solver.service.chain_link import ChainAdapters, ChainLink

log = structlog.get_logger(__name__)


LOGOUT_WAIT_S = 2


@dataclass(frozen=True, slots=True)
class Service:
    runtime: Runtime
    gateway: Gateway
    journal: Journal | None
    operations: OperationsStore
    positions: PositionStore
    serving: asyncio.Task[None]
    """The runtime's task: it ends only when the service stops, or fails."""
    chain: ChainAdapters | None = None

    def quiet(self) -> bool:
        """No input waiting for the writer, no plan on its way, no batch in flight, nothing
        being settled or released on the chain."""
        planner = self.runtime.planner
        return (self.runtime.inbox.empty() and not planner.asking and not planner.in_flight
                and (self.chain is None or self.chain.settler.idle))

    async def wind_down(self, grace_s: float) -> None:
        """The graceful half of a stop: refuse new orders, let the batches in flight and the
        settlements finish (for at most ``grace_s``), then log the FIX sessions out. Orders
        waiting for a batch stay open, and what is still in flight after the grace resumes,
        at the next start."""
        self.gateway.close_to_new_orders()
        self.runtime.planner.hold()
        log.info("stopping: new orders refused; waiting for the work in flight",
                 grace_s=grace_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while not self.quiet() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if not self.quiet():
            log.warning("stopping with work in flight; it resumes at the next start",
                        batches=sorted(self.runtime.planner.in_flight))
        unanswered = await self.gateway.log_out("the service is shutting down", LOGOUT_WAIT_S)
        log.info("FIX sessions logged out", unanswered=unanswered)


@contextlib.asynccontextmanager
async def running_service(setup: EngineSetup, fix: FixSettings, endpoints: Endpoints,
                          key: ApiKey, journal_path: Path | None = None,
                          settings: RuntimeSettings | None = None,
                          chain: ChainLink | Awaitable[ChainLink] | None = None,
                          ) -> AsyncIterator[Service]:
    """The service, serving until the block ends. ``journal_path``: the journal to resume
    (created from ``setup`` if missing); without one nothing is kept. ``chain``: deposits,
    withdrawals and settlements on that chain, or what connects to it; without it nothing is
    deposited or minted (tests attach their own doubles: ``instant_mint``).

    The writer starts before the chain adapters: orders are answered while web3 loads and the
    node is reached; what the adapters must remember of the events follows the bus from the
    start (``ChainMemory``). On a chain every order must be signed (``fix.signing``): the
    vault settles nothing else."""
    if chain is not None and (fix.signing is None or not fix.signing.required):
        if inspect.iscoroutine(chain):
            chain.close()
        raise ConfigError("fix.signing: on a chain every order must be signed, since the "
                          "vault settles only what a wallet signed")
    journal = None if journal_path is None else open_journal(journal_path, setup)
    rebuilt = None if journal is None else rebuild(journal, keep=True)  # the tail, for views
    connector = BinanceConnector(endpoints, key)
    try:
        await connector.start()
        runtime = Runtime(setup.build() if rebuilt is None else rebuilt.engine, connector,
                          journal, settings,
                          checkpoint=None if rebuilt is None else rebuilt.checkpoint)
        if chain is not None:  # until the watcher has read to the head, refusals say so
            runtime.submit(VaultReadingStarted(runtime.clock()))
        gateway = Gateway(fix, runtime)
        gateway.start()
        async with contextlib.AsyncExitStack() as on_chain:
            operations, positions = views(runtime)
            memory = None if chain is None else ChainMemory.resumed(runtime)
            serving = asyncio.create_task(runtime.run())
            try:
                adapters = None
                if chain is not None:
                    # web3 loads on a thread of its own: the writer answers orders meanwhile
                    await asyncio.to_thread(importlib.import_module,
                                            "solver.service.chain_link")
                    from solver.service.chain_link import chain_adapters

                    link = await chain if inspect.isawaitable(chain) else chain
                    assert memory is not None
                    adapters = await on_chain.enter_async_context(
                        chain_adapters(link, runtime, journal or MemoryRecords(), memory))
                yield Service(runtime, gateway, journal, operations, positions, serving,
                              adapters)
            finally:
                await gateway.stop()  # first: the writer journals what the gateway took
                runtime.stop()
                await serving
    finally:
        await connector.close()
        if journal is not None:
            journal.close()


def projections(indexes: Mapping[str, Index]) -> dict[str, Callable[[], TransactionObserver]]:
    """Every memory of the events the service keeps (its views' and adapters'), by the name it
    is checkpointed under with the engine's snapshots: each is new, or resumed
    (``Runtime.resume``)."""
    return {AccountView.NAME: AccountView, OperationsStore.NAME: OperationsStore,
            PositionStore.NAME: lambda: PositionStore(indexes),
            MintsWaiting.NAME: MintsWaiting, LedgerSide.NAME: LedgerSide}


def views(runtime: Runtime) -> tuple[OperationsStore, PositionStore]:
    """The operator's views as of the journal's last transaction, then following the bus."""
    indexes = runtime.engine.indexes
    return (runtime.resume(OperationsStore.NAME, OperationsStore),
            runtime.resume(PositionStore.NAME, lambda: PositionStore(indexes)))


def open_journal(path: Path, setup: EngineSetup) -> Journal:
    if path.exists():
        return Journal.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Journal.create(path, setup)
