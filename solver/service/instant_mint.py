"""A test double of the settler: every mint asked for is confirmed at once, and deposits are
credited as given. For tests and benchmarks of a service without a chain; the service itself
never uses it (``running_service`` settles on a chain or not at all). The tx hash is the order
id written as a hash, so it is plainly not a real transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from solver.core.bus import EventBus
from solver.core.commands import DepositConfirmed, Input, MintConfirmed
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


def credit(submit: Callable[[Input], None], clock: Callable[[], int],
           deposits: list[tuple[str, str, Decimal]]) -> None:
    """Credit ``deposits`` (account, asset, amount), once each by their place in the list."""
    for n, (account, asset, amount) in enumerate(deposits):
        submit(DepositConfirmed(clock(), f"test-deposit-{n}", account, asset, amount))
