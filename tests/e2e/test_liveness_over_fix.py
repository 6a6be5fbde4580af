"""Over FIX, the planner keeps going under load (issue 20): 2,000 orders of 50 USDC pipelined
from one session all fill and settle. Before, after the first batches the 100 oldest orders
were all partly filled with 0.01-0.16 USDC left each, together below the exchange's minimums;
nothing was planned again, for good, and new orders were acked and never filled."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

from mocks.fix_client import FixClient, messages
from solver.core.orders import MintStatus, OrderStatus
from tests.support.exchange import run
from tests.support.service import service, setup

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
            assert not s.runtime.stalls.stalled_since
    run(scenario(), timeout=300)
