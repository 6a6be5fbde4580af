"""What the documentation draws is what the code does: each lifecycle diagram of
``docs/architecture.md`` is its transition table."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from solver.core import batches, custody, orders
from solver.exchange import tracker

ARCHITECTURE = Path(__file__).parent.parent.parent / "docs" / "architecture.md"
TABLES: dict[str, tuple[dict[Any, Any], type[StrEnum], type[StrEnum]]] = {
    "orders.TRANSITIONS": (orders.TRANSITIONS, orders.OrderState, orders.Trigger),
    "batches.ASSET_ORDER_TRANSITIONS": (batches.ASSET_ORDER_TRANSITIONS,
                                        batches.AssetOrderState, batches.AssetOrderTrigger),
    "batches.BATCH_TRANSITIONS": (batches.BATCH_TRANSITIONS, batches.BatchState,
                                  batches.BatchTrigger),
    "custody.WITHDRAWAL_TRANSITIONS": (custody.WITHDRAWAL_TRANSITIONS,
                                       custody.WithdrawalState, custody.WithdrawalTrigger),
    "tracker.TRANSITIONS": (tracker.TRANSITIONS, tracker.ExchangeStatus,
                            tracker.ExchangeStatus),
}


def diagrams() -> dict[str, str]:
    blocks = re.findall(r"```mermaid\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    return {m[1]: block for block in blocks if (m := re.search(r"%% (\S+)", block))}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_life_diagram_is_its_transition_table(name: str) -> None:
    table, state, trigger = TABLES[name]
    drawn = {(state(a.lower()), trigger(t)): state(b.lower())
             for a, b, t in re.findall(r"(\w+) --> (\w+) : (\w+)", diagrams()[name])
             if a != "[*]"}
    assert drawn == table


def test_every_diagram_names_a_table() -> None:
    assert set(diagrams()) == set(TABLES)
