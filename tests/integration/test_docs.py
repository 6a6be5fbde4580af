"""What the documentation draws is what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from solver.core.orders import TRANSITIONS, OrderState, Trigger

ARCHITECTURE = Path(__file__).parent.parent.parent / "docs" / "architecture.md"


def test_the_order_life_diagram_is_the_transition_table() -> None:
    diagram = ARCHITECTURE.read_text().split("```mermaid")[1].split("```")[0]
    drawn = {(OrderState(a.lower()), Trigger(t)): OrderState(b.lower())
             for a, b, t in re.findall(r"(\w+) --> (\w+) : (\w+)", diagram)}
    assert drawn == TRANSITIONS
