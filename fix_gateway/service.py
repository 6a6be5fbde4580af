"""``index-solver gateway``: the solver as a FIX service.

The journal is opened (or created from the setup file), the engine rebuilt from it, the
exchange connected, the FIX acceptor opened; reports the journal holds beyond what each
session's store shows as sent go out first. Until the chain adapter lands, the setup file's
deposits are credited on start (once: each has a fixed deposit id) and mints are confirmed at
once by a stand-in. SIGINT or SIGTERM stops it cleanly; SIGKILL loses nothing either.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from fix_gateway.config import GatewayConfig, ServiceSettings
from fix_gateway.gateway import Gateway
from solver.core.commands import DepositConfirmed
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import PRODUCTION, TESTNET, ApiKey, Endpoints, local
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.instant_mint import InstantMint
from solver.service.runtime import Runtime, RuntimeSettings
from solver.simulation.run import setup_of
from solver.simulation.scenario import Scenario, load_scenario

log = structlog.get_logger(__name__)


async def serve(config: GatewayConfig, stop: asyncio.Event | None = None) -> None:
    service = config.service
    if service is None:
        raise ValueError("the config needs a [service] section to run the gateway")
    stop = stop or _stop_on_signals()
    scenario = load_scenario(service.setup)
    journal = _journal(service.journal, scenario)
    engine = rebuild(journal).engine
    connector = BinanceConnector(endpoints_of(service), ApiKey.from_env())
    await connector.start()
    runtime = Runtime(engine, connector, journal, RuntimeSettings(plan_every_ms=200))
    InstantMint(runtime.bus, runtime.submit, runtime.clock)
    gateway = Gateway(config.fix, runtime)
    try:
        gateway.start()
        for n, (account, asset, amount) in enumerate(scenario.deposits):
            runtime.submit(DepositConfirmed(runtime.clock(), f"setup-deposit-{n}", account,
                                            asset, amount))
        serving = asyncio.create_task(runtime.run())
        await stop.wait()
        await gateway.stop()  # first, so that the writer journals what the gateway took
        runtime.stop()
        await serving
    finally:
        await gateway.stop()
        await connector.close()
        journal.close()


def endpoints_of(service: ServiceSettings) -> Endpoints:
    if service.exchange.startswith("local:"):
        return local(int(service.exchange.removeprefix("local:")))
    return TESTNET if service.exchange == "testnet" else PRODUCTION


def _journal(path: Path, scenario: Scenario) -> Journal:
    if path.exists():
        return Journal.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Journal.create(path, setup_of(scenario))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
