"""Where the chain adapter keeps what must survive a crash: the journal's adapter records
(``Journal.record``, ``save_record``, ``forget_record``), seen through this protocol so that
the adapter does not depend on the journal's module."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class Records(Protocol):
    def record(self, key: str) -> str | None: ...

    def save_record(self, key: str, value: str) -> None:
        """Durable when it returns."""

    def save_records(self, values: Mapping[str, str]) -> None:
        """Every one of ``values`` durable when it returns (one write for them all)."""

    def forget_record(self, key: str) -> None: ...

    def forget_records(self, keys: Iterable[str]) -> None: ...

    def records(self, prefix: str) -> dict[str, str]:
        """Every record whose key starts with ``prefix``."""


class MemoryRecords:
    """Records kept in memory: for a service run without a journal (the demo), where nothing
    is meant to survive the process."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}

    def record(self, key: str) -> str | None:
        return self._records.get(key)

    def save_record(self, key: str, value: str) -> None:
        self._records[key] = value

    def save_records(self, values: Mapping[str, str]) -> None:
        self._records.update(values)

    def forget_record(self, key: str) -> None:
        self._records.pop(key, None)

    def forget_records(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._records.pop(key, None)

    def records(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in sorted(self._records.items()) if k.startswith(prefix)}
