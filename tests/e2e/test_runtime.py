"""The service end to end on loopback: engine, journal, execution and market data against
the mock Binance; and a restart that resumes the asset orders the journal has in flight."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mocks.binance.faults import Faults
from mocks.binance.local import mock_server, running
from mocks.binance.server import MockBinance
from solver.cli.main import main
from solver.core.commands import (
    AssetOrderFilled,
    CancelIndexOrder,
    DepositConfirmed,
    Input,
    MintConfirmed,
    SubmitIndexOrder,
)
from solver.core.engine import Engine
from solver.core.events import Envelope, LotOpened, MintRequested
from solver.core.invariants import violations
from solver.core.inventory import lot_id
from solver.core.orders import MintStatus
from solver.exchange.execution import ReconcilePolicy
from solver.journal.replay import rebuild
from solver.journal.store import Journal
from solver.service.runtime import ExchangeMismatch, Runtime, RuntimeSettings
from tests.support.exchange import connector, run, until
from tests.support.service import FAST, SCENARIO, setup


def orders(now: int) -> list[SubmitIndexOrder | DepositConfirmed]:
    return [DepositConfirmed(now, "d-1", "alice", "USDC", D(6000)),
            DepositConfirmed(now, "d-2", "bob", "USDC", D(3000)),
            SubmitIndexOrder(now, "alice", "a-1", "SY2", D(5000), wallet="0xa11ce"),
            SubmitIndexOrder(now, "bob", "b-1", "SY2", D(2500), wallet="0xb0b")]


def confirm_mints(runtime: Runtime) -> None:
    def confirm(envelope: Envelope) -> None:
        assert isinstance(envelope.event, MintRequested)
        runtime.submit(MintConfirmed(runtime.clock(), envelope.event.order_id,
                                     f"0x{envelope.event.order_id:064x}"))
    runtime.bus.subscribe(MintRequested, confirm)


def finished(engine: Engine) -> bool:
    return not engine.open_orders() and all(o.is_done for o in engine.asset_orders.values()) \
        and all(o.mint_status is MintStatus.MINTED for o in engine.orders.values())


def nearly_spent(engine: Engine) -> bool:
    """What is left of every order is too small to meet the exchange's minimum notional."""
    return bool(engine.orders) and all(o.collateral - o.spent < 50 for o in
                                       engine.orders.values())


async def finish(runtime: Runtime) -> None:
    """Fill until the remainders are too small to trade, then cancel them (they would wait
    for their expiry) and wait until everything is settled and minted."""
    engine = runtime.engine
    await until(lambda: nearly_spent(engine), timeout=60, what="orders nearly spent")
    for order in engine.open_orders():
        runtime.submit(CancelIndexOrder(runtime.clock(), order.account, order.client_order_id))
    await until(lambda: finished(engine), timeout=60, what="every order complete")


def assert_lots_are_the_trades(server: MockBinance, lots: list[LotOpened]) -> None:
    trades = server.exchange.trades
    assert sorted(lot.lot_id for lot in lots) == sorted(lot_id(t.symbol, str(t.id))
                                                        for t in trades)
    assert sum((lot.quantity for lot in lots), D(0)) == sum(
        (t.qty - t.commission for t in trades), D(0))
    sent = Counter(o.client_order_id for o in server.exchange.orders.values())
    assert all(n == 1 for n in sent.values()), "an asset order was sent twice"


def test_orders_are_filled_on_the_mock_and_minted() -> None:
    async def scenario() -> None:
        async with running(mock_server(step_ms=50)) as server, connector(server) as conn:
            engine = setup().build()
            runtime = Runtime(engine, conn, settings=FAST)
            confirm_mints(runtime)
            lots: list[LotOpened] = []
            runtime.bus.subscribe(LotOpened, lambda e: lots.append(e.event))
            for command in orders(runtime.clock()):
                runtime.submit(command)
            serving = asyncio.create_task(runtime.run())
            await finish(runtime)
            runtime.stop()
            await serving
            assert violations(engine) == []
            assert all(o.minted_units == o.filled_units > 0 for o in engine.orders.values())
            assert_lots_are_the_trades(server, lots)
    run(scenario(), timeout=120)


