"""The vault as the engine sees it: wallets, held deposits and withdrawals (hand-computed)."""

from __future__ import annotations

from solver.core import events as ev
from solver.core.commands import (
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BindWallet,
    CancelIndexOrder,
    ResolveVanishedFact,
    VaultDepositConfirmed,
    VaultFact,
    VaultFactVanished,
    VaultReadingStarted,
    VaultReadThrough,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.custody import WITHDRAWAL_REASON
from solver.core.invariants import violations
from solver.core.orders import OrderState, OrderStatus, RejectReason
from tests.support.builders import D, Desk, desk

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
STRANGER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def vault_deposit(d: Desk, deposit_id: str, amount: str, wallet: str = ALICE) -> ev.Transaction:
    return d.apply(VaultDepositConfirmed, deposit_id, wallet, "USDC", D(amount))


def balance(d: Desk, account: str = "alice") -> tuple[D, D, D, D]:
    b = d.engine.ledger.balance(account, "USDC")
    return b.available, b.reserved, b.withdrawing, b.withdrawn


def test_a_deposit_is_credited_to_the_account_whose_wallet_sent_it() -> None:
    d = desk()
    [bound] = d.apply(BindWallet, ALICE, "alice").of_type(ev.WalletBound)
    assert bound == ev.WalletBound(ALICE, "alice")
    [credited] = vault_deposit(d, "v-1", "1000", ALICE.lower()).of_type(ev.CollateralDeposited)
    assert (credited.account, credited.amount, credited.deposit_id) == ("alice", D(1000), "v-1")
    assert vault_deposit(d, "v-1", "1000").of_type(ev.InputIgnored)  # delivered twice
    assert balance(d) == (D(1000), 0, 0, 0)


def test_a_deposit_from_an_unknown_wallet_is_held_and_credited_when_the_wallet_is_bound() -> None:
    d = desk()
    [held] = vault_deposit(d, "v-1", "700").of_type(ev.DepositHeld)
    assert (held.wallet, held.amount) == (ALICE, D(700))
    assert d.engine.custody.held_total(ALICE, "USDC") == D(700)
    assert d.engine.ledger.balances() == {}
    bound = d.apply(BindWallet, ALICE, "alice")
    [credited] = bound.of_type(ev.CollateralDeposited)
    assert (credited.account, credited.amount, credited.deposit_id) == ("alice", D(700), "v-1")
    assert d.engine.custody.held_total(ALICE, "USDC") == 0


def test_binding_is_one_wallet_per_account_and_one_account_per_wallet() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    assert d.apply(BindWallet, ALICE, "alice").events == ()  # every start binds again
    assert d.apply(BindWallet, ALICE.lower(), "bob").of_type(ev.InputIgnored)
    assert d.apply(BindWallet, "0x" + "1" * 40, "alice").of_type(ev.InputIgnored)


def test_an_order_naming_another_wallet_than_the_accounts_is_refused() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    [refused] = d.order("alice", "o1", "500", wallet="0x" + "1" * 40).of_type(
        ev.IndexOrderRejected)
    assert refused.reason is RejectReason.WRONG_WALLET and ALICE in refused.text
    [accepted] = d.order("alice", "o2", "500").of_type(ev.IndexOrderAccepted)
    assert accepted.order.wallet == ALICE


def test_a_withdrawal_within_what_is_available_is_set_aside_and_released_at_once() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "600")
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300))
    [aside] = t.of_type(ev.CollateralSetAside)
    assert aside.amount == D(300)
    [release] = t.of_type(ev.WithdrawalReleaseRequested)
    assert (release.request_id, release.wallet, release.amount) == ("w-1", ALICE, D(300))
    assert balance(d) == (D(100), D(600), D(300), 0)
    # an order can no longer use it
    assert d.order("alice", "o2", "200").of_type(ev.IndexOrderRejected)
    [paid] = d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(300)).of_type(
        ev.CollateralWithdrawn)
    assert paid.amount == D(300)
    assert balance(d) == (D(100), D(600), 0, D(300))
    assert d.engine.custody.withdrawals == {}
    assert violations(d.engine) == []


