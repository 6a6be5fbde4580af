"""Reading fields of JSON/TOML/YAML documents, each failure a ``ScenarioError`` whose message
starts with the key at fault (scenarios, the mock exchange's market files)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from solver.config.index_files import decimal, positive


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the key at fault."""


def expect_table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{key}: expected a table of keys")
    return value


def expect_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{key}: expected a list")
    return value


def reject_unknown(table: Mapping[str, Any], allowed: set[str], key: str) -> None:
    for name in table:
        if name not in allowed:
            raise ScenarioError(f"{key}.{name}: unknown key (known: {', '.join(sorted(allowed))})")


def expect_text(value: Any, key: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{key}: required text")
    return value


def failure(key: str) -> Callable[[str], ScenarioError]:
    return lambda problem: ScenarioError(f"{key}: {problem}")


def expect_number(value: Any, key: str, minimum: Decimal | None = None,
            positive_only: bool = False) -> Decimal:
    """A number within the door's bound (below 1E+24, at most 18 decimals: ``to_decimal``)."""
    if value is None:
        raise ScenarioError(f"{key}: required")
    number = positive(value, failure(key)) if positive_only else decimal(value, failure(key))
    if minimum is not None and number < minimum:
        raise ScenarioError(f"{key}: must not be below {minimum}")
    return number


def expect_whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScenarioError(f"{key}: must be a whole number from {low} to {high}")
    return value
