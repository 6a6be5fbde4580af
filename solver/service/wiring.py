"""The one place where the service is assembled, and stopped in the order that matters.

``running_service`` builds the journal (or none), the engine (the journal's replay, or a fresh
one from the setup), the exchange connector, the runtime, the mint adapter and the FIX gateway;
starts them; and on the way out stops the gateway first (so the writer journals every message
it took), then the runtime (whose in-flight sends finish and are journaled), then closes the
connector and the journal. The gateway command, the demo, the tests and the benchmarks all use
it; ``solver/service/run.py`` runs it as ``index-solver run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from chain.records import MemoryRecords
from fix_gateway.config import FixSettings
from fix_gateway.gateway import Gateway
from solver.core.bus import EventBus
from solver.core.events import Transaction
from solver.core.setup import EngineSetup
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, Endpoints
from solver.journal.replay import rebuild
from solver.journal.store import Journal
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
    node is reached, and what the writer publishes meanwhile reaches the adapters with the
    journal's history (``Past``)."""
    journal = None if journal_path is None else open_journal(journal_path, setup)
    engine = setup.build() if journal is None else rebuild(journal).engine
    connector = BinanceConnector(endpoints, key)
    try:
        await connector.start()
        runtime = Runtime(engine, connector, journal, settings)
        gateway = Gateway(fix, runtime)
        gateway.start()
        async with contextlib.AsyncExitStack() as on_chain:
            operations, positions = views(runtime)
            past = Past(runtime.history(), runtime.bus)
            serving = asyncio.create_task(runtime.run())
            try:
                adapters = None
                if chain is not None:
                    # web3 loads on a thread of its own: the writer answers orders meanwhile
                    await asyncio.to_thread(importlib.import_module,
                                            "solver.service.chain_link")
                    from solver.service.chain_link import chain_adapters

                    link = await chain if inspect.isawaitable(chain) else chain
                    adapters = await on_chain.enter_async_context(
                        chain_adapters(link, runtime, journal or MemoryRecords(), past))
                past.close()
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


class Past:
    """The journal's history, then every transaction published until it is taken: what an
    adapter attached after the writer started must learn before it follows the bus."""

    def __init__(self, history: list[Transaction], bus: EventBus) -> None:
        self._transactions: list[Transaction] | None = list(history)
        bus.observe(self)

    def take(self) -> list[Transaction]:
        """Everything so far; from now on the taker follows the bus itself (take it and
        subscribe without yielding to the loop in between)."""
        taken, self._transactions = self._transactions or [], []
        return taken

    def close(self) -> None:
        self._transactions = None

    def transaction_began(self, transaction: Transaction) -> None:
        pass

    def transaction_ended(self, transaction: Transaction) -> None:
        if self._transactions is not None:
            self._transactions.append(transaction)


def views(runtime: Runtime) -> tuple[OperationsStore, PositionStore]:
    """The operator's views, filled from the journal's history (one pass), then following
    the bus."""
    operations, positions = OperationsStore(), PositionStore(runtime.engine.indexes)
    past = EventBus()
    for bus in (past, runtime.bus):
        bus.observe(operations)
        positions.attach(bus)
    for transaction in runtime.history():
        past.publish(transaction)
    return operations, positions


def open_journal(path: Path, setup: EngineSetup) -> Journal:
    if path.exists():
        return Journal.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Journal.create(path, setup)
