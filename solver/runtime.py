"""The solver as a service: one writer over the engine and its journal, with the exchange
adapter (execution and market data) around it.

Start-up resumes from the journal: the engine is the replay of the journal, and every asset
order it has in flight is tracked again and queried on the exchange before new batches are
planned. Then, every ``plan_every_ms`` while orders are waiting, the local books go to the
engine and a batch is planned; a clock tick every ``tick_every_ms`` makes expiries and mint
retries fall due.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from solver.bus import EventBus
from solver.commands import ClockTicked, Input, PlanBatch
from solver.engine import Engine
from solver.events import AssetOrderRequested
from solver.exchange.connector import BinanceConnector
from solver.exchange.execution import Execution, ReconcilePolicy
from solver.exchange.market_data import MarketData
from solver.journal import Journal
from solver.sequencer import Sequencer

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    plan_every_ms: int = 500
    tick_every_ms: int = 1000
    snapshot_every: int = 2000
    reconcile: ReconcilePolicy = field(default_factory=ReconcilePolicy)
    book_max_age_ms: int = 10_000


class Runtime:
    def __init__(self, engine: Engine, connector: BinanceConnector,
                 journal: Journal | None = None, settings: RuntimeSettings | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.settings = settings or RuntimeSettings()
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.engine = engine
        self.inbox: asyncio.Queue[Input] = asyncio.Queue()
        self.bus = EventBus()
        self.sequencer = Sequencer(engine, self.bus, journal, self.settings.snapshot_every)
        self.execution = Execution(connector, self.submit, self.settings.reconcile, self.clock)
        self.bus.subscribe(AssetOrderRequested, self.execution.on_requested)
        symbols = sorted(rules.symbol for rules in engine.rules.values())
        self.market_data = MarketData(connector, symbols, self.settings.book_max_age_ms,
                                      clock=self.clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def submit(self, command: Input) -> None:
        """Hand an input to the writer (from any coroutine on the loop)."""
        self.inbox.put_nowait(command)

    async def run(self) -> None:
        """Serve until ``stop``: resume in-flight orders, then plan on a timer."""
        self._stopping = asyncio.Event()
        self._tasks = [asyncio.create_task(self.sequencer.run(self.inbox)),
                       asyncio.create_task(self.market_data.run())]
        try:
            await self.execution.resume(self.engine.asset_orders.values())
            self._tasks.append(asyncio.create_task(self.execution.run()))
            await self._plan_until_stopped()
        finally:
            self.execution.stop()
            for task in reversed(self._tasks):
                while not task.done():  # python-binance can swallow one cancellation
                    task.cancel()
                    await asyncio.wait([task], timeout=0.5)
            await self.execution.drain()

    def stop(self) -> None:
        self._stopping.set()

    async def _plan_until_stopped(self) -> None:
        last_tick = 0
        while not self._stopping.is_set():
            now = self.clock()
            if self.engine.open_orders():
                for update in self.market_data.book_updates():
                    self.submit(update)
                self.submit(PlanBatch(now))
            if now - last_tick >= self.settings.tick_every_ms:
                self.submit(ClockTicked(now))
                last_tick = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       self.settings.plan_every_ms / 1000)
