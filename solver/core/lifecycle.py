"""A life as a table: (state, trigger) -> the next state. Every object with a life in the core
(the index order, the batch, the asset order, the withdrawal) moves only by its table; any
other pair is a defect and raises. ``docs/architecture.md`` draws each table, and a test
checks each drawing against its table."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T", bound=StrEnum)


class InvalidTransition(Exception):
    """A trigger the state does not allow."""


def following(table: Mapping[tuple[S, T], S], what: str, state: S, trigger: T) -> S:
    """The state ``trigger`` leads to from ``state``; raises for a pair not in ``table``."""
    found = table.get((state, trigger))
    if found is None:
        raise InvalidTransition(f"{what}: {trigger.value} when {state.value}")
    return found
