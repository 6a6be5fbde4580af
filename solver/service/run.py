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

import structlog

from solver.config.deployment import AdminSettings, Deployment, ServiceSettings
from solver.config.fields import ConfigError
from solver.exchange.endpoints import PRODUCTION, TESTNET, ApiKey, Endpoints, local
from solver.service.admin import AdminEndpoint
from solver.service.chain_link import connect
from solver.service.metrics import RECOVERY_S, MetricsEndpoint
from solver.service.runtime import RuntimeSettings
from solver.service.wiring import Service, running_service

log = structlog.get_logger(__name__)

MIN_TOKEN_LENGTH = 16


async def serve(deployment: Deployment, stop: asyncio.Event | None = None) -> None:
    """The deployment's service until ``stop`` is set (by SIGINT or SIGTERM if not given)."""
    started = time.monotonic()
    stop = stop or _stop_on_signals()
    if deployment.chain is None:
        raise ConfigError("chain: the service needs a [chain] section: deposits come from the "
                          "vault and every mint is a settlement (docs/chain.md)")
    token = None if deployment.admin is None else admin_token(deployment.admin)
    key = ApiKey.from_env()
    collateral = deployment.setup.indexes[0].collateral
    chain = await connect(deployment.chain, dict(deployment.wallets), collateral)
    service = deployment.service
    settings = RuntimeSettings(plan_every_ms=service.plan_every_ms, gather_ms=service.gather_ms)
    async with running_service(deployment.setup, deployment.fix, endpoints_of(service), key,
                               service.journal, settings, chain) as running, \
            _endpoints(running, deployment, token):
        RECOVERY_S.set(time.monotonic() - started)
        log.info("serving", fix_port=deployment.fix.port, exchange=service.exchange,
                 start_s=round(time.monotonic() - started, 3))
        await stop.wait()
        await running.wind_down(service.shutdown_grace_s)


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


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
