"""Fault switches: the failures the connector's order tracking exists for.

Probabilities draw from the server's seeded generator, so a run with the same seed and the
same requests fails the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class Faults:
    lose_response: float = 0.0
    """Probability that an order is executed and its answer never sent (the connection drops)."""
    server_error: float = 0.0
    """Probability that an order request answers HTTP 503; half of those execute anyway."""
    delay_ms: int = 0
    """Added before every REST and WebSocket API answer."""
    report_delay_ms: int = 0
    """User events are sent this long after they happen (after the REST answer)."""
    duplicate_reports: float = 0.0
    """Probability that a user event is sent twice."""
    reorder_reports: bool = False
    """Each request's user events are sent in reverse order, after its answer."""
    not_found_ms: int = 0
    """Order queries answer -2013 for this long after the order was placed."""
    stale_book: bool = False
    """Depth streams stop sending updates (the books keep moving)."""
    depth_gap: float = 0.0
    """Probability that a depth update is never sent, leaving a gap in the update ids."""
    clock_skew_ms: int = 0
    """Added to the server's clock (serverTime and the timestamp check)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Faults:
        faults = cls()
        faults.update(data)
        return faults

    def update(self, data: Mapping[str, Any]) -> None:
        """Set the named switches; an unknown name or a wrong type raises ValueError."""
        known = {f.name: f for f in fields(self)}
        for name, value in data.items():
            if name not in known:
                raise ValueError(f"{name}: unknown fault (known: {', '.join(sorted(known))})")
            kind = type(getattr(self, name))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not kind:
                raise ValueError(f"{name}: expected {kind.__name__}, got {value!r}")
            setattr(self, name, value)
