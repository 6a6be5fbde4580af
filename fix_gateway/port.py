"""What the gateway needs of the solver's service: the composition root hands it the runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from solver.core import events as ev
from solver.core.bus import EventBus, TransactionObserver
from solver.core.commands import Input
from solver.core.engine import Engine

P = TypeVar("P", bound=TransactionObserver)


class Solver(Protocol):
    """The gateway reads the engine only for its static configuration and, once at start,
    for where the journal stands; what happens it learns from the bus."""

    engine: Engine
    bus: EventBus
    clock: Callable[[], int]

    def submit(self, command: Input) -> None:
        """Hand an input to the writer (after the books that moved, if it is priced on
        them)."""
        ...

    def resume(self, name: str, new: Callable[[], P]) -> P:
        """The projection ``name`` as of the journal's last transaction, then following the
        bus (checkpointed with the engine's snapshots)."""
        ...

    def transactions_after(self, number: int) -> Iterator[ev.Transaction]:
        """The journal's transactions after transaction ``number``."""
        ...

    def transactions_since(self, seq: int) -> Iterator[ev.Transaction]:
        """The journal's transactions with events after event ``seq``."""
        ...
