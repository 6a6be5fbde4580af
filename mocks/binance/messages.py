"""Binance's wire conventions: 8-decimal number strings and error answers."""

from __future__ import annotations

from decimal import Decimal


def wire(value: Decimal) -> str:
    """A number as Binance writes it: a string with exactly 8 decimals."""
    return f"{value:.8f}"


class Rejection(Exception):
    """An error answer: HTTP ``status`` with Binance's ``code`` and ``msg``."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}
