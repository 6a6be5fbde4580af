"""Snapshots of an engine's state, and a plain picture of that state for comparisons.

A snapshot is the engine pickled: exact (Decimals pickle as themselves), complete and fast, and
read back only from the service's own journal. It is a cache: a snapshot whose ``STATE_VERSION``
differs from the running code's is skipped and the journal is replayed from the start instead.
"""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal
from enum import Enum
from typing import Any

from solver.core.engine import Engine

STATE_VERSION = 6
"""Bump whenever the engine's state changes shape (a field added, renamed or retyped)."""


def capture(engine: Engine) -> bytes:
    return pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)


def restore(state: bytes) -> Engine:
    engine = pickle.loads(state)
    if not isinstance(engine, Engine):
        raise ValueError("snapshot does not hold an engine")
    return engine


def state_of(value: Any) -> Any:
    """Everything ``value`` holds as nested dicts and lists, for equality and diffs."""
    if value is None or isinstance(value, bool | int | str | Decimal | Enum):
        return value
    if isinstance(value, dict):
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
