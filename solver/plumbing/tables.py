"""Tables for people, readable at 80 columns: light borders, names on the left, numbers on the
right, and a cell too wide for its column wrapped onto the next line, never cut ("ali…")."""

from __future__ import annotations

from collections.abc import Collection

from rich import box
from rich.table import Table

NAMES = frozenset({"order", "account", "index", "asset", "wallet", "status", "reason",
                   "symbol", "user", "what", "asset orders"})


def table(title: str | None, *columns: str, left: Collection[str] = NAMES) -> Table:
    """A table with ``columns``; those named in ``left`` are text, the others numbers."""
    made = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False,
                 collapse_padding=True)
    for column in columns:
        made.add_column(column, overflow="fold", justify="left" if column in left else "right")
    return made
