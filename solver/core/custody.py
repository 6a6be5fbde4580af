"""The vault as the engine sees it: which wallet is whose, deposits from wallets no account
has (held, never lost), and the withdrawals users asked for on-chain.

The vault keeps each user's collateral until a settlement charges it, and lets a user leave
without anyone's permission: ``request_withdrawal`` and, after the vault's delay, ``withdraw``,
which pays min(requested, balance). So the engine must never count on collateral a user is
taking back. A request sets aside the account's available collateral at once; if that is not
enough, the account's orders make room (unengaged ones are reduced or cancelled, engaged ones
end when their batch settles), and whatever they release goes to the withdrawal first. Once
the withdrawal has all it asked for, or the account has nothing left that could add to it
(no open order, no settlement still to charge the vault), the solver asks for the vault's
early ``release``: the vault then pays out exactly what was set aside.

One wallet per account: the vault charges and mints to one address, so an account's
collateral on the engine's ledger is that wallet's balance in the vault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from solver.core import events as ev
from solver.core.commands import (
    BindWallet,
    ResolveVanishedFact,
    VaultDepositConfirmed,
    VaultFact,
    VaultFactVanished,
    VaultReadingStarted,
    VaultReadThrough,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.money import ZERO
from solver.core.orders import IndexOrder, OrderState, OrderStatus, RejectReason, amount_refusal

if TYPE_CHECKING:
    from solver.core.engine import Engine

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


@dataclass(slots=True)
class Withdrawal:
    request_id: str
    wallet: str
    account: str | None
    asset: str
    requested: Decimal
    set_aside: Decimal = ZERO
    release_requested: bool = False

    @property
    def short(self) -> Decimal:
        return self.requested - self.set_aside


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


# --- handlers ----------------------------------------------------------------------------------


def bind_wallet(engine: Engine, cmd: BindWallet) -> list[ev.Event]:
    custody, key = engine.custody, cmd.wallet.lower()
    bound = custody.accounts.get(key)
    if bound == cmd.account:
        return []  # every start binds the configured wallets again
    if bound is not None:
        return [ev.InputIgnored(f"wallet {cmd.wallet} is account {bound}'s")]
    if custody.bound_wallet(cmd.account) is not None:
        return [ev.InputIgnored(f"account {cmd.account} has wallet "
                                f"{custody.wallets[cmd.account]} already")]
    custody.accounts[key], custody.wallets[cmd.account] = cmd.account, cmd.wallet
    events: list[ev.Event] = [ev.WalletBound(cmd.wallet, cmd.account)]
    for held in custody.held.pop(key, []):
        events.append(engine.credit(cmd.account, held.asset, held.amount, held.deposit_id))
    return events


def deposit_confirmed(engine: Engine, fact: VaultDepositConfirmed) -> list[ev.Event]:
    if fact.deposit_id in engine.custody.vanished:
        return _reappeared(engine, fact.deposit_id)
    refusal = engine.deposit_refusal(fact.deposit_id, fact.asset, fact.amount)
    if refusal is not None:
        return [ev.InputIgnored(refusal)]
    engine.deposit_ids.add(fact.deposit_id)
    account = engine.custody.account_of(fact.wallet)
    if account is None:
        engine.custody.held.setdefault(fact.wallet.lower(), []).append(
            HeldDeposit(fact.deposit_id, fact.asset, fact.amount))
        return [ev.DepositHeld(fact.deposit_id, fact.wallet, fact.asset, fact.amount)]
    return [engine.credit(account, fact.asset, fact.amount, fact.deposit_id)]


def withdrawal_requested(engine: Engine, fact: WithdrawalRequested) -> list[ev.Event]:
    if fact.request_id in engine.custody.vanished:
        return _reappeared(engine, fact.request_id)
    if fact.request_id in engine.custody.seen:
        return [ev.InputIgnored(f"withdrawal request {fact.request_id} already applied")]
    if fact.asset not in engine.collaterals:
        return [ev.InputIgnored(f"withdrawal {fact.request_id}: {fact.asset} is no collateral")]
    custody, key = engine.custody, fact.wallet.lower()
    account = custody.account_of(fact.wallet)
    # As the vault does: a request asks for at most what the wallet has (2**256-1 is "all").
    amount = min(fact.amount, in_vault(engine, fact.wallet, fact.asset)) \
        if fact.amount.is_finite() else ZERO
    problem = _amount_problem(engine, fact.asset, amount)
    if problem is not None:
        return [ev.InputIgnored(f"withdrawal {fact.request_id}: {problem} (asked for "
                                f"{fact.amount}; {fact.wallet} has that much in the vault)")]
    custody.seen.add(fact.request_id)
    events = _give_back(engine, custody.withdrawals.pop(key, None))  # a new request replaces
    withdrawal = Withdrawal(fact.request_id, fact.wallet, account, fact.asset, amount)
    custody.withdrawals[key] = withdrawal
    events.append(ev.WithdrawalAsked(fact.request_id, fact.wallet, account, fact.asset,
                                     amount))
    if account is not None:
        events += _top_up(engine, withdrawal)
        events += _make_room(engine, withdrawal)
    return events


def withdrawal_paid(engine: Engine, fact: WithdrawalPaid) -> list[ev.Event]:
    custody, key = engine.custody, fact.wallet.lower()
    if fact.payout_id in custody.vanished:
        return _reappeared(engine, fact.payout_id)
    if fact.payout_id in custody.seen:
        return [ev.InputIgnored(f"withdrawal payout {fact.payout_id} already applied")]
    # the vault pays min(requested, balance): nothing, when the balance is gone
    problem = None if fact.amount == 0 else _amount_problem(engine, fact.asset, fact.amount)
    if problem is not None:
        return [ev.InputIgnored(f"withdrawal payout {fact.payout_id}: {problem}")]
    custody.seen.add(fact.payout_id)
    withdrawal = custody.withdrawals.get(key)
    if withdrawal is not None and withdrawal.asset == fact.asset:
        del custody.withdrawals[key]
    else:
        withdrawal = None
    account = custody.account_of(fact.wallet)
    if account is None:
        return _pay_from_held(engine, fact)
    balance = engine.ledger.balance(account, fact.asset)
    aside = withdrawal.set_aside if withdrawal is not None else ZERO
    extra = max(fact.amount - aside, ZERO)
    # The user took more than was set aside (paid by the vault after its delay while orders
    # still held it): what is available covers it first; the rest is an alarm.
    taken = min(extra, balance.available)
    if taken:
        engine.ledger.set_aside(account, fact.asset, taken)
    paid = min(fact.amount, aside + taken)
    engine.ledger.pay_out(account, fact.asset, paid)
    if aside > fact.amount:
        engine.ledger.give_back(account, fact.asset, aside - fact.amount)
    events: list[ev.Event] = [ev.CollateralWithdrawn(
        account, fact.asset, paid, fact.payout_id, engine.ledger.balance(account, fact.asset))]
    if fact.amount > paid:
        events.append(ev.VaultOverpaid(fact.payout_id, fact.wallet, fact.asset,
                                       fact.amount - paid))
    return events


def reading_started(engine: Engine, fact: VaultReadingStarted) -> list[ev.Event]:
    engine.custody.reading = True
    return []


def read_through(engine: Engine, fact: VaultReadThrough) -> list[ev.Event]:
    engine.custody.reading = False
    return [ev.VaultCaughtUp(fact.block)]


def fact_vanished(engine: Engine, fact: VaultFactVanished) -> list[ev.Event]:
    custody = engine.custody
    applied = engine.deposit_ids if fact.kind is VaultFact.DEPOSIT else custody.seen
    if fact.fact_id not in applied:
        return [ev.InputIgnored(f"vanished {fact.kind} {fact.fact_id} was never applied")]
    if fact.fact_id in custody.vanished:
        return [ev.InputIgnored(f"vanished {fact.kind} {fact.fact_id} is known to be gone")]
    account = custody.account_of(fact.wallet)
    custody.vanished[fact.fact_id] = VanishedFact(fact.kind, fact.wallet, account, fact.asset,
                                                  fact.amount)
    return [ev.AccountInDoubt(fact.fact_id, fact.kind, fact.wallet, account, fact.asset,
                              fact.amount)]


def resolve_vanished(engine: Engine, cmd: ResolveVanishedFact) -> list[ev.Event]:
    """Undo the vanished fact's effect on the ledger; refused (nothing changes) while a
    vanished deposit is engaged in orders."""
    gone = engine.custody.vanished.get(cmd.fact_id)
    if gone is None:
        return [ev.InputIgnored(f"no vanished fact {cmd.fact_id}: it was mined again, "
                                "resolved already, or never vanished")]
    account = engine.custody.account_of(gone.wallet)
    undo = {VaultFact.DEPOSIT: _take_back_deposit, VaultFact.PAYOUT: _credit_back_payout,
            VaultFact.WITHDRAWAL_REQUEST: _forget_request}[gone.kind]
    events = undo(engine, cmd.fact_id, gone, account)
    if events and isinstance(events[0], ev.InputIgnored):
        return events
    del engine.custody.vanished[cmd.fact_id]
    return [*events, ev.VanishedFactResolved(cmd.fact_id, gone.kind, account, gone.asset,
                                             gone.amount)]


def _reappeared(engine: Engine, fact_id: str) -> list[ev.Event]:
    gone = engine.custody.vanished.pop(fact_id)
    return [ev.VanishedFactReappeared(fact_id, engine.custody.account_of(gone.wallet))]


def _take_back_deposit(engine: Engine, fact_id: str, gone: VanishedFact,
                       account: str | None) -> list[ev.Event]:
    if account is None:
        key = gone.wallet.lower()
        engine.custody.held[key] = [d for d in engine.custody.held.get(key, [])
                                    if d.deposit_id != fact_id]
        return []
    available = engine.ledger.balance(account, gone.asset).available
    if available < gone.amount:
        return [ev.InputIgnored(
            f"deposit {fact_id}: {gone.amount} {gone.asset} to take back, account {account} "
            f"has {available} available; resolve once its orders have ended")]
    engine.ledger.set_aside(account, gone.asset, gone.amount)
    engine.ledger.pay_out(account, gone.asset, gone.amount)
    return [ev.CollateralWithdrawn(account, gone.asset, gone.amount, fact_id,
                                   engine.ledger.balance(account, gone.asset))]


def _credit_back_payout(engine: Engine, fact_id: str, gone: VanishedFact,
                        account: str | None) -> list[ev.Event]:
    if account is None:
        engine.custody.held.setdefault(gone.wallet.lower(), []).append(
            HeldDeposit(fact_id, gone.asset, gone.amount))
        return []
    return [engine.credit(account, gone.asset, gone.amount, fact_id)]


def _forget_request(engine: Engine, fact_id: str, gone: VanishedFact,
                    account: str | None) -> list[ev.Event]:
    key = gone.wallet.lower()
    withdrawal = engine.custody.withdrawals.get(key)
    if withdrawal is None or withdrawal.request_id != fact_id:
        return []  # paid or replaced since: nothing of it is left to undo
    del engine.custody.withdrawals[key]
    return _give_back(engine, withdrawal)


def in_vault(engine: Engine, wallet: str, asset: str) -> Decimal:
    """What ``wallet`` has in the vault as the engine knows it: its account's balance less
    what was spent and withdrawn, or its held deposits."""
    account = engine.custody.account_of(wallet)
    if account is None:
        return engine.custody.held_total(wallet, asset)
    b = engine.ledger.balance(account, asset)
    return b.deposited - b.spent - b.withdrawn


def _amount_problem(engine: Engine, asset: str, amount: Decimal) -> str | None:
    """Why ``amount`` of ``asset`` cannot be a withdrawal (the deposits' bounds), if it
    cannot."""
    collateral = engine.collaterals.get(asset)
    if collateral is None:
        return f"{asset} is no collateral"
    refusal = amount_refusal(amount, collateral.decimals, asset, RejectReason)
    return None if refusal is None else refusal.text


# --- after every input -------------------------------------------------------------------------


def follow_up(engine: Engine) -> list[ev.Event]:
    """Collateral released since goes to the pending withdrawals first; each asks for its
    early release once nothing could add to it any more."""
    events: list[ev.Event] = []
    for withdrawal in engine.custody.withdrawals.values():
        if withdrawal.release_requested:
            continue
        if withdrawal.account is not None:
            events += _top_up(engine, withdrawal)
        if _complete(engine, withdrawal):
            withdrawal.release_requested = True
            amount = withdrawal.set_aside if withdrawal.account is not None else min(
                withdrawal.requested, engine.custody.held_total(withdrawal.wallet,
                                                                withdrawal.asset))
            events.append(ev.WithdrawalReleaseRequested(withdrawal.request_id, withdrawal.wallet,
                                                        withdrawal.asset, amount))
    return events


def _complete(engine: Engine, withdrawal: Withdrawal) -> bool:
    if withdrawal.account is None or withdrawal.short == 0:
        return True
    return not any(o.account == withdrawal.account and o.collateral_asset == withdrawal.asset
                   and (o.is_open or o.state in (OrderState.MINTING, OrderState.MINT_RETRY_WAIT))
                   for o in engine.orders.values())


def _top_up(engine: Engine, withdrawal: Withdrawal) -> list[ev.Event]:
    assert withdrawal.account is not None
    take = min(withdrawal.short,
               engine.ledger.balance(withdrawal.account, withdrawal.asset).available)
    if take <= 0:
        return []
    engine.ledger.set_aside(withdrawal.account, withdrawal.asset, take)
    withdrawal.set_aside += take
    return [ev.CollateralSetAside(withdrawal.account, withdrawal.asset, take,
                                  withdrawal.request_id,
                                  engine.ledger.balance(withdrawal.account, withdrawal.asset))]


def _make_room(engine: Engine, withdrawal: Withdrawal) -> list[ev.Event]:
    """Reduce or cancel the account's unengaged orders, newest first, until the withdrawal is
    covered; if they are not enough, end the engaged ones (they release at settlement)."""
    events: list[ev.Event] = []
    mine = sorted((o for o in engine.open_orders() if o.account == withdrawal.account
                   and o.collateral_asset == withdrawal.asset), key=lambda o: -o.id)
    for order in (o for o in mine if o.state is OrderState.READY):
        if withdrawal.short <= 0:
            return events
        events += _shrink(engine, order, withdrawal.short)
        events += _top_up(engine, withdrawal)
    if withdrawal.short > 0:
        for order in (o for o in mine if o.state is OrderState.ENGAGED):
            events += engine.end_order(order, OrderStatus.CANCELED, reason=WITHDRAWAL_REASON)
    return events


def _shrink(engine: Engine, order: IndexOrder, short: Decimal) -> list[ev.Event]:
    smaller = order.collateral - short
    if order.remaining > short and engine.reduce_refusal(order, smaller) is None:
        return engine.reduce(order, smaller, reason="reduced: part of its collateral is being "
                                                    "withdrawn")
    return engine.end_order(order, OrderStatus.CANCELED, reason=WITHDRAWAL_REASON)


def _give_back(engine: Engine, withdrawal: Withdrawal | None) -> list[ev.Event]:
    if withdrawal is None or withdrawal.account is None or not withdrawal.set_aside:
        return []
    engine.ledger.give_back(withdrawal.account, withdrawal.asset, withdrawal.set_aside)
    return [ev.CollateralGivenBack(withdrawal.account, withdrawal.asset, withdrawal.set_aside,
                                   withdrawal.request_id,
                                   engine.ledger.balance(withdrawal.account, withdrawal.asset))]


def _pay_from_held(engine: Engine, fact: WithdrawalPaid) -> list[ev.Event]:
    """A wallet without an account takes back what it deposited, oldest deposits first."""
    key, due = fact.wallet.lower(), fact.amount
    kept: list[HeldDeposit] = []
    for held in engine.custody.held.get(key, []):
        take = min(due, held.amount) if held.asset == fact.asset else ZERO
        due -= take
        if held.amount > take:
            kept.append(HeldDeposit(held.deposit_id, held.asset, held.amount - take))
    engine.custody.held[key] = kept
    events: list[ev.Event] = [ev.HeldDepositsWithdrawn(fact.payout_id, fact.wallet, fact.asset,
                                                       fact.amount - due)]
    if due > 0:
        events.append(ev.VaultOverpaid(fact.payout_id, fact.wallet, fact.asset, due))
    return events
