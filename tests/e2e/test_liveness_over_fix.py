"""Over FIX, the planner keeps going under load and no order waits for ever (issue 20): 2,000
orders of 50 USDC pipelined from one session all fill and settle (before, after the first
batches the 100 oldest orders were all partly filled with 0.01-0.16 USDC left each, together
below the exchange's minimums; nothing was planned again, for good, and new orders were acked
and never filled); the README's order completes within the bound."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from fix_gateway.passwords import hash_password
from mocks.fix_client import FixClient, messages
from solver.config.deployment import load_deployment
from solver.core.orders import MintStatus, OrderStatus
from tests.support.exchange import run
from tests.support.service import field_of, report_where, service, setup

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "deployment" / "local.toml"

ORDERS, AMOUNT = 2_000, D(50)


def filled(client: FixClient) -> int:
    """The orders an ExecutionReport said were filled (OrdStatus 2)."""
    return len({m.get(11) for m in client.received if m.get(35) == b"8" and m.get(39) == b"2"})


def mint_reports(client: FixClient) -> int:
    return sum(1 for m in client.received if m.get(35) == b"8" and m.get(150) == b"B")


def test_two_thousand_orders_pipelined_from_one_session_all_fill_and_settle(
        tmp_path: Path) -> None:
    base = setup()
    engine = replace(base, params=replace(
        base.params, max_orders_per_batch=100, dust_threshold=D("0.01"),
        completion_wait_ms=5_000))

    async def scenario() -> None:
        deposits = {"alice": str(AMOUNT * ORDERS + 1000)}
        async with service(tmp_path, deposits, step_ms=100, engine=engine) as s:
            alice = await s.client("alice")
            for n in range(ORDERS):
                await alice.send(messages.new_order(f"o{n}", "SY2", AMOUNT))
            async with asyncio.timeout(240):
                while mint_reports(alice) < ORDERS:
                    await asyncio.sleep(0.05)
            assert filled(alice) == ORDERS
            orders = list(s.runtime.engine.orders.values())
            assert len(orders) == ORDERS
            assert {(o.status, o.mint_status) for o in orders} == {
                (OrderStatus.FILLED, MintStatus.MINTED)}
            released = sum((o.released for o in orders), D(0))
            assert released < D("0.01") * AMOUNT * ORDERS
    run(scenario(), timeout=300)


def test_the_readme_s_order_completes_within_the_bound(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's 1,000 USDC order of SY2 on the example deployment: it buys what it can,
    and the 20 USDC left, too little to buy the index's smallest tradable quantity alone,
    waits for other orders of SY2 at most ``completion_wait_ms``; then the order is filled
    and the rest released, the reason in Text(58). Before, it waited until cancelled."""
    for account in ("ALICE", "BOB"):
        monkeypatch.setenv(f"FIX_{account}_PASSWORD_HASH", hash_password("unused"))
    deployment = load_deployment(EXAMPLE)
    bound_s = deployment.setup.params.completion_wait_ms / 1000

    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}, step_ms=100,
                           engine=deployment.setup) as s:
            alice = await s.client("alice")
            sent = time.monotonic()
            await alice.send(messages.new_order("o1", "SY2", D(1000)))
            done = await report_where(alice, timeout=bound_s + 10, t39="2")
            assert time.monotonic() - sent < bound_s + 5
            assert field_of(done, 58) is not None and re.fullmatch(
                r"filled: the [\d.]+ USDC left cannot buy the smallest tradable quantity of "
                r"SY2 alone \([\d.]+ USDC at today's prices\), and no batch could buy it "
                rf"with other orders of SY2 within {bound_s:g} s", field_of(done, 58) or "")
            order = s.runtime.engine.order("alice", "o1")
            assert order is not None and D(0) < order.released < D(50)
    run(scenario(), timeout=60)
