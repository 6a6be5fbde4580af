"""A gateway killed with SIGKILL while reports are pending, then restarted: the client gets
every report exactly once, new or resent with PossDup, none missing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from eth_account import Account
from web3.types import Wei

from chain.deploy import contract, deploy_local, transact
from fix_gateway.tags import EVENT_SEQ_NUM
from mocks.binance.local import KEY, mock_server, running
from mocks.fix_client import FixClient, SessionConfig, messages
from solver.core import events as ev
from solver.core.commands import CancelIndexOrder, ExpireIndexOrder
from solver.core.orders import OrderStatus
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.runtime import Runtime
from tests.support.chains import Anvil, chain
from tests.support.exchange import connector, run, until
from tests.support.service import (
    _HASHES,
    FAST,
    GATEWAY,
    PASSWORDS,
    field_of,
    free_port,
    report_where,
    service,
)

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "deployment" / "local.toml"
ALICES_EVENTS = (ev.IndexOrderAccepted, ev.IndexOrderFilled, ev.IndexOrderCompleted,
                 ev.IndexOrderMinted, ev.CollateralDeposited, ev.CollateralReleased,
                 ev.IndexOrderEndPending, ev.CancelRejected)


DEPOSITS = {"alice": 20_000, "bob": 3_000}
"""Alice's is enough for 300 orders of the minimum size."""


async def on_chain(tmp: Path, node: Anvil) -> tuple[dict[str, Any], dict[str, str], str]:
    """The contracts on ``node``, each account's deposit in the vault from its wallet: the
    deployment's [chain] section, the wallets, and the operator's key."""
    w3 = node.w3
    owner, *spare = await w3.eth.accounts
    wallets = dict(zip(PASSWORDS, spare, strict=False))
    operator = Account.create()
    await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
        {"from": owner, "to": operator.address, "value": Wei(10**19)}))
    deployment = await deploy_local(w3, owner, operator.address, owner, 3600,
                                    {"SY2": "Two assets"})
    deployment.save(tmp / "chain.json")
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    for account, amount in DEPOSITS.items():
        wallet = wallets[account]
        await transact(w3, wallet, usdc.functions.mint(wallet, amount * 10**6))
        await transact(w3, wallet, usdc.functions.approve(vault.address, amount * 10**6))
        await transact(w3, wallet, vault.functions.deposit(amount * 10**6, 0))
    section = {"rpc": str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
               "deployment": str(tmp / "chain.json"), "operator_key_env": "CHAIN_OPERATOR_KEY",
               "confirmations": 0, "poll_ms": 50}
    return section, wallets, operator.key.hex()


def write_config(tmp: Path, fix_port: int, exchange_port: int, chain_section: dict[str, Any],
                 wallets: dict[str, str], **sections: dict[str, Any]) -> Path:
    """The example deployment on these ports and this chain, with these accounts (and any
    other ``sections``), its state in ``tmp``."""
    deployment = tomllib.loads(EXAMPLE.read_text())
    deployment["solver"]["indexes"] = [str(EXAMPLE.parent / i)
                                       for i in deployment["solver"]["indexes"]]
    deployment["service"] = {"journal": "journal.db", "exchange": f"local:{exchange_port}"}
    deployment["fix"] = {"port": fix_port, "comp_id": GATEWAY, "store": "fix-store"}
    deployment["accounts"] = {name: {"comp_id": name.upper(), "password_hash": _HASHES[name],
                                     "wallet": wallets[name]} for name in PASSWORDS}
    deployment["chain"] = chain_section
    for optional in ("admin", "metrics"):  # the example's ports may be taken here
        deployment.pop(optional, None)
    deployment.update(sections)
    path = tmp / "deployment.json"
    path.write_text(json.dumps(deployment))
    return path