def test_a_batch_that_lost_a_trade_is_alarmed_and_recovered_from_the_exchange() -> None:
    """The first trade's fact never reaches the engine (the order tracker thinks it did), so
    the batch cannot settle: past the bound it is logged with its orders and every trade is
    handed over again; the engine keeps the missing one and the batch settles."""
    async def scenario() -> None:
        async with running(mock_server(step_ms=50)) as server, connector(server) as conn:
            engine = setup().build()
            runtime = Runtime(engine, conn, settings=replace(FAST, settle_within_ms=1000))
            confirm_mints(runtime)
            lost: list[Input] = []

            def lose_the_first_trade(fact: Input) -> None:
                if isinstance(fact, AssetOrderFilled) and not lost:
                    lost.append(fact)
                else:
                    runtime.submit(fact)

            runtime.execution.submit = lose_the_first_trade
            lots: list[LotOpened] = []
            runtime.bus.subscribe(LotOpened, lambda e: lots.append(e.event))
            for command in orders(runtime.clock()):
                runtime.submit(command)
            with capture_logs() as logs:
                serving = asyncio.create_task(runtime.run())
                await until(lambda: bool(lost), what="a trade lost")
                [batch] = [b for b in engine.batches.values()
                           if lost[0].asset_order_id in b.asset_order_ids]
                await until(lambda: batch.settled, timeout=30, what="the batch recovered")
                await finish(runtime)
                runtime.stop()
                await serving
            [alarm] = [e for e in logs if e["event"].startswith("batch not settled in time")]
            assert alarm["log_level"] == "error" and alarm["batch_id"] == batch.id
            assert alarm["index_orders"] == list(batch.engagements)
            assert len(alarm["asset_orders"]) == len(batch.asset_order_ids)
            assert violations(engine) == []
            assert_lots_are_the_trades(server, lots)
    run(scenario(), timeout=120)


def test_restart_resumes_in_flight_orders_without_sending_them_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "journal.db"
        slow = RuntimeSettings(plan_every_ms=100, tick_every_ms=200,
                               reconcile=ReconcilePolicy(grace_ms=3_600_000))
        lost = Faults(lose_response=1.0, report_delay_ms=3_600_000)  # nothing comes back
        async with running(mock_server(step_ms=50, faults=lost)) as server:
            async with connector(server) as conn:
                journal = Journal.create(path, setup())
                engine = journal.setup.build()
                runtime = Runtime(engine, conn, journal, slow)
                for command in orders(runtime.clock()):
                    runtime.submit(command)
                serving = asyncio.create_task(runtime.run())
                await until(lambda: engine.asset_orders and len(server.exchange.orders) == len(
                    engine.asset_orders), timeout=30, what="the first batch sent")
                runtime.stop()  # the answers were lost: the journal has them in flight
                await serving
                journal.close()
            in_flight = [o.id for o in engine.asset_orders.values() if not o.is_done]
            assert in_flight and all(o.exchange_order_id is None
                                     for o in engine.asset_orders.values())
            server.faults.lose_response, server.faults.report_delay_ms = 0.0, 0

            journal = Journal.open(path)
            engine = rebuild(journal).engine
            async with connector(server) as conn:
                runtime = Runtime(engine, conn, journal, FAST)
                confirm_mints(runtime)
                serving = asyncio.create_task(runtime.run())
                await finish(runtime)
                runtime.stop()
                await serving
            lots = [e.event for t in rebuild(journal, use_snapshot=False, keep=True)
                    .transactions for e in t.events if isinstance(e.event, LotOpened)]
            journal.close()
            assert all(engine.asset_orders[i].is_done for i in in_flight)
            assert len(engine.asset_orders) > len(in_flight)  # later batches went on
            assert violations(engine) == []
            assert_lots_are_the_trades(server, lots)
    run(scenario(), timeout=150)