def test_a_withdrawal_beyond_what_is_available_reduces_and_cancels_unengaged_orders() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "2000")
    d.order("alice", "o1", "800")
    d.order("alice", "o2", "900")
    d.order("alice", "o3", "250")
    # 50 available, 1000 asked: o3 (newest, 250) is cancelled, then o2 (900) gives the 700
    # still missing and keeps 200; o1 is not touched.
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(1000))
    [cancelled] = t.of_type(ev.IndexOrderCompleted)
    assert (cancelled.order.client_order_id, cancelled.status, cancelled.reason) == (
        "o3", OrderStatus.CANCELED, WITHDRAWAL_REASON)
    [reduced] = t.of_type(ev.IndexOrderReduced)
    assert (reduced.order.client_order_id, reduced.collateral) == ("o2", D(200))
    assert [e.amount for e in t.of_type(ev.CollateralSetAside)] == [D(50), D(250), D(700)]
    assert t.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(1000)
    assert balance(d) == (0, D(1000), D(1000), 0)
    assert violations(d.engine) == []


def test_an_order_with_more_than_the_withdrawal_needs_is_reduced_with_a_reason() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "1000")
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(400))
    [reduced] = t.of_type(ev.IndexOrderReduced)
    assert (reduced.collateral, reduced.released, reduced.request_id) == (D(600), D(400), "")
    assert "withdrawn" in reduced.reason
    assert t.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(400)
    assert balance(d) == (0, D(600), D(400), 0)


def test_an_engaged_order_ends_and_its_remainder_goes_to_the_withdrawal_before_release() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "1000")
    requests = d.plan().of_type(ev.AssetOrderRequested)  # A1 8 @ 100, A2 1 @ 200 for 1 unit
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(500))
    assert t.of_type(ev.IndexOrderEndPending) and not t.of_type(ev.WithdrawalReleaseRequested)
    order = d.engine.order("alice", "o1")
    assert order is not None and order.state is OrderState.ENDING
    # half a unit is bought: 500 spent, 500 released at settlement, all of it to the withdrawal
    d.apply(AssetOrderFilled, requests[0].asset_order_id, "t1", D(100), D(4), D(0), "USDC")
    d.apply(AssetOrderEnded, requests[0].asset_order_id, AssetOrderOutcome.EXPIRED, D(4))
    d.apply(AssetOrderFilled, requests[1].asset_order_id, "t2", D(200), D("0.5"), D(0), "USDC")
    settled = d.apply(AssetOrderEnded, requests[1].asset_order_id, AssetOrderOutcome.EXPIRED,
                      D("0.5"))
    assert settled.of_type(ev.CollateralSetAside)[0].amount == D(500)
    # all it asked for is set aside: the vault pays exactly that, and the settlement still to
    # come charges the 500 spent from what is left
    assert settled.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(500)
    assert balance(d) == (0, 0, D(500), 0)
    assert violations(d.engine) == []


def test_a_withdrawal_larger_than_everything_releases_what_is_left_once_nothing_holds_it() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "400")
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(5000))
    assert t.of_type(ev.IndexOrderCompleted)[0].status is OrderStatus.CANCELED
    assert t.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(1000)
    d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(1000))  # min(requested, balance)
    assert balance(d) == (0, 0, 0, D(1000))
    assert violations(d.engine) == []


def test_a_new_request_replaces_the_earlier_one() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "900")
    d.plan()  # engaged: the first request waits for its batch
    d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300))
    t = d.apply(WithdrawalRequested, "w-2", ALICE, "USDC", D(50))
    [given_back] = t.of_type(ev.CollateralGivenBack)
    assert (given_back.request_id, given_back.amount) == ("w-1", D(100))
    assert t.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(50)
    assert balance(d) == (D(50), D(900), D(50), 0)


