"""The vault as the engine knows it (data; ``vault.py`` applies the vault's facts to it): which
wallet is whose, deposits from wallets no account has (held, never lost), the withdrawals users
asked for on-chain, and the facts a deep reorganisation took away.

One wallet per account: the vault charges and mints to one address, so an account's
collateral on the engine's ledger is that wallet's balance in the vault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from solver.core.commands import VaultFact
from solver.core.lifecycle import following
from solver.core.money import ZERO

WITHDRAWAL_REASON = "canceled: its collateral is being withdrawn"


@dataclass(frozen=True, slots=True)
class HeldDeposit:
    deposit_id: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VanishedFact:
    """A vault event the engine applied that a deep reorganisation took off the chain."""

    kind: VaultFact
    wallet: str
    account: str | None
    asset: str
    amount: Decimal


class WithdrawalState(StrEnum):
    COLLECTING = "collecting"
    """Asked for: available collateral set aside, the account's orders making room."""
    RELEASE_REQUESTED = "release_requested"
    """All of it set aside, or nothing more can be: the vault's early release asked for."""
    PAID = "paid"
    REPLACED = "replaced"
    """A newer request of the same wallet took its place."""
    FORGOTTEN = "forgotten"
    """It left the chain in a reorganisation, and the operator resolved it."""


class WithdrawalTrigger(StrEnum):
    REQUEST_RELEASE = "request_release"
    PAY = "pay"
    REPLACE = "replace"
    FORGET = "forget"


_W, _WT = WithdrawalState, WithdrawalTrigger
WITHDRAWAL_TRANSITIONS: dict[tuple[WithdrawalState, WithdrawalTrigger], WithdrawalState] = {
    (_W.COLLECTING, _WT.REQUEST_RELEASE): _W.RELEASE_REQUESTED,
    (_W.COLLECTING, _WT.PAY): _W.PAID,  # withdrawn after the vault's delay, not released
    (_W.RELEASE_REQUESTED, _WT.PAY): _W.PAID,
    (_W.COLLECTING, _WT.REPLACE): _W.REPLACED,
    (_W.RELEASE_REQUESTED, _WT.REPLACE): _W.REPLACED,
    (_W.COLLECTING, _WT.FORGET): _W.FORGOTTEN,
    (_W.RELEASE_REQUESTED, _WT.FORGET): _W.FORGOTTEN,
}
"""A withdrawal's life, from the request the chain reported to its end."""


@dataclass(slots=True)
class Withdrawal:
    request_id: str
    wallet: str
    account: str | None
    asset: str
    requested: Decimal
    set_aside: Decimal = ZERO
    state: WithdrawalState = WithdrawalState.COLLECTING

    @property
    def short(self) -> Decimal:
        return self.requested - self.set_aside

    def move(self, trigger: WithdrawalTrigger) -> None:
        self.state = following(WITHDRAWAL_TRANSITIONS, f"withdrawal {self.request_id}",
                               self.state, trigger)


@dataclass(slots=True)
class Custody:
    accounts: dict[str, str] = field(default_factory=dict)
    """wallet (lower case) -> account"""
    wallets: dict[str, str] = field(default_factory=dict)
    """account -> wallet, as first given"""
    held: dict[str, list[HeldDeposit]] = field(default_factory=dict)
    """wallet (lower case) -> deposits from it while no account had it"""
    withdrawals: dict[str, Withdrawal] = field(default_factory=dict)
    """wallet (lower case) -> its pending withdrawal (the vault keeps one per user)"""
    seen: set[str] = field(default_factory=set)
    """ids of the withdrawal requests and payouts applied: the chain may deliver one twice"""
    reading: bool = False
    """Started on a chain and not read up to its head yet: deposits may be missing."""
    vanished: dict[str, VanishedFact] = field(default_factory=dict)
    """fact id -> an applied fact a deep reorganisation removed, until mined again or resolved"""

    def account_of(self, wallet: str) -> str | None:
        return self.accounts.get(wallet.lower())

    def bound_wallet(self, account: str) -> str | None:
        """The wallet bound to ``account`` (not one a deposit of the simulator named)."""
        wallet = self.wallets.get(account)
        return wallet if wallet is not None and self.account_of(wallet) == account else None

    def in_doubt(self, account: str) -> tuple[str, VanishedFact] | None:
        """A vanished fact of ``account``'s, if it has one: its new orders wait."""
        return next(((i, f) for i, f in self.vanished.items() if f.account == account), None)

    def held_total(self, wallet: str, asset: str) -> Decimal:
        return sum((d.amount for d in self.held.get(wallet.lower(), ()) if d.asset == asset),
                   ZERO)
