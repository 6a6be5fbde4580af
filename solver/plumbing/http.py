"""An aiohttp application served on one address until stopped (the operator's endpoints)."""

from __future__ import annotations

import logging

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)


class _Terse(logging.Filter):
    """aiohttp logs a malformed request with its raw bytes, a bearer token among them: keep
    that it happened and why, never what was sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        record.msg, record.args = "malformed HTTP request refused (%s)", (
            type(error).__name__ if error else "no detail",)
        record.exc_info = record.exc_text = None
        return True


REFUSALS = logging.getLogger("solver.http")
REFUSALS.addFilter(_Terse())


class Listening:
    def __init__(self, app: web.Application, name: str) -> None:
        self.name = name
        self._runner = web.AppRunner(app, access_log=None, logger=REFUSALS)
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0: a free port, then in ``port``)."""
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]
        log.info(f"{self.name} listening", host=host, port=self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