def test_a_payout_beyond_what_was_set_aside_takes_what_is_available_and_raises_an_alarm(
        ) -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.order("alice", "o1", "900")
    d.plan()
    d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300))  # 100 set aside, o1 engaged
    t = d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(300))
    [paid] = t.of_type(ev.CollateralWithdrawn)
    assert paid.amount == D(100)
    [alarm] = t.of_type(ev.VaultOverpaid)
    assert alarm.amount == D(200)


def test_a_wallet_without_an_account_takes_back_its_held_deposits() -> None:
    d = desk()
    vault_deposit(d, "v-1", "700")
    t = d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(1000))
    assert t.of_type(ev.WithdrawalReleaseRequested)[0].amount == D(700)
    [taken] = d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(700)).of_type(
        ev.HeldDepositsWithdrawn)
    assert taken.amount == D(700)
    assert d.engine.custody.held_total(ALICE, "USDC") == 0


def test_a_withdrawal_request_or_payout_delivered_twice_counts_once() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300))
    assert d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300)).of_type(ev.InputIgnored)
    d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(300))
    assert d.apply(WithdrawalPaid, "paid-1", ALICE, "USDC", D(300)).of_type(ev.InputIgnored)
    assert balance(d) == (D(700), 0, 0, D(300))


def test_a_withdrawal_or_payout_out_of_bounds_is_ignored_with_the_reason() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    for amount, words in (("NaN", "greater than zero"), ("0", "greater than zero"),
                          ("1.0000001", "decimals")):
        [ignored] = d.apply(WithdrawalRequested, f"w-{amount}", ALICE, "USDC",
                            D(amount)).of_type(ev.InputIgnored)
        assert words in ignored.reason
        if amount != "0":  # a payout of nothing closes the withdrawal (the balance was gone)
            [ignored] = d.apply(WithdrawalPaid, f"p-{amount}", ALICE, "USDC",
                                D(amount)).of_type(ev.InputIgnored)
            assert words in ignored.reason
    assert d.apply(WithdrawalPaid, "p-big", ALICE, "USDC", D("1e400")).of_type(
        ev.InputIgnored)
    assert d.apply(WithdrawalRequested, "w-eur", ALICE, "EUR", D(1)).of_type(ev.InputIgnored)
    assert balance(d) == (D(1000), 0, 0, 0)


def test_a_request_for_more_than_the_vault_holds_asks_for_all_of_it_as_the_vault_does() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    everything = D(2**256 - 1).scaleb(-6)  # request_withdrawal(2**256-1): "all of it"
    [asked] = d.apply(WithdrawalRequested, "w-all", ALICE, "USDC", everything).of_type(
        ev.WithdrawalAsked)
    assert asked.amount == D(1000)
    assert balance(d)[2] == D(1000)  # set aside, not ignored
    [ignored] = d.apply(WithdrawalRequested, "w-none", STRANGER, "USDC", D(5)).of_type(
        ev.InputIgnored)
    assert "has that much in the vault" in ignored.reason


# --- vault facts a deep reorganisation took away ------------------------------------------------


def vanished(d: Desk, fact_id: str, kind: VaultFact, amount: str) -> ev.Transaction:
    return d.apply(VaultFactVanished, fact_id, kind, ALICE, "USDC", D(amount))


