"""A gateway killed with SIGKILL while reports are pending, then restarted: the client gets
every report exactly once, new or resent with PossDup, none missing."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

from fix_gateway.tags import EVENT_SEQ_NUM
from mocks.binance.local import mock_server, running
from mocks.fix_client import FixClient, messages
from solver.core import events as ev
from solver.core.commands import CancelIndexOrder
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.runtime import Runtime
from tests.support.chains import Anvil, chain
from tests.support.deployed import (
    alice_client,
    expected_seqs,
    gateway_process,
    journaled_fills,
    on_chain,
    signed_order,
    wait_accepting,
    write_config,
)
from tests.support.exchange import connector, run, until
from tests.support.service import (
    FAST,
    field_of,
    free_port,
    report_where,
    service,
)


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
                await alice.send(signed_order(tmp_path, "alice", "o1", D("5000")))
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
                    await alice.send(signed_order(tmp_path, "alice", cl_ord_id, D("40"),
                                                  D("900")))
                    if n == count // 2:
                        await until(lambda: len(answers(alice)) >= 1, 30, "a first answer")
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            with gateway_process(config, log, key) as second:
                await wait_accepting(fix_port, second, log)
                await alice.connect()
                for cl_ord_id in sorted(set(ids) - set(answers(alice))):
                    again = signed_order(tmp_path, "alice", cl_ord_id, D("40"), D("900"))
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
