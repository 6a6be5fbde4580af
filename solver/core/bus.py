"""Delivers each transaction's events to subscribers by topic, after the state changed.

A topic is an event class; subscribing to ``Event`` receives everything. Transaction
observers see the boundaries, so a consumer can commit once per transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from solver.core.commands import Input
from solver.core.events import Envelope, Event, Transaction

E = TypeVar("E", bound=Event)
_log = logging.getLogger(__name__)
Handler = Callable[[Envelope[Any]], None]
Refusal = Callable[[Input, str], None]
"""Told of an input the writer refused before the engine saw it, and why."""


class TransactionObserver(Protocol):
    def transaction_began(self, transaction: Transaction) -> None: ...

    def transaction_ended(self, transaction: Transaction) -> None: ...


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}
        self._observers: list[TransactionObserver] = []
        self._routes: dict[type[Any], list[Handler]] = {}
        self._refusals: list[Refusal] = []

    def subscribe(self, topic: type[E], handler: Callable[[Envelope[E]], None]) -> None:
        """Call ``handler`` with every envelope whose event is a ``topic`` (typed: the
        handler of ``IndexOrderFilled`` takes an ``Envelope[IndexOrderFilled]``)."""
        self._handlers.setdefault(topic, []).append(handler)
        self._routes.clear()

    def observe(self, observer: TransactionObserver) -> None:
        self._observers.append(observer)

    def on_refusal(self, handler: Refusal) -> None:
        self._refusals.append(handler)

    def refuse(self, command: Input, reason: str) -> None:
        """Tell whoever handed ``command`` in that it was refused (it is not journaled)."""
        for handler in self._refusals:
            try:
                handler(command, reason)
            except Exception:
                _log.exception("refusal handler %r failed", handler)

    def publish(self, transaction: Transaction) -> None:
        for observer in self._observers:
            observer.transaction_began(transaction)
        for envelope in transaction.events:
            for handler in self._route(type(envelope.event)):
                try:
                    handler(envelope)
                except Exception:  # one failing consumer must not starve the others
                    _log.exception("event handler %r failed on seq %d (%s)", handler,
                                   envelope.seq, type(envelope.event).__name__)
        for observer in self._observers:
            try:
                observer.transaction_ended(transaction)
            except Exception:  # a failing view must not stop the writer, nor the others
                _log.exception("observer %r failed on transaction %d", observer,
                               transaction.number)

    def _route(self, kind: type[Event]) -> list[Handler]:
        route = self._routes.get(kind)
        if route is None:
            route = [h for topic in kind.__mro__ if topic in self._handlers
                     for h in self._handlers[topic]]
            self._routes[kind] = route
        return route
