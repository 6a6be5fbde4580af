"""``index-solver run``: a graceful stop refuses new orders, lets the work in flight finish
(its fills reported, its settlement mined), then logs the FIX sessions out."""

from __future__ import annotations

import asyncio
import json
import signal
from decimal import Decimal as D
from pathlib import Path

import pytest

from mocks.fix_client import messages
from solver.core import events as ev
from solver.journal.store import Journal
from tests.support.deployed import alice_client, on_anvil, signed_order
from tests.support.exchange import run, until
from tests.support.service import field_of, report_where, service


def test_a_stopping_service_refuses_new_orders_and_finishes_those_in_flight(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "12000"}, step_ms=100) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("5000")))
            await report_where(alice, t11="o1", t150="0")
            s.gateway.close_to_new_orders()
            await alice.send(messages.new_order("o2", "SY2", D("1000")))
            refused = await report_where(alice, t11="o2")
            assert (field_of(refused, 150), field_of(refused, 103)) == ("8", "2")
            assert "shutting down" in (field_of(refused, 58) or "")
            await s.wired.wind_down(10)
            assert s.wired.quiet()
            assert await alice.closed() == "the service is shutting down"
            reports = [m for m in alice.received if field_of(m, 11) == "o1"]
            assert field_of(reports[-1], 39) in ("1", "2")  # o1 traded before the logout
    run(scenario())


def test_sigterm_stops_the_service_once_its_settlement_is_mined(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with on_anvil(tmp_path) as stack:
            node, log = stack.node, stack.log
            alice = alice_client(tmp_path, stack.fix_port)
            with stack.process(stack.config()) as process:
                await stack.accepting(process)
                await alice.connect()
                await report_where(alice, t35="BA")  # the vault's deposit credited
                await alice.send(signed_order(tmp_path, "alice", "o1", D("1000")))
                await report_where(alice, t150="F")
                await node.automine(False)  # from now on a settlement waits for a block
                await alice.send(messages.cancel("c1", "o1", "SY2"))
                await report_where(alice, t150="4")  # closed: its settlement is on its way
                process.send_signal(signal.SIGTERM)
                await until(lambda: "stopping: new orders refused" in log.read_text(), 10,
                            "the service stopping")
                with pytest.raises(TimeoutError):  # its settlement waits for a block
                    await asyncio.wait_for(alice.closed(), 0.5)
                await node.mine(1)
                assert await alice.closed() == "the service is shutting down"
                assert await asyncio.to_thread(process.wait, 30) == 0, log.read_text()[-3000:]
            stopped = [json.loads(line) for line in log.read_text().splitlines()
                       if '"event": "stopped"' in line]
            assert [(s["level"], s["reason"]) for s in stopped] == [("info", "SIGTERM received")]
            fills = [line for line in log.read_text().splitlines()
                     if '"event": "asset order filled"' in line]
            assert fills and all('"level": "info"' in line for line in fills)
        with Journal.open(tmp_path / "journal.db") as journal:
            events = [e.event for t in journal.transactions() for e in t.events]
        def ids(kind: type[ev.Event], name: str) -> set[int]:
            return {getattr(e, name) for e in events if isinstance(e, kind)}
        assert ids(ev.MintRequested, "order_id") == ids(ev.IndexOrderMinted, "order_id") \
            == {1}, "stopped before its settlement was mined"
        assert ids(ev.BatchPlanned, "batch_id") == ids(ev.BatchSettled, "batch_id")
    run(scenario(), timeout=120)


def test_run_exits_with_a_clear_message_when_the_exchange_filters_differ(tmp_path: Path) -> None:
    """The writer refuses to trade on filters the exchange does not have: the process must
    not keep serving FIX without answering orders; it exits 2 naming the filter."""
    async def scenario() -> None:
        async with on_anvil(tmp_path, step_ms=0) as stack:
            config = stack.config()
            data = json.loads(config.read_text())
            data["markets"]["A1"]["tick_size"] = "0.1"
            config.write_text(json.dumps(data))
            with stack.process(config) as process:
                code = await asyncio.to_thread(process.wait, 60)
            output = stack.log.read_text()
            assert code == 2, output[-2000:]
            assert "A1USDC: the exchange's tick_size is 0.01, ours 0.1" in output
            assert '"event": "stopped"' in output and '"level": "error"' in output
    run(scenario(), timeout=120)