def test_a_vanished_deposit_stops_the_accounts_new_orders_until_it_is_mined_again() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    assert d.order("alice", "o1", "400").of_type(ev.IndexOrderAccepted)
    [doubt] = vanished(d, "v-1", VaultFact.DEPOSIT, "1000").of_type(ev.AccountInDoubt)
    assert (doubt.account, doubt.amount, doubt.kind) == ("alice", D(1000), VaultFact.DEPOSIT)
    [refused] = d.order("alice", "o2", "100").of_type(ev.IndexOrderRejected)
    assert refused.reason is RejectReason.ACCOUNT_IN_DOUBT
    assert "deposit v-1" in refused.text and "reorganisation" in refused.text
    assert d.engine.order("alice", "o1").is_open  # nothing engaged is abandoned
    assert d.order("bob", "o3", "100").of_type(ev.IndexOrderRejected)[0].reason \
        is not RejectReason.ACCOUNT_IN_DOUBT  # no one else is stopped
    [back] = vault_deposit(d, "v-1", "1000").of_type(ev.VanishedFactReappeared)
    assert back == ev.VanishedFactReappeared("v-1", "alice")
    assert balance(d) == (D(600), D(400), 0, 0)  # credited once
    assert d.order("alice", "o2b", "100").of_type(ev.IndexOrderAccepted)


def test_an_operator_resolves_a_vanished_deposit_once_its_orders_have_ended() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "300")
    vault_deposit(d, "v-2", "1000")
    d.order("alice", "o1", "1200")
    vanished(d, "v-2", VaultFact.DEPOSIT, "1000")
    [refused] = d.apply(ResolveVanishedFact, "v-2").of_type(ev.InputIgnored)
    assert "100 available" in refused.reason and "orders have ended" in refused.reason
    d.apply(CancelIndexOrder, "alice", "o1")
    t = d.apply(ResolveVanishedFact, "v-2")
    [taken] = t.of_type(ev.CollateralWithdrawn)
    assert (taken.amount, taken.payout_id) == (D(1000), "v-2")
    assert t.of_type(ev.VanishedFactResolved)
    assert balance(d) == (D(300), 0, 0, D(1000))
    assert not violations(d.engine)
    assert d.order("alice", "o2", "200").of_type(ev.IndexOrderAccepted)
    assert d.apply(ResolveVanishedFact, "v-2").of_type(ev.InputIgnored)


def test_a_vanished_payout_is_credited_back_and_a_vanished_request_gives_back() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    vault_deposit(d, "v-1", "1000")
    d.apply(WithdrawalRequested, "w-1", ALICE, "USDC", D(300))
    d.apply(WithdrawalPaid, "p-1", ALICE, "USDC", D(300))
    assert vanished(d, "p-1", VaultFact.PAYOUT, "300").of_type(ev.AccountInDoubt)
    [credited] = d.apply(ResolveVanishedFact, "p-1").of_type(ev.CollateralDeposited)
    assert credited.amount == D(300)
    assert balance(d)[0] == D(1000)
    d.apply(WithdrawalRequested, "w-2", ALICE, "USDC", D(200))
    assert balance(d)[2] == D(200)
    vanished(d, "w-2", VaultFact.WITHDRAWAL_REQUEST, "200")
    [given] = d.apply(ResolveVanishedFact, "w-2").of_type(ev.CollateralGivenBack)
    assert given.amount == D(200)
    assert balance(d)[0] == D(1000) and not d.engine.custody.withdrawals


def test_a_fact_never_applied_cannot_vanish() -> None:
    d = desk()
    assert vanished(d, "v-9", VaultFact.DEPOSIT, "10").of_type(ev.InputIgnored)
    assert d.engine.custody.vanished == {}


def test_an_order_refused_for_collateral_while_the_vault_is_being_read_says_so() -> None:
    d = desk()
    d.apply(BindWallet, ALICE, "alice")
    d.apply(VaultReadingStarted)
    [refused] = d.order("alice", "o1", "500").of_type(ev.IndexOrderRejected)
    assert refused.reason is RejectReason.INSUFFICIENT_COLLATERAL
    assert "still reading the vault's deposits" in refused.text
    vault_deposit(d, "v-1", "1000")
    assert d.apply(VaultReadThrough, 120).of_type(ev.VaultCaughtUp) == [ev.VaultCaughtUp(120)]
    [refused] = d.order("alice", "o2", "5000").of_type(ev.IndexOrderRejected)
    assert refused.text == "5000 USDC wanted, 1000 available"
