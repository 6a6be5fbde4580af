"""``index-solver run``: a deployment's service until SIGINT or SIGTERM, then a graceful stop.

Everything the config names is checked before anything starts (a ``ConfigError`` names the
key); then the chain is connected, the service started (``running_service``), the operator's
endpoint and the metrics served if configured, and the time the start took recorded
(``solver_recovery_seconds``). On a signal: ``Service.wind_down`` (new orders refused, the
work in flight finished within ``service.shutdown_grace_s``, the FIX sessions logged out),
then the service stops in the order ``running_service`` keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import ClientError

from chain.deployment import ChainDeployment
from solver.config.deployment import AdminSettings, Deployment, ServiceSettings
from solver.config.fields import ConfigError
from solver.exchange.endpoints import PRODUCTION, TESTNET, ApiKey, Endpoints, local
from solver.service.admin import AdminEndpoint
from solver.service.metrics import RECOVERY_S, MetricsEndpoint
from solver.service.order_signing import order_signing
from solver.service.runtime import ExchangeMismatch, RuntimeSettings
from solver.service.service import Service, running_service

if TYPE_CHECKING:
    from solver.service.chain_link import ChainLink

log = structlog.get_logger(__name__)

MIN_TOKEN_LENGTH = 16


class CannotStart(Exception):
    """A part the deployment names cannot be reached, or does not match it; the message
    says which, without the node's URL (it may carry a provider's key)."""


async def serve(deployment: Deployment, stop: asyncio.Event | None = None) -> None:
    """The deployment's service until ``stop`` is set (by SIGINT or SIGTERM if not given).
    Raises ``CannotStart`` when a part cannot be reached or does not match."""
    try:
        reason = await _serve(deployment, stop)
    except (OSError, ExchangeMismatch, ClientError, TimeoutError) as error:
        text = f"{type(error).__name__}: {error}"
        if deployment.chain is not None:
            text = text.replace(deployment.chain.rpc, deployment.chain.node)
        log.error("stopped", reason=f"cannot start: {text}")
        raise CannotStart(text) from None
    except BaseException as error:
        log.error("stopped", reason=f"{type(error).__name__}: {error}")
        raise
    log.info("stopped", reason=reason)


async def _serve(deployment: Deployment, stop: asyncio.Event | None) -> str:
    """Serve until stopped; why it stopped."""
    started = time.monotonic()
    signalled: list[str] = []
    stop = stop or _stop_on_signals(signalled)
    if deployment.chain is None:
        raise ConfigError("chain: the service needs a [chain] section: deposits come from the "
                          "vault and every mint is a settlement (docs/chain.md)")
    token = None if deployment.admin is None else admin_token(deployment.admin)
    key = ApiKey.from_env()
    deployment.chain.secret()  # checked before anything starts; web3 loads once it runs
    if not deployment.chain.deployment.is_file():
        raise ConfigError(f"chain.deployment: {deployment.chain.deployment} is not a file "
                          "(index-solver chain deploy --out writes it)")
    fix = replace(deployment.fix, signing=order_signing(
        ChainDeployment.load(deployment.chain.deployment), deployment.setup,
        deployment.wallets))
    service = deployment.service
    settings = RuntimeSettings(plan_every_ms=service.plan_every_ms, gather_ms=service.gather_ms,
                               snapshot_every=service.snapshot_every,
                               stall_after_ms=service.stall_after_ms)
    async with running_service(deployment.setup, fix, endpoints_of(service), key,
                               service.journal, settings, _connected(deployment)) as running, \
            _endpoints(running, deployment, token):
        RECOVERY_S.set(process_age_s(time.monotonic() - started))
        log.info("serving", fix_port=deployment.fix.port, exchange=service.exchange,
                 start_s=round(time.monotonic() - started, 3))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, running.serving], return_when=asyncio.FIRST_COMPLETED)
        if running.serving.done():  # the writer failed (the exchange's filters, the journal)
            stopping.cancel()
            running.serving.result()
            raise RuntimeError("the runtime stopped by itself")
        await running.wind_down(service.shutdown_grace_s)
    return f"{signalled[0]} received" if signalled else "asked to stop"


async def _connected(deployment: Deployment) -> ChainLink:
    """The deployment's chain: web3 is imported here, once the writer is serving."""
    from solver.service.chain_link import connect

    assert deployment.chain is not None
    collateral = deployment.setup.indexes[0].collateral
    return await connect(deployment.chain, dict(deployment.wallets), collateral)


@contextlib.asynccontextmanager
async def _endpoints(service: Service, deployment: Deployment,
                     token: str | None) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        if deployment.admin is not None and token is not None:
            admin = AdminEndpoint(service, token)
            await admin.start(deployment.admin.port)
            stack.push_async_callback(admin.stop)
        if deployment.metrics is not None:
            metrics = MetricsEndpoint(service)
            await metrics.start(deployment.metrics.host, deployment.metrics.port)
            stack.push_async_callback(metrics.stop)
        yield


def process_age_s(otherwise: float) -> float:
    """How long ago this process started (Linux), imports included; ``otherwise`` where
    that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError):
        return otherwise


def admin_token(settings: AdminSettings) -> str:
    """The bearer token the operator's commands send, from the environment."""
    token = os.environ.get(settings.token_env, "")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"admin.token_env: set {settings.token_env} to the admin endpoint's "
                          f"bearer token, at least {MIN_TOKEN_LENGTH} characters")
    return token


def endpoints_of(service: ServiceSettings) -> Endpoints:
    if service.exchange.startswith("local:"):
        return local(int(service.exchange.removeprefix("local:")))
    return TESTNET if service.exchange == "testnet" else PRODUCTION


def _stop_on_signals(signalled: list[str]) -> asyncio.Event:
    """Set on SIGINT or SIGTERM; ``signalled`` gets the signal's name."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def received(sig: signal.Signals) -> None:
        signalled.append(sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, received, sig)
    return stop
