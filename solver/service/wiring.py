"""The one place where the service is assembled, and stopped in the order that matters.

``running_service`` builds the journal (or none), the engine (the journal's replay, or a fresh
one from the setup), the exchange connector, the runtime, the mint adapter and the FIX gateway;
starts them; and on the way out stops the gateway first (so the writer journals every message
it took), then the runtime (whose in-flight sends finish and are journaled), then closes the
connector and the journal. The gateway command, the demo, the tests and the benchmarks all use
it. ``serve`` is ``index-solver run``: a deployment file's service until SIGINT or SIGTERM,
then a graceful stop (``Service.wind_down``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from chain.records import MemoryRecords
from fix_gateway.config import FixSettings
from fix_gateway.gateway import Gateway
from solver.config.deployment import Deployment, ServiceSettings
from solver.config.fields import ConfigError
from solver.core.setup import EngineSetup
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import PRODUCTION, TESTNET, ApiKey, Endpoints, local
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.chain_link import ChainAdapters, ChainLink, chain_adapters, connect
from solver.service.runtime import Runtime, RuntimeSettings

log = structlog.get_logger(__name__)


LOGOUT_WAIT_S = 2


@dataclass(frozen=True, slots=True)
class Service:
    runtime: Runtime
    gateway: Gateway
    journal: Journal | None
    chain: ChainAdapters | None = None

    def quiet(self) -> bool:
        """No batch in flight, nothing being settled or released on the chain."""
        return not self.runtime.planner.in_flight and (
            self.chain is None or self.chain.settler.idle)

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
                          chain: ChainLink | None = None) -> AsyncIterator[Service]:
    """The service, serving until the block ends. ``journal_path``: the journal to resume
    (created from ``setup`` if missing); without one nothing is kept. ``chain``: deposits,
    withdrawals and settlements on that chain; without it nothing is deposited or minted
    (tests attach their own doubles: ``instant_mint``)."""
    journal = None if journal_path is None else open_journal(journal_path, setup)
    engine = setup.build() if journal is None else rebuild(journal).engine
    connector = BinanceConnector(endpoints, key)
    try:
        await connector.start()
        runtime = Runtime(engine, connector, journal, settings)
        gateway = Gateway(fix, runtime)
        gateway.start()
        async with contextlib.AsyncExitStack() as on_chain:
            adapters = None
            if chain is not None:
                adapters = await on_chain.enter_async_context(
                    chain_adapters(chain, runtime, journal or MemoryRecords()))
            serving = asyncio.create_task(runtime.run())
            try:
                yield Service(runtime, gateway, journal, adapters)
            finally:
                await gateway.stop()  # first: the writer journals what the gateway took
                runtime.stop()
                await serving
    finally:
        await connector.close()
        if journal is not None:
            journal.close()


def open_journal(path: Path, setup: EngineSetup) -> Journal:
    if path.exists():
        return Journal.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Journal.create(path, setup)


async def serve(deployment: Deployment, stop: asyncio.Event | None = None) -> None:
    """The deployment's service until ``stop`` is set (by SIGINT or SIGTERM if not given)."""
    stop = stop or _stop_on_signals()
    if deployment.chain is None:
        raise ConfigError("chain: the service needs a [chain] section: deposits come from the "
                          "vault and every mint is a settlement (docs/chain.md)")
    collateral = deployment.setup.indexes[0].collateral
    chain = await connect(deployment.chain, dict(deployment.wallets), collateral)
    service = deployment.service
    settings = RuntimeSettings(plan_every_ms=service.plan_every_ms, gather_ms=service.gather_ms)
    async with running_service(deployment.setup, deployment.fix, endpoints_of(service),
                               ApiKey.from_env(), service.journal, settings, chain) as running:
        log.info("serving", fix_port=deployment.fix.port, exchange=service.exchange)
        await stop.wait()
        await running.wind_down(service.shutdown_grace_s)


def endpoints_of(service: ServiceSettings) -> Endpoints:
    if service.exchange.startswith("local:"):
        return local(int(service.exchange.removeprefix("local:")))
    return TESTNET if service.exchange == "testnet" else PRODUCTION


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
