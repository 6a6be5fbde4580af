"""Signed orders over FIX: the gateway recovers who signed each NewOrderSingle (the client
signs with its own implementation of the documented type) and lets through only the account's
wallet's signature of exactly this order; every refusal says what to fix and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import simplefix

from fix_gateway.signing import OrderSigning
from mocks.fix_client import messages
from mocks.fix_client.wallet import Vault, Wallet
from solver.core.commands import BindWallet
from solver.signed_orders import Domain
from tests.support.exchange import run, until
from tests.support.service import field_of, report_where, service

# anvil's public development keys 1 and 2 (a local chain's, never a real one's)
ALICE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
BOB_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdd443a6"
VAULT = Vault(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3",
              {"SY2": "0xa16E02E87b7454126E5E10d957A927A7F5B5d2be"})
SIGNING = OrderSigning(Domain(VAULT.chain_id, VAULT.address), VAULT.tokens, {"SY2": 6},
                       {"alice": Wallet(ALICE_KEY, VAULT).address})


def in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def signed_order(name: str, cash: str = "1000", *, key: str = ALICE_KEY,
                 limit: str = "1050", deadline: datetime | None = None, fee_bps: int = 50,
                 **changes: Any) -> Any:
    """Alice's order ``name``, signed by ``key``; ``changes``: fields edited after signing."""
    signed = Wallet(key, VAULT).sign(name, "SY2", D(cash), D(limit), deadline or in_an_hour(),
                                     fee_bps)
    msg = messages.new_order(name, "SY2", D(cash), signed=signed)
    for tag, value in changes.items():
        msg = _with(msg, int(tag[1:]), value)
    return msg


def _with(msg: Any, tag: int, value: str | None) -> Any:
    edited = simplefix.FixMessage()
    for t, v in msg:
        if int(t) != tag:
            edited.append_pair(int(t), v)
    if value is not None:
        edited.append_pair(tag, value)
    return edited


def test_an_order_the_wallet_signed_is_accepted_and_fills(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}, signing=SIGNING) as s:
            s.runtime.submit(BindWallet(s.runtime.clock(), SIGNING.wallets["alice"], "alice"))
            alice = await s.client("alice")
            await alice.send(signed_order("o1"))
            await report_where(alice, t11="o1", t150="0")
            await report_where(alice, t11="o1", t150="F", timeout=20)
            order = s.runtime.engine.orders[1]
            assert order.signed is not None and order.signed.limit == D(1050)
            assert order.wallet == SIGNING.wallets["alice"]
    run(scenario(), timeout=60)


BAD = {
    "unsigned": (lambda: messages.new_order("o1", "SY2", D(1000), ord_type="2",
                                            price=D(1050)),
                 "99", "OrderSignature(20030) is required"),
    "another wallet": (lambda: signed_order("o1", key=BOB_KEY), "99",
                       "is not 0x70997970C51812dc3A010C7d01b50e0d17dc79C8's signature"),
    "amount raised after signing": (lambda: signed_order("o1", t152="2000"), "99",
                                    "signature of this order"),
    "limit raised after signing": (lambda: signed_order("o1", t44="1100"), "99",
                                   "signature of this order"),
    "another name": (lambda: signed_order("o1", t11="o2"), "99", "signature of this order"),
    "not hex": (lambda: signed_order("o1", t20030="0x12"), "99", "65-byte signature"),
    "no fee bound": (lambda: signed_order("o1", t20031=None), "99", "MaxFeeBps(20031)"),
    "a market order": (lambda: signed_order("o1", t40="1", t44=None), "99",
                       "a signed order is a limit order"),
    "too precise": (lambda: signed_order("o1", limit="1050.0000001"), "99",
                    "at most 6 decimals"),
    "a fee bound below the reserve": (lambda: signed_order("o1", fee_bps=10), "99",
                                      "fee reserve of 20"),
    "a negative fee bound": (lambda: signed_order("o1", t20031="-1"), "99",
                             "MaxFeeBps(20031), the fee bound signed, must be 0 to 10000"),
    "a deadline too near": (lambda: signed_order(
        "o1", deadline=datetime.now(UTC) + timedelta(seconds=30)), "4", "less than 120 s"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_missing_or_late_signature_is_refused_with_a_reason(tmp_path: Path,
                                                                  case: str) -> None:
    make, reason, says = BAD[case]

    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}, signing=SIGNING) as s:
            s.runtime.submit(BindWallet(s.runtime.clock(), SIGNING.wallets["alice"], "alice"))
            alice = await s.client("alice")
            await until(lambda: s.runtime.engine.custody.bound_wallet("alice") is not None)
            await alice.send(make())
            rejected = await report_where(alice, t150="8")
            assert field_of(rejected, 103) == reason
            assert says in (field_of(rejected, 58) or ""), field_of(rejected, 58)
            assert s.runtime.engine.orders == {}
            balance = s.runtime.engine.ledger.balance("alice", "USDC")
            assert (balance.available, balance.reserved) == (D(6000), D(0))
    run(scenario(), timeout=60)


def test_a_signed_order_is_lowered_without_a_new_signature(tmp_path: Path) -> None:
    """A replace keeps OrdType 2 and the signed Price(44); it may only lower the amount, which
    the vault's bound on the signed total allows."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}, signing=SIGNING) as s:
            s.runtime.submit(BindWallet(s.runtime.clock(), SIGNING.wallets["alice"], "alice"))
            alice = await s.client("alice")
            await alice.send(signed_order("o1", "5000"))
            await report_where(alice, t11="o1", t150="0")
            await alice.send(messages.replace("r1", "o1", "SY2", D(1000), ord_type="1"))
            refused = await report_where(alice, t35="9")
            assert "keep OrdType(40)=2 and Price(44)=1050" in (field_of(refused, 58) or "")
            await alice.send(messages.replace("r2", "o1", "SY2", D(4000), ord_type="2",
                                              price=D(1050)))
            replaced = await report_where(alice, t11="r2", t150="5")
            assert field_of(replaced, 152) == "4000"
    run(scenario(), timeout=60)


@pytest.mark.parametrize("tag, value", [(20031, "9" * 70), (44, "1e400")])
def test_a_field_the_dictionary_refuses_gets_a_session_reject_and_changes_nothing(
        tmp_path: Path, tag: int, value: str) -> None:
    """QuickFIX's data dictionary refuses a 70-digit INT and a number with an exponent
    (Reject 35=3 naming the field); the session and the service go on."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}, signing=SIGNING) as s:
            s.runtime.submit(BindWallet(s.runtime.clock(), SIGNING.wallets["alice"], "alice"))
            alice = await s.client("alice")
            await alice.send(signed_order("o1", **{f"t{tag}": value}))
            await until(lambda: bool(alice.session_rejects), what="the session's Reject")
            [rejected] = alice.session_rejects
            assert field_of(rejected, 371) == str(tag)
            assert field_of(rejected, 58) == "Incorrect data format for value"
            assert s.runtime.engine.orders == {}
            await alice.send(signed_order("o2"))
            await report_where(alice, t11="o2", t150="0")  # still serving
    run(scenario(), timeout=60)
