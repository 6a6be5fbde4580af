"""Snapshots of an engine's state with the projections checkpointed at the same transaction,
and a plain picture of that state for comparisons.

A snapshot is the engine and the projections (the views and adapters' memories folded from the
events, by name) pickled together: exact (Decimals pickle as themselves), complete and fast,
and read back only from the service's own journal. It is a cache: a snapshot whose
``STATE_VERSION`` differs from the running code's is skipped and the journal is replayed from
the start instead.
"""

from __future__ import annotations

import copyreg
import dataclasses
import pickle
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any

from solver.core.engine import Engine

STATE_VERSION = 14
"""Bump whenever the engine's or a projection's state changes shape (a field added, renamed or
retyped)."""


def read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


# The views publish read-only mappings; a checkpoint keeps a copy of what one shows.
copyreg.pickle(MappingProxyType, lambda view: (read_only, (dict(view),)))


def capture(engine: Engine, projections: Mapping[str, object] | None = None) -> bytes:
    return pickle.dumps((engine, dict(projections or {})), protocol=pickle.HIGHEST_PROTOCOL)


def restore(state: bytes) -> tuple[Engine, dict[str, Any]]:
    """The engine and the projections checkpointed with it."""
    engine, projections = pickle.loads(state)
    if not isinstance(engine, Engine) or not isinstance(projections, dict):
        raise ValueError("snapshot does not hold an engine and its projections")
    return engine, projections


def state_of(value: Any) -> Any:
    """Everything ``value`` holds as nested dicts and lists, for equality and diffs."""
    if value is None or isinstance(value, bool | int | str | Decimal | Enum):
        return value
    if isinstance(value, Mapping):
        return {key: state_of(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [state_of(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(state_of(item) for item in value)
    if dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value)]
    elif hasattr(value, "__dict__"):
        names = list(vars(value))
    else:
        raise TypeError(f"no state picture for {type(value).__name__}")
    return {"__type__": type(value).__name__,
            **{name: state_of(getattr(value, name)) for name in names}}
