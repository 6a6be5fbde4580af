"""A stand-in for the chain adapter: every mint asked for is confirmed at once.

Used by the demo and the FIX gateway service until the chain adapter lands; the tx hash is
the order id written as a hash, so it is plainly not a real transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from solver.core.bus import EventBus
from solver.core.commands import Input, MintConfirmed
from solver.core.events import Envelope, MintRequested, MintRetryRequested


class InstantMint:
    def __init__(self, bus: EventBus, submit: Callable[[Input], None],
                 clock: Callable[[], int]) -> None:
        self.submit = submit
        self.clock = clock
        bus.subscribe(MintRequested, self._mint)
        bus.subscribe(MintRetryRequested, self._mint)

    def _mint(self, envelope: Envelope[MintRequested | MintRetryRequested]) -> None:
        event = envelope.event
        self.submit(MintConfirmed(self.clock(), event.order_id, f"0x{event.order_id:064x}"))
