"""An aiohttp application served on one address until stopped (the operator's endpoints)."""

from __future__ import annotations

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)


class Listening:
    def __init__(self, app: web.Application, name: str) -> None:
        self.name = name
        self._runner = web.AppRunner(app, access_log=None)
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