@contextlib.contextmanager
def gateway_process(config: Path, log: Path, operator_key: str,
                    **env_vars: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "BINANCE_API_KEY": KEY.key, "BINANCE_API_SECRET": KEY.secret,
           "CHAIN_OPERATOR_KEY": operator_key, **env_vars}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "solver.cli", "run", "--config",
                                    str(config)], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def wait_accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"gateway exited: {log.read_text()[-3000:]}")
        if await accepting(port):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("gateway never accepted connections")


def alice_client(tmp: Path, fix_port: int) -> FixClient:
    """Alice's client, its sequence numbers kept across connections and gateway restarts."""
    return FixClient(SessionConfig("127.0.0.1", fix_port, "ALICE", GATEWAY, "ALICE",
                                   PASSWORDS["alice"], store_dir=tmp / "client"))


def journaled_fills(journal: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT events FROM transactions").fetchall()
    return sum(e.count('"IndexOrderFilled"') for (e,) in rows)


def expected_seqs(journal_path: Path, account: str) -> Counter[int]:
    """Per event that concerns ``account``'s orders or collateral, its sequence number."""
    with Journal.open(journal_path) as journal:
        transactions = list(journal.transactions())
    ours = {e.order_id for t in transactions for e in t.of_type(ev.IndexOrderAccepted)
            if e.account == account}
    seqs: Counter[int] = Counter()
    for transaction in transactions:
        filled_now = {f.order_id for f in transaction.of_type(ev.IndexOrderFilled)}
        for envelope in transaction.events:
            event = envelope.event
            if not isinstance(event, ALICES_EVENTS):
                continue
            if isinstance(event, ev.IndexOrderCompleted) and event.order_id in filled_now \
                    and event.status is OrderStatus.FILLED:
                continue  # its last fill reported it (a cancel is reported on its own)
            if isinstance(event, ev.IndexOrderEndPending) and not event.request_id:
                continue  # an expiry waiting for its batch: nothing to report yet
            if isinstance(event, ev.CancelRejected) and isinstance(
                    transaction.input, ExpireIndexOrder):
                continue  # the operator's: not the client's to hear of
            if getattr(event, "account", None) == account or getattr(
                    event, "order_id", None) in ours:
                seqs[envelope.seq] += 1
    return seqs


def test_a_killed_gateway_restarts_and_every_report_arrives_exactly_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        fix_port = free_port()
        log = tmp_path / "gateway.log"
        async with running(mock_server(step_ms=100)) as server, chain("anvil") as node:
            assert isinstance(node, Anvil)
            section, wallets, key = await on_chain(tmp_path, node)
            config = write_config(tmp_path, fix_port, server.port, section, wallets)
            alice = alice_client(tmp_path, fix_port)
            with gateway_process(config, log, key) as first:
                await wait_accepting(fix_port, first, log)
                await alice.connect()
                await report_where(alice, t35="BA")  # the vault's deposit credited
                await alice.send(messages.new_order("o1", "SY2", D("5000")))
                await report_where(alice, t150="0")
                alice.drop()  # away while the order trades: its reports wait in the store
                await until(lambda: journaled_fills(tmp_path / "journal.db") >= 2, 30,
                            "fills journaled")
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            with gateway_process(config, log, key) as second:
                await wait_accepting(fix_port, second, log)
                await alice.connect()
                await report_where(alice, t150="F", timeout=30)
                await alice.send(messages.cancel("c1", "o1", "SY2"))
                await report_where(alice, t150="B", timeout=30)
                await alice.test_request()
                await alice.logout()
                second.send_signal(signal.SIGTERM)
                assert second.wait(30) == 0, log.read_text()[-3000:]
        received = Counter(int(field_of(m, EVENT_SEQ_NUM) or 0) for m in alice.received
                           if field_of(m, EVENT_SEQ_NUM))
        assert received == expected_seqs(tmp_path / "journal.db", "alice")
        assert any(field_of(m, 43) == "Y" for m in alice.received)  # some came by resend
    run(scenario(), timeout=150)


def test_reports_journaled_but_never_sent_go_out_when_the_gateway_starts(
        tmp_path: Path) -> None:
    """As if the gateway died between a commit and its sends: a runtime without a gateway
    journals a cancel, and the next gateway sends its report, once, and nothing older."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("1000"), ord_type="2",
                                                price=D("900")))
            await report_where(alice, t150="0")
            await alice.logout()
        journal = Journal.open(tmp_path / "journal.db")
        async with running(mock_server()) as server, connector(server) as conn:
            runtime = Runtime(rebuild(journal).engine, conn, journal, FAST)
            runtime.submit(CancelIndexOrder(runtime.clock(), "alice", "o1", "c1"))
            serving = asyncio.create_task(runtime.run())
            await until(lambda: not runtime.engine.open_orders(), what="canceled")
            runtime.stop()
            await serving
        journal.close()
        async with service(tmp_path) as s:
            alice = await s.client("alice")
            canceled = await report_where(alice, t150="4")
            await alice.test_request()
            assert field_of(canceled, 11) == "c1"  # stored at start, resent at logon
            assert [field_of(m, 35) for m in alice.received[-2:]] == ["8", "BA"]
            assert Counter(field_of(m, EVENT_SEQ_NUM) for m in alice.received).most_common(
                1)[0][1] == 1
    run(scenario())


def test_a_gateway_killed_while_orders_stream_in_takes_each_order_exactly_once(
        tmp_path: Path) -> None:
    """Killed mid-stream, some orders are journaled, some only kept in the inbound log, some
    still in the socket. After the restart the client asks again (PossResend) about any order
    it has no answer for; in the end each order is taken once and answered once."""
    count = 300
    ids = [f"p{n}" for n in range(count)]

    def answers(client: FixClient) -> Counter[str]:
        return Counter(field_of(m, 11) or "" for m in client.received
                       if field_of(m, 35) == "8" and field_of(m, 150) in ("0", "8"))

    async def scenario() -> None:
        fix_port = free_port()
        log = tmp_path / "gateway.log"
        async with running(mock_server()) as server, chain("anvil") as node:
            assert isinstance(node, Anvil)
            section, wallets, key = await on_chain(tmp_path, node)
            config = write_config(tmp_path, fix_port, server.port, section, wallets)
            alice = alice_client(tmp_path, fix_port)
            with gateway_process(config, log, key) as first:
                await wait_accepting(fix_port, first, log)
                await alice.connect()
                await report_where(alice, t35="BA")  # the vault's deposit credited
                for n, cl_ord_id in enumerate(ids):
                    await alice.send(messages.new_order(cl_ord_id, "SY2", D("40"),
                                                        ord_type="2", price=D("900")))
                    if n == count // 2:
                        await until(lambda: len(answers(alice)) >= 1, 30, "a first answer")
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            with gateway_process(config, log, key) as second:
                await wait_accepting(fix_port, second, log)
                await alice.connect()
                for cl_ord_id in sorted(set(ids) - set(answers(alice))):
                    again = messages.new_order(cl_ord_id, "SY2", D("40"), ord_type="2",
                                               price=D("900"))
                    again.append_pair(97, "Y")
                    await alice.send(again)
                await until(lambda: set(answers(alice)) == set(ids), 30, "every order answered")
                await alice.test_request()
                await alice.logout()
                second.send_signal(signal.SIGTERM)
                assert second.wait(30) == 0, log.read_text()[-3000:]
        assert answers(alice) == Counter(ids)
        assert "disagree" not in log.read_text()
        with Journal.open(tmp_path / "journal.db") as journal:
            events = [e.event for t in journal.transactions() for e in t.events]
        accepted = [e.client_order_id for e in events if isinstance(e, ev.IndexOrderAccepted)
                    and e.account == "alice" and e.client_order_id in ids]
        assert sorted(accepted) == sorted(ids)
        assert not [e for e in events if isinstance(e, ev.IndexOrderRejected)]
    run(scenario(), timeout=150)
