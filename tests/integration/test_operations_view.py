"""The operator's view kept from the events: how long the exchange has been silent while
batches are in flight counts from the later of its last word and the first batch out, so an
idle period before a batch does not look like silence (the alert paged at once before)."""

from __future__ import annotations

from solver.core import events as ev
from solver.core.commands import AssetOrderAccepted, Input, PlanBatch
from solver.views.operations import OperationsStore


def publish(store: OperationsStore, number: int, command: Input, *events: ev.Event) -> None:
    store.transaction_ended(ev.Transaction(number, command.ts, command, tuple(
        ev.Envelope(number * 10 + n, command.ts, e) for n, e in enumerate(events))))


def test_silence_counts_from_the_first_batch_out_after_an_idle_period() -> None:
    store = OperationsStore()
    publish(store, 1, AssetOrderAccepted(1_000, 1, "x-1"))
    assert store.view().exchange_silent_since is None  # nothing in flight
    publish(store, 2, PlanBatch(300_000), ev.BatchPlanned(7, (), (), ()))
    assert store.view().exchange_silent_since == 300_000  # not the 1_000 of before the idle
    publish(store, 3, PlanBatch(300_500), ev.BatchPlanned(8, (), (), ()))
    assert store.view().exchange_silent_since == 300_000  # the first of those in flight
    publish(store, 4, AssetOrderAccepted(301_000, 2, "x-2"))
    assert store.view().exchange_silent_since == 301_000  # the exchange spoke
    publish(store, 5, PlanBatch(302_000), ev.BatchSettled(7, (), ()), ev.BatchSettled(8, (), ()))
    assert store.view().exchange_silent_since is None
