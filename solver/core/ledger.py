"""Collateral per account and asset: deposited = available + reserved + spent."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solver.core.money import ZERO


@dataclass(frozen=True, slots=True)
class Balance:
    deposited: Decimal = ZERO
    available: Decimal = ZERO
    reserved: Decimal = ZERO
    spent: Decimal = ZERO
    fees: Decimal = ZERO
    """The part of ``spent`` that paid exchange commissions."""

    def violation(self) -> str | None:
        if min(self.available, self.reserved, self.spent, self.fees) < 0:
            return f"negative balance {self}"
        if self.deposited != self.available + self.reserved + self.spent:
            return f"deposited != available + reserved + spent in {self}"
        if self.fees > self.spent:
            return f"fees exceed spent in {self}"
        return None


class LedgerError(Exception):
    """A movement the balances do not allow; the engine checks before it moves."""


class CollateralLedger:
    """Every movement keeps the per-account invariant; nothing is kept silently."""

    def __init__(self) -> None:
        self._balances: dict[tuple[str, str], Balance] = {}

    def balance(self, account: str, asset: str) -> Balance:
        return self._balances.get((account, asset), Balance())

    def balances(self) -> dict[tuple[str, str], Balance]:
        return dict(self._balances)

    def credit(self, account: str, asset: str, amount: Decimal) -> None:
        b = self.balance(account, asset)
        self._set(account, asset, Balance(b.deposited + amount, b.available + amount,
                                          b.reserved, b.spent, b.fees))

    def reserve(self, account: str, asset: str, amount: Decimal) -> None:
        b = self.balance(account, asset)
        if amount > b.available:
            raise LedgerError(f"reserve {amount} > available {b.available} for {account}")
        self._set(account, asset, Balance(b.deposited, b.available - amount,
                                          b.reserved + amount, b.spent, b.fees))

    def spend(self, account: str, asset: str, amount: Decimal, fees: Decimal) -> None:
        b = self.balance(account, asset)
        if amount > b.reserved:
            raise LedgerError(f"spend {amount} > reserved {b.reserved} for {account}")
        self._set(account, asset, Balance(b.deposited, b.available, b.reserved - amount,
                                          b.spent + amount, b.fees + fees))

    def release(self, account: str, asset: str, amount: Decimal) -> None:
        b = self.balance(account, asset)
        if amount > b.reserved:
            raise LedgerError(f"release {amount} > reserved {b.reserved} for {account}")
        self._set(account, asset, Balance(b.deposited, b.available + amount,
                                          b.reserved - amount, b.spent, b.fees))

    def violations(self) -> list[str]:
        found = ((key, b.violation()) for key, b in self._balances.items())
        return [f"account {a} {asset}: {v}" for (a, asset), v in found if v]

    def _set(self, account: str, asset: str, balance: Balance) -> None:
        self._balances[(account, asset)] = balance
