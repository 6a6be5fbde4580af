"""Tables for people, readable at 80 columns: light borders, names on the left, numbers on the
right, and a cell too wide for its column wrapped onto the next line, never cut ("ali…")."""

from __future__ import annotations

from collections.abc import Collection
from decimal import ROUND_HALF_EVEN, Decimal

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


def readable(amount: str | Decimal, places: int = 6) -> str:
    """An exact amount as a person reads it in a table: at most ``places`` decimals (rounded
    half-even; the JSON answers keep it whole), no exponent, no trailing zeros."""
    value = Decimal(amount)
    if value.as_tuple().exponent < -places:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def short(text: str, keep: int = 6) -> str:
    """A hash or an address shortened for a table (``0x1234ab…9a7c``): the whole is in --json."""
    head = keep + (2 if text.startswith("0x") else 0)
    return text if len(text) <= head + keep + 1 else f"{text[:head]}…{text[-keep:]}"