def test_demo_command_trades_the_scenario_and_reports_every_trade_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(SCENARIO)]) == 0
    out = capsys.readouterr().out
    assert "every trade recorded once" in out and "invariants: ok" in out


def test_the_demo_runs_its_users_through_the_whole_pipeline(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The default demo: four users, a ten-asset index on moving books, a quote, a cancel
    after a first fill, a withdrawal released at once. A person reads it at 80 columns: no
    line wraps, no amount beyond 6 decimals, its words agree with what happened (the orders
    still open at the end are said to be cancelled by their users), no sum of quantities of
    different assets; ``--verbose`` adds every FIX report."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80 and "…" not in out
    assert max(map(len, re.findall(r"\d\.(\d+)\b", out))) <= 6
    assert "net quantity" not in out and "ExecutionReport" not in out
    # whether an order is still open when the batches stop depends on the moving books
    said = re.search(r"the users cancel what is left of their open orders \(([^)]*)\)", out)
    cancelled_at_the_end = set() if said is None else {o.strip() for o in said[1].split(",")}
    rows = {line.split()[1]: line.split()[2] for line in out.splitlines()
            if re.match(r" (alice|bob|carol|dave) +[a-d]-\d ", line)}
    assert len(rows) == 9 and rows["c-1"] == "canceled"  # the scenario's cancel
    assert {o for o, ended in rows.items() if ended == "canceled"} == \
        {"c-1", *cancelled_at_the_end}
    assert "every trade recorded once" in out and "every mint reported to its client" in out
    assert "released by the solver at once" in out and "invariants: ok" in out
    assert out.count(" yes") == 4  # each user's FIX, tokens and vault agree
    assert main(["demo", "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert "alice Quote QuoteReqID=q1" in verbose
    assert "canceled ClOrdID=c-1-cancel" in verbose


def test_the_walkthrough_shows_the_eight_steps_with_their_real_messages(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkthrough"]) == 0
    printed = capsys.readouterr().out
    assert max(map(len, printed.splitlines())) <= 80
    # FIX messages wrap between fields (or at a space in a Text), never inside a token: every
    # SendingTime and every 32-byte hash is printed whole on its line
    times = re.findall(r"\b52=\S*", printed)
    assert times and all(re.fullmatch(r"52=\d{8}-\d\d:\d\d:\d\d\.\d{3}\|", t) for t in times)
    hashes = re.findall(r"0x[0-9a-fA-F]+(?![0-9a-fA-F]|\.\.\.)", printed)
    assert all(len(h) in (42, 66) for h in hashes), hashes
    # but for the order's signature, shortened: 132 characters do not fit
    assert len(re.findall(r"20030=0x[0-9a-f]{8}\.\.\.[0-9a-f]{8}\|", printed)) == 1
    # the panels wrap lines: compare without spaces and borders
    out = "".join(c for c in printed if not c.isspace() and c not in "│─╭╮╰╯")
    for step, shown in (("1.Theusersendscollateral", "Depositeduser=0x"),
                        ("2.Theusersendsanindexorder", "|35=D|"),
                        ("3.Thesolverreceivesthecollateral", "|35=BA|"),
                        ("4.Thesolversendsassetorders", "POST/api/v3/ordernewClientOrderId="),
                        ("5.Thesolverreceivesfills", "FILLED:price="),
                        ("6.Thesolverfillstheindexorder", "IndexOrderFilledunits="),
                        ("7.Theuserreceivesaconfirmationofeachfill", "|150=F|"),
                        ("8.Theuserreceivesthenewlymintedindextokens", "OrderSettledorder_key=")):
        assert step in out and shown in out[out.index(step):], step
    assert "|150=B|" in out and "IndexToken.balanceOf(" in out
    assert "signature=" not in out  # the exchange request's signature is left out


def test_the_runtime_refuses_filters_the_exchange_does_not_have() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            ours = setup()
            markets = tuple(replace(m, tick_size=D("0.1")) if m.symbol == "A2USDC" else m
                            for m in ours.markets)
            runtime = Runtime(replace(ours, markets=markets).build(), conn, settings=FAST)
            with pytest.raises(ExchangeMismatch,
                               match=r"A2USDC: the exchange's tick_size is 0\.01.*, ours 0\.1"):
                await runtime.run()
    run(scenario())


def test_the_runtime_refuses_a_fee_reserve_below_the_account_s_commission() -> None:
    async def scenario() -> None:
        async with running(mock_server()) as server, connector(server) as conn:
            ours = setup()  # the mock's markets charge 0.1 %
            params = replace(ours.params, fee_reserve=D("0.0009"))
            runtime = Runtime(replace(ours, params=params).build(), conn, settings=FAST)
            with pytest.raises(ExchangeMismatch, match=r"fee_reserve: 0\.0009 keeps back less "
                               r"than the exchange account's taker fee rate of 0\.001"):
                await runtime.run()
    run(scenario())


def test_the_journal_grows_with_orders_not_with_time(tmp_path: Path) -> None:
    """Idle while the books move, the runtime journals nothing; an order reaches the engine
    after the books that moved; an order no plan can serve is planned again while the books
    move, and no more once they stand still."""
    async def scenario() -> None:
        async with running(mock_server(step_ms=20)) as server, connector(server) as conn:
            journal = Journal.create(tmp_path / "journal.db", setup())
            runtime = Runtime(journal.setup.build(), conn, journal, FAST)
            rounds = _count_timer_rounds(runtime)
            serving = asyncio.create_task(runtime.run())
            await until(lambda: runtime.market_data.live, timeout=30, what="books live")
            await _rounds_pass(rounds, 5)
            assert runtime.engine.transactions_applied == 0, "time or books were journaled"

            runtime.submit(DepositConfirmed(runtime.clock(), "d-1", "alice", "USDC", D(900)))
            runtime.submit(SubmitIndexOrder(runtime.clock(), "alice", "low", "SY2", D(900),
                                            max_price=D("0.01")))  # below the market
            await _rounds_pass(rounds, 5)
            inputs = [type(t.input).__name__ for t in journal.transactions()]
            assert inputs[:2] == ["DepositConfirmed", "BookUpdated"]
            first_order = inputs.index("SubmitIndexOrder")
            assert set(inputs[1:first_order]) == {"BookUpdated"}
            plans = [n for n, kind in enumerate(inputs) if kind == "PlanBatch"]
            assert len(plans) >= 2, "not planned again as the books moved"
            assert all(inputs[n - 1] == "BookUpdated" for n in plans[1:]), \
                "the timer planned again on the same books"

            server._stepper.cancel()  # type: ignore[union-attr]  # the market stands still
            await _rounds_pass(rounds, 2)
            still = runtime.engine.transactions_applied
            await _rounds_pass(rounds, 5)
            assert runtime.engine.transactions_applied == still, "planned again on still books"
            runtime.stop()
            await serving
            journal.close()
    run(scenario(), timeout=90)


def _count_timer_rounds(runtime: Runtime) -> list[int]:
    """A counter of the runtime's timer rounds (each asks whether the books moved)."""
    rounds = [0]
    moved = runtime.market_data.moved

    def counted() -> bool:
        rounds[0] += 1
        return moved()
    runtime.market_data.moved = counted  # type: ignore[method-assign]
    return rounds


async def _rounds_pass(rounds: list[int], n: int) -> None:
    start = rounds[0]
    await until(lambda: rounds[0] >= start + n, timeout=30, what=f"{n} timer rounds")
