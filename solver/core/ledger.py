"""Collateral per account and asset:
deposited = available + reserved + spent + withdrawing + withdrawn."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    withdrawing: Decimal = ZERO
    """Set aside for a withdrawal the user asked for on-chain: no order may use it."""
    withdrawn: Decimal = ZERO

    def violation(self) -> str | None:
        if min(self.available, self.reserved, self.spent, self.fees, self.withdrawing,
               self.withdrawn) < 0:
            return f"negative balance {self}"
        if self.deposited != (self.available + self.reserved + self.spent + self.withdrawing
                              + self.withdrawn):
            return ("deposited != available + reserved + spent + withdrawing + withdrawn in "
                    f"{self}")
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
        self._set(account, asset, replace(b, deposited=b.deposited + amount,
                                          available=b.available + amount))

    def reserve(self, account: str, asset: str, amount: Decimal) -> None:
        self._move(account, asset, amount, "available", "reserved", "reserve")

    def spend(self, account: str, asset: str, amount: Decimal, fees: Decimal) -> None:
        self._move(account, asset, amount, "reserved", "spent", "spend")
        b = self.balance(account, asset)
        self._set(account, asset, replace(b, fees=b.fees + fees))

    def refund(self, account: str, asset: str, amount: Decimal, fees: Decimal) -> None:
        """What an order spent and was never charged (the vault refused its settlement)."""
        self._move(account, asset, amount, "spent", "available", "refund")
        b = self.balance(account, asset)
        self._set(account, asset, replace(b, fees=b.fees - fees))

    def release(self, account: str, asset: str, amount: Decimal) -> None:
        self._move(account, asset, amount, "reserved", "available", "release")

    def set_aside(self, account: str, asset: str, amount: Decimal) -> None:
        """Available collateral kept for a withdrawal."""
        self._move(account, asset, amount, "available", "withdrawing", "set aside")

    def give_back(self, account: str, asset: str, amount: Decimal) -> None:
        """Collateral set aside for a withdrawal that did not take it."""
        self._move(account, asset, amount, "withdrawing", "available", "give back")

    def pay_out(self, account: str, asset: str, amount: Decimal) -> None:
        """The vault paid the user: from what was set aside."""
        self._move(account, asset, amount, "withdrawing", "withdrawn", "pay out")

    def _move(self, account: str, asset: str, amount: Decimal, source: str, target: str,
              what: str) -> None:
        """``amount`` from one part of the balance to another; never more than is there."""
        b = self.balance(account, asset)
        have: Decimal = getattr(b, source)
        if amount > have:
            raise LedgerError(f"{what} {amount} > {source} {have} for {account}")
        self._set(account, asset, replace(b, **{source: have - amount,
                                                target: getattr(b, target) + amount}))

    def violations(self) -> list[str]:
        found = ((key, b.violation()) for key, b in self._balances.items())
        return [f"account {a} {asset}: {v}" for (a, asset), v in found if v]

    def _set(self, account: str, asset: str, balance: Balance) -> None:
        self._balances[(account, asset)] = balance
