"""The vault's facts applied: wallets bound, deposits credited or held, withdrawals set aside
and released, payouts, and the facts a deep reorganisation took away and the operator's
resolutions (what the engine knows of the vault is ``custody.py``'s data).

The vault keeps each user's collateral until a settlement charges it, and lets a user leave
without anyone's permission: ``request_withdrawal`` and, after the vault's delay, ``withdraw``,
which pays min(requested, balance). So the engine must never count on collateral a user is
taking back. A request sets aside the account's available collateral at once; if that is not
enough, the account's orders make room (unengaged ones are reduced or cancelled, engaged ones
end when their batch settles), and whatever they release goes to the withdrawal first. Once
the withdrawal has all it asked for, or the account has nothing left that could add to it
(no open order, no settlement still to charge the vault), the solver asks for the vault's
early ``release``: the vault then pays out exactly what was set aside.
"""

from __future__ import annotations

from decimal import Decimal

from solver.core import events as ev
from solver.core.actions import credit, end_order, reduce, reduce_refusal
from solver.core.commands import (
    BindWallet,
    DepositConfirmed,
    OrderCancelledOnChain,
    ResolveVanishedFact,
    VaultDepositConfirmed,
    VaultFact,
    VaultFactVanished,
    VaultReadingStarted,
    VaultReadThrough,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.custody import (
    WITHDRAWAL_REASON,
    HeldDeposit,
    VanishedFact,
    Withdrawal,
    WithdrawalState,
    WithdrawalTrigger,
)
from solver.core.money import ZERO
from solver.core.orders import (
    IndexOrder,
    OrderState,
    OrderStatus,
    RejectReason,
    amount_refusal,
    changeable,
)
from solver.core.state import Events, State


def deposit(state: State, fact: DepositConfirmed) -> Events:
    refusal = deposit_refusal(state, fact.deposit_id, fact.asset, fact.amount)
    if refusal is not None:
        return [ev.InputIgnored(refusal)]
    state.deposit_ids.add(fact.deposit_id)
    state.custody.wallets.setdefault(fact.account, fact.wallet or fact.account)
    return [credit(state, fact.account, fact.asset, fact.amount, fact.deposit_id)]


def deposit_refusal(state: State, deposit_id: str, asset: str, amount: Decimal) -> str | None:
    if deposit_id in state.deposit_ids:
        return f"deposit {deposit_id} already credited"
    collateral = state.collaterals.get(asset)
    if collateral is None:
        return f"deposit {deposit_id}: {asset} is no collateral"
    refusal = amount_refusal(amount, collateral.decimals, asset, RejectReason)
    return None if refusal is None else f"deposit {deposit_id}: {refusal.text}"


def bind_wallet(state: State, cmd: BindWallet) -> list[ev.Event]:
    custody, key = state.custody, cmd.wallet.lower()
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
        events.append(credit(state, cmd.account, held.asset, held.amount, held.deposit_id))
    return events


def deposit_confirmed(state: State, fact: VaultDepositConfirmed) -> list[ev.Event]:
    if fact.deposit_id in state.custody.vanished:
        return _reappeared(state, fact.deposit_id)
    refusal = deposit_refusal(state, fact.deposit_id, fact.asset, fact.amount)
    if refusal is not None:
        return [ev.InputIgnored(refusal)]
    state.deposit_ids.add(fact.deposit_id)
    account = state.custody.account_of(fact.wallet)
    if account is None:
        state.custody.held.setdefault(fact.wallet.lower(), []).append(
            HeldDeposit(fact.deposit_id, fact.asset, fact.amount))
        return [ev.DepositHeld(fact.deposit_id, fact.wallet, fact.asset, fact.amount)]
    return [credit(state, account, fact.asset, fact.amount, fact.deposit_id)]


def withdrawal_requested(state: State, fact: WithdrawalRequested) -> list[ev.Event]:
    if fact.request_id in state.custody.vanished:
        return _reappeared(state, fact.request_id)
    if fact.request_id in state.custody.seen:
        return [ev.InputIgnored(f"withdrawal request {fact.request_id} already applied")]
    if fact.asset not in state.collaterals:
        return [ev.InputIgnored(f"withdrawal {fact.request_id}: {fact.asset} is no collateral")]
    custody, key = state.custody, fact.wallet.lower()
    account = custody.account_of(fact.wallet)
    # As the vault does: a request asks for at most what the wallet has (2**256-1 is "all").
    amount = min(fact.amount, in_vault(state, fact.wallet, fact.asset)) \
        if fact.amount.is_finite() else ZERO
    problem = _amount_problem(state, fact.asset, amount)
    if problem is not None:
        return [ev.InputIgnored(f"withdrawal {fact.request_id}: {problem} (asked for "
                                f"{fact.amount}; {fact.wallet} has that much in the vault)")]
    custody.seen.add(fact.request_id)
    replaced = custody.withdrawals.pop(key, None)  # the vault keeps one request per user
    if replaced is not None:
        replaced.move(WithdrawalTrigger.REPLACE)
    events = _give_back(state, replaced)
    withdrawal = Withdrawal(fact.request_id, fact.wallet, account, fact.asset, amount)
    custody.withdrawals[key] = withdrawal
    events.append(ev.WithdrawalAsked(fact.request_id, fact.wallet, account, fact.asset,
                                     amount))
    if account is not None:
        events += _top_up(state, withdrawal)
        events += _make_room(state, withdrawal)
    return events


def withdrawal_paid(state: State, fact: WithdrawalPaid) -> list[ev.Event]:
    custody, key = state.custody, fact.wallet.lower()
    if fact.payout_id in custody.vanished:
        return _reappeared(state, fact.payout_id)
    if fact.payout_id in custody.seen:
        return [ev.InputIgnored(f"withdrawal payout {fact.payout_id} already applied")]
    # the vault pays min(requested, balance): nothing, when the balance is gone
    problem = None if fact.amount == 0 else _amount_problem(state, fact.asset, fact.amount)
    if problem is not None:
        return [ev.InputIgnored(f"withdrawal payout {fact.payout_id}: {problem}")]
    custody.seen.add(fact.payout_id)
    withdrawal = custody.withdrawals.get(key)
    if withdrawal is not None and withdrawal.asset == fact.asset:
        del custody.withdrawals[key]
        withdrawal.move(WithdrawalTrigger.PAY)
    else:
        withdrawal = None
    account = custody.account_of(fact.wallet)
    if account is None:
        return _pay_from_held(state, fact)
    balance = state.ledger.balance(account, fact.asset)
    aside = withdrawal.set_aside if withdrawal is not None else ZERO
    extra = max(fact.amount - aside, ZERO)
    # The user took more than was set aside (paid by the vault after its delay while orders
    # still held it): what is available covers it first; the rest is an alarm.
    taken = min(extra, balance.available)
    if taken:
        state.ledger.set_aside(account, fact.asset, taken)
    paid = min(fact.amount, aside + taken)
    state.ledger.pay_out(account, fact.asset, paid)
    if aside > fact.amount:
        state.ledger.give_back(account, fact.asset, aside - fact.amount)
    events: list[ev.Event] = [ev.CollateralWithdrawn(
        account, fact.asset, paid, fact.payout_id, state.ledger.balance(account, fact.asset))]
    if fact.amount > paid:
        events.append(ev.VaultOverpaid(fact.payout_id, fact.wallet, fact.asset,
                                       fact.amount - paid))
    return events


def reading_started(state: State, fact: VaultReadingStarted) -> list[ev.Event]:
    state.custody.reading = True
    return []


def read_through(state: State, fact: VaultReadThrough) -> list[ev.Event]:
    state.custody.reading = False
    return [ev.VaultCaughtUp(fact.block)]


def fact_vanished(state: State, fact: VaultFactVanished) -> list[ev.Event]:
    custody = state.custody
    applied = state.deposit_ids if fact.kind is VaultFact.DEPOSIT else custody.seen
    if fact.fact_id not in applied:
        return [ev.InputIgnored(f"vanished {fact.kind} {fact.fact_id} was never applied")]
    if fact.fact_id in custody.vanished:
        return [ev.InputIgnored(f"vanished {fact.kind} {fact.fact_id} is known to be gone")]
    account = custody.account_of(fact.wallet)
    custody.vanished[fact.fact_id] = VanishedFact(fact.kind, fact.wallet, account, fact.asset,
                                                  fact.amount)
    return [ev.AccountInDoubt(fact.fact_id, fact.kind, fact.wallet, account, fact.asset,
                              fact.amount)]


def resolve_vanished(state: State, cmd: ResolveVanishedFact) -> list[ev.Event]:
    """Undo the vanished fact's effect on the ledger; refused (nothing changes) while a
    vanished deposit is engaged in orders."""
    gone = state.custody.vanished.get(cmd.fact_id)
    if gone is None:
        return [ev.InputIgnored(f"no vanished fact {cmd.fact_id}: it was mined again, "
                                "resolved already, or never vanished")]
    account = state.custody.account_of(gone.wallet)
    undo = {VaultFact.DEPOSIT: _take_back_deposit, VaultFact.PAYOUT: _credit_back_payout,
            VaultFact.WITHDRAWAL_REQUEST: _forget_request}[gone.kind]
    events = undo(state, cmd.fact_id, gone, account)
    if events and isinstance(events[0], ev.InputIgnored):
        return events
    del state.custody.vanished[cmd.fact_id]
    return [*events, ev.VanishedFactResolved(cmd.fact_id, gone.kind, account, gone.asset,
                                             gone.amount)]


def _reappeared(state: State, fact_id: str) -> list[ev.Event]:
    gone = state.custody.vanished.pop(fact_id)
    return [ev.VanishedFactReappeared(fact_id, state.custody.account_of(gone.wallet))]


def _take_back_deposit(state: State, fact_id: str, gone: VanishedFact,
                       account: str | None) -> list[ev.Event]:
    if account is None:
        key = gone.wallet.lower()
        state.custody.held[key] = [d for d in state.custody.held.get(key, [])
                                    if d.deposit_id != fact_id]
        return []
    available = state.ledger.balance(account, gone.asset).available
    if available < gone.amount:
        return [ev.InputIgnored(
            f"deposit {fact_id}: {gone.amount} {gone.asset} to take back, account {account} "
            f"has {available} available; resolve once its orders have ended")]
    state.ledger.set_aside(account, gone.asset, gone.amount)
    state.ledger.pay_out(account, gone.asset, gone.amount)
    return [ev.CollateralWithdrawn(account, gone.asset, gone.amount, fact_id,
                                   state.ledger.balance(account, gone.asset))]


def _credit_back_payout(state: State, fact_id: str, gone: VanishedFact,
                        account: str | None) -> list[ev.Event]:
    if account is None:
        state.custody.held.setdefault(gone.wallet.lower(), []).append(
            HeldDeposit(fact_id, gone.asset, gone.amount))
        return []
    return [credit(state, account, gone.asset, gone.amount, fact_id)]


def _forget_request(state: State, fact_id: str, gone: VanishedFact,
                    account: str | None) -> list[ev.Event]:
    key = gone.wallet.lower()
    withdrawal = state.custody.withdrawals.get(key)
    if withdrawal is None or withdrawal.request_id != fact_id:
        return []  # paid or replaced since: nothing of it is left to undo
    del state.custody.withdrawals[key]
    withdrawal.move(WithdrawalTrigger.FORGET)
    return _give_back(state, withdrawal)


def in_vault(state: State, wallet: str, asset: str) -> Decimal:
    """What ``wallet`` has in the vault as the engine knows it: its account's balance less
    what was spent and withdrawn, or its held deposits."""
    account = state.custody.account_of(wallet)
    if account is None:
        return state.custody.held_total(wallet, asset)
    b = state.ledger.balance(account, asset)
    return b.deposited - b.spent - b.withdrawn


def _amount_problem(state: State, asset: str, amount: Decimal) -> str | None:
    """Why ``amount`` of ``asset`` cannot be a withdrawal (the deposits' bounds), if it
    cannot."""
    collateral = state.collaterals.get(asset)
    if collateral is None:
        return f"{asset} is no collateral"
    refusal = amount_refusal(amount, collateral.decimals, asset, RejectReason)
    return None if refusal is None else refusal.text


# --- after every input -------------------------------------------------------------------------


def follow_up(state: State) -> list[ev.Event]:
    """Collateral released since goes to the pending withdrawals first; each asks for its
    early release once nothing could add to it any more."""
    events: list[ev.Event] = []
    for withdrawal in state.custody.withdrawals.values():
        if withdrawal.state is not WithdrawalState.COLLECTING:
            continue
        if withdrawal.account is not None:
            events += _top_up(state, withdrawal)
        if _complete(state, withdrawal):
            withdrawal.move(WithdrawalTrigger.REQUEST_RELEASE)
            amount = withdrawal.set_aside if withdrawal.account is not None else min(
                withdrawal.requested, state.custody.held_total(withdrawal.wallet,
                                                                withdrawal.asset))
            events.append(ev.WithdrawalReleaseRequested(withdrawal.request_id, withdrawal.wallet,
                                                        withdrawal.asset, amount))
    return events


def _complete(state: State, withdrawal: Withdrawal) -> bool:
    if withdrawal.account is None or withdrawal.short == 0:
        return True
    return not any(o.account == withdrawal.account and o.collateral_asset == withdrawal.asset
                   and (o.is_open or o.state in (OrderState.MINTING, OrderState.MINT_RETRY_WAIT))
                   for o in state.orders.values())


def _top_up(state: State, withdrawal: Withdrawal) -> list[ev.Event]:
    assert withdrawal.account is not None
    take = min(withdrawal.short,
               state.ledger.balance(withdrawal.account, withdrawal.asset).available)
    if take <= 0:
        return []
    state.ledger.set_aside(withdrawal.account, withdrawal.asset, take)
    withdrawal.set_aside += take
    return [ev.CollateralSetAside(withdrawal.account, withdrawal.asset, take,
                                  withdrawal.request_id,
                                  state.ledger.balance(withdrawal.account, withdrawal.asset))]


def _make_room(state: State, withdrawal: Withdrawal) -> list[ev.Event]:
    """Reduce or cancel the account's unengaged orders, newest first, until the withdrawal is
    covered; if they are not enough, end the engaged ones (they release at settlement)."""
    events: list[ev.Event] = []
    mine = sorted((o for o in state.open_orders() if o.account == withdrawal.account
                   and o.collateral_asset == withdrawal.asset), key=lambda o: -o.id)
    for order in (o for o in mine if o.state is OrderState.READY):
        if withdrawal.short <= 0:
            return events
        events += _shrink(state, order, withdrawal.short)
        events += _top_up(state, withdrawal)
    if withdrawal.short > 0:
        for order in (o for o in mine if o.state is OrderState.ENGAGED):
            events += end_order(state, order, OrderStatus.CANCELED, reason=WITHDRAWAL_REASON)
    return events


def _shrink(state: State, order: IndexOrder, short: Decimal) -> list[ev.Event]:
    smaller = order.collateral - short
    if order.remaining > short and reduce_refusal(state, order, smaller) is None:
        return reduce(state, order, smaller, reason="reduced: part of its collateral is being "
                                                    "withdrawn")
    return end_order(state, order, OrderStatus.CANCELED, reason=WITHDRAWAL_REASON)


def _give_back(state: State, withdrawal: Withdrawal | None) -> list[ev.Event]:
    if withdrawal is None or withdrawal.account is None or not withdrawal.set_aside:
        return []
    state.ledger.give_back(withdrawal.account, withdrawal.asset, withdrawal.set_aside)
    return [ev.CollateralGivenBack(withdrawal.account, withdrawal.asset, withdrawal.set_aside,
                                   withdrawal.request_id,
                                   state.ledger.balance(withdrawal.account, withdrawal.asset))]


def _pay_from_held(state: State, fact: WithdrawalPaid) -> list[ev.Event]:
    """A wallet without an account takes back what it deposited, oldest deposits first."""
    key, due = fact.wallet.lower(), fact.amount
    kept: list[HeldDeposit] = []
    for held in state.custody.held.get(key, []):
        take = min(due, held.amount) if held.asset == fact.asset else ZERO
        due -= take
        if held.amount > take:
            kept.append(HeldDeposit(held.deposit_id, held.asset, held.amount - take))
    state.custody.held[key] = kept
    events: list[ev.Event] = [ev.HeldDepositsWithdrawn(fact.payout_id, fact.wallet, fact.asset,
                                                       fact.amount - due)]
    if due > 0:
        events.append(ev.VaultOverpaid(fact.payout_id, fact.wallet, fact.asset, due))
    return events


def order_cancelled(state: State, fact: OrderCancelledOnChain) -> Events:
    """The wallet cancelled its signed order on-chain: the engine ends it as a user's cancel
    (what its batch bought settles within the vault's grace, the rest is released), however
    long the grace. A second delivery, or the cancel of an order closed or unknown here,
    changes nothing."""
    account = state.custody.account_of(fact.wallet)
    order = None if account is None else state.order(account, fact.name)
    if order is not None and (order.signed is None or order.signed.name != fact.name
                              or order.signed.wallet.lower() != fact.wallet.lower()):
        order = None  # named so by a change, not signed so: the vault cancelled another
    found = changeable(order, fact.name)
    if not isinstance(found, IndexOrder):
        return [ev.InputIgnored(f"on-chain cancel of {fact.name} by {fact.wallet}: "
                                f"{found.text}")]
    return end_order(state, found, OrderStatus.CANCELED,
                     reason="canceled on-chain by its wallet")
