"""The journal: replay rebuilds the complete state, damage is found, ids survive restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import shutil
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.cli.main import main
from solver.core import engine as engine_module
from solver.core.bus import EventBus
from solver.core.commands import (
    ClockTicked,
    DepositConfirmed,
    Input,
    RequestQuote,
    SubmitIndexOrder,
)
from solver.core.events import AssetOrderRequested, Envelope, Event, InputFailed
from solver.core.params import SolverParams
from solver.journal.codec import CodecError, decode_event, encode_tagged
from solver.journal.recorder import TABLES, Recorder
from solver.journal.replay import ReplayDivergence, rebuild
from solver.journal.snapshot import state_of
from solver.journal.store import SCHEMA_VERSION, Journal, JournalCorrupt, JournalError
from solver.service.sequencer import Sequencer
from solver.simulation import synthetic
from solver.simulation.run import Simulation, setup_of
from solver.simulation.scenario import CancelSpec, Scenario, load_scenario
from solver.views.positions import PositionStore

BASIC = Path(__file__).parent.parent.parent / "examples" / "scenarios" / "basic.toml"


class RecordingSimulation(Simulation):
    """Keeps the engine's complete state after every transaction, as the reference."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states = [state_of(self.engine)]

    def apply(self, command: Input) -> Any:
        transaction = super().apply(command)
        self.states.append(state_of(self.engine))
        return transaction


def long_scenario(orders: int = 600, seed: int = 11) -> Scenario:
    scenario = synthetic.scenario(orders, 4, accounts=20, seed=seed,
                                  params=SolverParams(max_orders_per_batch=50))
    cancels = tuple(CancelSpec(o.account, o.id, after_batch=n % 7)
                    for n, o in enumerate(scenario.orders[::13]))
    return dataclasses.replace(scenario, cancels=cancels)


def run_with_journal(scenario: Scenario, path: Path, snapshot_every: int = 0) -> Simulation:
    journal = Journal.create(path, setup_of(scenario))
    simulation = Simulation(scenario, journal=journal, snapshot_every=snapshot_every)
    simulation.run()
    journal.close()
    return simulation


# --- replay ------------------------------------------------------------------------------


def test_a_long_run_replays_to_the_same_complete_state(tmp_path: Path) -> None:
    path = tmp_path / "long.db"
    simulation = run_with_journal(long_scenario(), path, snapshot_every=400)
    with Journal.open(path) as journal:
        assert journal.last_number == simulation.engine.transactions_applied > 1000
        assert len(journal.snapshots()) >= 2
        from_start = rebuild(journal, use_snapshot=False)
        from_snapshot = rebuild(journal)
    assert from_start.snapshot == 0 and from_snapshot.snapshot >= 800
    assert from_snapshot.replayed < 400
    expected = state_of(simulation.engine)
    assert state_of(from_start.engine) == expected
    assert state_of(from_snapshot.engine) == expected
    engine = from_start.engine
    assert engine.orders and engine.inventory.positions() and engine.ledger.balances()
    assert any(o.status.value == "canceled" for o in engine.orders.values())


def test_a_crash_between_any_two_transactions_replays_to_the_state_at_that_point(
        tmp_path: Path) -> None:
    scenario = load_scenario(BASIC)
    path = tmp_path / "basic.db"
    journal = Journal.create(path, setup_of(scenario))
    simulation = RecordingSimulation(scenario, journal=journal)
    simulation.run()
    journal.close()
    assert len(simulation.states) == journal.last_number + 1
    for kept in range(journal.last_number + 1):
        cut = tmp_path / f"cut-{kept}.db"
        shutil.copy(path, cut)
        with sqlite3.connect(cut) as db:
            db.execute("DELETE FROM transactions WHERE number > ?", (kept,))
        with Journal.open(cut) as truncated:
            assert state_of(rebuild(truncated).engine) == simulation.states[kept], kept


def test_replay_refuses_a_journal_this_code_does_not_reproduce(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:  # as if an older release had computed other events
        number, events = db.execute(
            "SELECT number, events FROM transactions WHERE events LIKE '%IndexOrderFilled%' "
            "LIMIT 1").fetchone()
        events = events.replace('"units":"', '"units":"9', 1)
        db.execute("UPDATE transactions SET events = ? WHERE number = ?", (events, number))
    with Journal.open(path, verify=False) as journal, pytest.raises(ReplayDivergence,
                                                                    match=str(number)):
        rebuild(journal)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 10_000), st.integers(20, 120))
def test_the_same_inputs_journal_the_same_rows(seed: int, orders: int) -> None:
    scenario = synthetic.scenario(orders, 3, accounts=7, seed=seed,
                                  params=SolverParams(max_orders_per_batch=25))
    rows = []
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        for n in range(2):
            run_with_journal(scenario, directory / f"{n}.db", snapshot_every=7)
            with Journal.open(directory / f"{n}.db") as journal:
                rows.append(list(journal.rows()))
                assert state_of(rebuild(journal).engine) == state_of(
                    rebuild(journal, use_snapshot=False).engine)
    assert rows[0] == rows[1] and rows[0]


# --- damage and versions -----------------------------------------------------------------


def test_a_journal_written_by_this_release_replays_to_the_same_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_fixtures: Path) -> None:
    """``tests/fixtures/basic-2026-12-07.db`` was written (with snapshots) by the code of
    2026-12-07 from ``examples/scenarios/basic.toml`` (``Simulation(scenario, journal=...,
    snapshot_every=10).run()``); its report is kept beside it. A change
    that makes it replay differently changes the engine's rules: say so in docs/journal.md."""
    journal = tmp_path / "journal.db"
    shutil.copy(journal_fixtures / "basic-2026-12-07.db", journal)  # opening one may write
    assert main(["journal", "replay", str(journal), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((journal_fixtures / "basic-2026-12-07.report.json").read_text())


def test_a_journal_an_earlier_release_decided_differently_is_refused_naming_the_transaction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_fixtures: Path) -> None:
    """``basic-2026-11-30.db`` was written before the planner said why a plan found nothing
    (``BatchNotPlanned``, 2026-12-07): this release does not reproduce it, and says where; its
    records still read (the codec's names for the older layout's types)."""
    journal = tmp_path / "old.db"
    shutil.copy(journal_fixtures / "basic-2026-11-30.db", journal)
    Journal.open(journal).close()  # the service migrates it to this release's schema
    assert main(["journal", "replay", str(journal), "--json"]) == 3
    assert "replaying transaction 32 gave different events than were journaled" in (
        capsys.readouterr().err)
    assert main(["journal", "inspect", str(journal)]) == 0
    assert "SubmitIndexOrder" in capsys.readouterr().out


def test_commits_are_fsynced_write_ahead(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "j.db", setup_of(load_scenario(BASIC))) as journal:
        db = journal._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_input_the_journal_cannot_hold_exactly_is_refused_and_changes_nothing(
        tmp_path: Path) -> None:
    scenario = load_scenario(BASIC)
    journal = Journal.create(tmp_path / "j.db", setup_of(scenario))
    sequencer = Sequencer(journal.setup.build(), EventBus(), journal)
    for bad in (DepositConfirmed(1, "d1", "alice", "USDC", 1.5),  # type: ignore[arg-type]
                DepositConfirmed(1, "d1", "alice", "USDC", 100)):  # type: ignore[arg-type]
        with pytest.raises(CodecError):
            sequencer.apply(bad)
    assert sequencer.engine.transactions_applied == 0
    sequencer.apply(DepositConfirmed(1, "d1", "alice", "USDC", Decimal(100)))
    sequencer.flush()
    assert journal.last_number == 1
    journal.close()


def test_the_writer_refuses_text_that_is_not_utf8_and_goes_on(tmp_path: Path) -> None:
    """Bytes that were not UTF-8 reach Python as lone surrogates, which SQLite cannot store:
    the writer refuses that input before the engine sees it, says so, and serves the next."""
    journal = Journal.create(tmp_path / "j.db", setup_of(load_scenario(BASIC)))
    bus = EventBus()
    refused: list[tuple[str, str]] = []
    bus.on_refusal(lambda command, reason: refused.append((type(command).__name__, reason)))
    sequencer = Sequencer(journal.setup.build(), bus, journal)
    inbox: asyncio.Queue[Input] = asyncio.Queue()
    inbox.put_nowait(DepositConfirmed(1, "d1", "alice", "USDC", Decimal(100)))
    inbox.put_nowait(SubmitIndexOrder(2, "alice", "p1-\udcff\udc80", "SY2", Decimal(50)))
    inbox.put_nowait(SubmitIndexOrder(3, "alice", "p2", "SY2", Decimal(50)))

    async def serve() -> None:
        writer = asyncio.create_task(sequencer.run(inbox))
        while not inbox.empty() or sequencer.engine.transactions_applied < 2:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)  # the last group's flush
        writer.cancel()

    asyncio.run(serve())
    assert refused == [("SubmitIndexOrder", "SubmitIndexOrder holds text that is not UTF-8")]
    assert [o.client_order_id for o in sequencer.engine.orders.values()] == ["p2"]
    assert journal.last_number == 2 and rebuild(journal).engine.order("alice", "p2")
    journal.close()


def test_an_input_the_engine_fails_on_is_journaled_as_refused_and_replayed_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(engine: object, command: object) -> list[Event]:
        raise ZeroDivisionError("a defect")

    monkeypatch.setitem(engine_module._HANDLERS, RequestQuote, broken)
    journal = Journal.create(tmp_path / "j.db", setup_of(load_scenario(BASIC)))
    sequencer = Sequencer(journal.setup.build(), EventBus(), journal)
    [refused] = sequencer.apply(RequestQuote(1, "q1", "SY2", Decimal(100))).events
    assert refused.event == InputFailed(
        "the engine failed on this input: ZeroDivisionError: a defect")
    sequencer.apply(DepositConfirmed(2, "d1", "alice", "USDC", Decimal(100)))
    sequencer.flush()
    assert rebuild(journal).engine.transactions_applied == 2  # the same events again
    journal.close()


def test_an_engine_failure_journaled_under_its_old_name_still_decodes() -> None:
    old = {"type": "InputRefused", "reason": "the engine failed on this input: x"}
    assert decode_event(old) == InputFailed("the engine failed on this input: x")
    assert encode_tagged(InputFailed("x"))["type"] == "InputFailed"


def test_a_failed_commit_keeps_its_rows_for_the_retry(tmp_path: Path) -> None:
    scenario = load_scenario(BASIC)
    journal = Journal.create(tmp_path / "j.db", setup_of(scenario))
    sequencer = Sequencer(journal.setup.build(), EventBus(), journal)
    sequencer.apply(DepositConfirmed(1, "d1", "alice", "USDC", Decimal(100)))
    blocker = sqlite3.connect(tmp_path / "j.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the commit fails
    journal._db.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(sqlite3.OperationalError):
        journal.commit()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert journal.commit() == 1
    assert [row.number for row in journal.rows()] == [1]
    journal.close()


def test_a_failing_subscriber_does_not_starve_the_others() -> None:
    simulation = Simulation(load_scenario(BASIC))
    seen: list[int] = []

    def broken(envelope: Envelope) -> None:
        raise RuntimeError("consumer bug")

    simulation.bus.subscribe(Event, broken)
    simulation.bus.subscribe(Event, lambda e: seen.append(e.seq))
    result = simulation.run()
    assert seen == [e.seq for e in result.events]
    assert result.violations == []


def test_a_changed_setup_is_found(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = replace(value, '0.01', '0.02') WHERE key = 'setup'")
    with pytest.raises(JournalCorrupt, match="setup fails its checksum"):
        Journal.open(path)


def test_a_snapshot_that_does_not_load_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    simulation = run_with_journal(long_scenario(orders=150), path, snapshot_every=50)
    garbage = b"not a pickle"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE snapshots SET state = ?, sha256 = ?",
                   (garbage, hashlib.sha256(garbage).hexdigest()))
    with Journal.open(path) as journal:
        replayed = rebuild(journal)
    assert replayed.snapshot == 0
    assert state_of(replayed.engine) == state_of(simulation.engine)


def test_committed_transactions_missing_behind_a_snapshot_are_found(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(long_scenario(orders=150), path, snapshot_every=50)
    with sqlite3.connect(path) as db:
        newest = db.execute("SELECT max(number) FROM snapshots").fetchone()[0]
        db.execute("DELETE FROM transactions WHERE number >= ?", (newest - 3,))
    with pytest.raises(JournalCorrupt, match="missing"):
        Journal.open(path)


def test_reading_commands_never_write_to_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    before = path.read_bytes()
    for command in (["inspect", str(path)], ["replay", str(path)],
                    ["export", str(path), "--out", str(tmp_path / "t")]):
        assert main(["journal", *command]) == 0
    assert path.read_bytes() == before
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    unrelated = other.read_bytes()
    assert main(["journal", "inspect", str(other)]) == 3
    assert "not a journal" in capsys.readouterr().err
    assert other.read_bytes() == unrelated


def test_a_changed_row_is_found_and_the_last_good_sequence_number_reported(
        tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT last_seq FROM transactions WHERE number = 19").fetchone()[0]
        db.execute("UPDATE transactions SET input = replace(input, '1', '2') WHERE number = 20")
    with pytest.raises(JournalCorrupt) as found:
        Journal.open(path)
    assert found.value.last_good_seq == before
    assert found.value.last_good_number == 19
    assert f"after event sequence number {before}" in str(found.value)


def test_a_missing_transaction_is_found(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM transactions WHERE number = 5")
    with pytest.raises(JournalCorrupt) as found:
        Journal.open(path)
    assert found.value.last_good_number == 4


@pytest.mark.parametrize("damage", ["torn last page", "garbage in the rows", "garbage header"])
def test_a_damaged_file_is_never_opened_silently(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "j.db"
    simulation = run_with_journal(long_scenario(orders=150), path)
    size = path.stat().st_size
    data = bytearray(path.read_bytes())
    if damage == "torn last page":
        data = data[: size - 2048]
    elif damage == "garbage in the rows":
        data[size // 2: size // 2 + 3000] = bytes(range(256)) * 11 + bytes(184)
    else:
        data[0:100] = b"\xff" * 100
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as found:
        Journal.open(path)
    assert 0 <= found.value.last_good_seq < simulation.engine.last_seq
    assert "will not start" in str(found.value)


def test_a_journal_from_a_newer_release_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer than this solver"):
        Journal.open(path)


def test_an_existing_journal_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with pytest.raises(JournalError, match="already exists"):
        Journal.create(path, setup_of(load_scenario(BASIC)))


# --- the writer: durable before visible, group commit, ids across restarts -------------------


def test_events_are_published_only_after_their_transaction_is_on_disk(tmp_path: Path) -> None:
    scenario = long_scenario(orders=60)
    path = tmp_path / "j.db"
    journal = Journal.create(path, setup_of(scenario))
    engine = journal.setup.build()
    bus = EventBus()
    sequencer = Sequencer(engine, bus, journal)
    reader = sqlite3.connect(path)
    seen: list[tuple[int, int]] = []

    def check(envelope: Envelope) -> None:
        stored = reader.execute("SELECT max(last_seq) FROM transactions").fetchone()[0]
        seen.append((envelope.seq, stored))

    bus.subscribe(Event, check)
    simulation_inputs = _inputs_of(scenario)

    async def serve() -> None:
        inbox: asyncio.Queue[Input] = asyncio.Queue()
        for command in simulation_inputs:
            inbox.put_nowait(command)
        task = asyncio.create_task(sequencer.run(inbox, max_group=16))
        while journal.last_number < len(simulation_inputs):
            await asyncio.sleep(0)
        task.cancel()

    commits = _count_commits(journal)
    asyncio.run(asyncio.wait_for(serve(), timeout=30))
    assert seen and all(seq <= stored for seq, stored in seen)
    assert journal.last_number == len(simulation_inputs)
    assert commits[0] <= len(simulation_inputs) // 16 + 1  # grouped, not one per input
    reader.close()
    journal.close()


def test_ids_continue_across_a_restart_and_client_order_ids_stay_unique(tmp_path: Path) -> None:
    scenario = long_scenario(orders=120)
    path = tmp_path / "j.db"
    setup = dataclasses.replace(setup_of(scenario), client_order_prefix="ixs-7f3a")
    inputs = _inputs_of(scenario)
    half = len(inputs) // 2
    requested: list[str] = []
    for part in (inputs[:half], inputs[half:]):
        journal = Journal.create(path, setup) if not path.exists() else Journal.open(path)
        engine = rebuild(journal).engine
        bus = EventBus()
        bus.subscribe(AssetOrderRequested,
                      lambda e: requested.append(e.event.client_order_id))
        sequencer = Sequencer(engine, bus, journal)
        for command in part:
            sequencer.apply(command)
        sequencer.flush()
        journal.close()
    assert len(requested) == len(set(requested)) > 2
    assert all(r.startswith("ixs-7f3a-") and len(r) <= 36 for r in requested)
    numbers = [int(r.rsplit("-", 1)[1]) for r in requested]
    assert numbers == list(range(1, len(numbers) + 1))


# --- consumers ---------------------------------------------------------------------------


def test_position_store_views_are_whole_transactions_and_match_the_engine(
        tmp_path: Path) -> None:
    scenario = long_scenario(orders=200)
    simulation = Simulation(scenario)
    store = PositionStore({i.symbol: i for i in scenario.indexes})
    simulation.bus.observe(store)
    during: list[tuple[int, int]] = []
    simulation.bus.subscribe(Event, lambda e: during.append((e.seq, store.view().transaction)))
    simulation.run()
    engine = simulation.engine
    view = store.view()
    assert view.transaction == engine.transactions_applied
    seq_to_transaction = {e.seq: t.number for t in simulation.transactions for e in t.events}
    assert all(seen < seq_to_transaction[seq] for seq, seen in during)
    for (account, index), held in view.holdings.items():
        orders = [o for o in engine.orders.values() if (o.account, o.index) == (account, index)]
        assert held.quantity == sum((o.filled_units for o in orders), Decimal(0))
        assert held.cost == sum((o.spent for o in orders), Decimal(0))
    positions = engine.inventory.positions()
    assert {a: p.quantity for a, p in view.inventory.items()} == {
        a: positions.get(a, Decimal(0)) for a in view.inventory}
    marks = {a: Decimal(1) for a in view.inventory}
    assert set(view.unrealised(marks)) == set(view.inventory)


def test_export_writes_every_table_as_parquet_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    simulation = run_with_journal(long_scenario(orders=100), path)
    for fmt in ("parquet", "csv"):
        assert main(["journal", "export", str(path), "--out", str(tmp_path / fmt),
                         "--format", fmt]) == 0
        tables = {name: (pd.read_parquet(tmp_path / fmt / f"{name}.parquet") if fmt == "parquet"
                         else pd.read_csv(tmp_path / fmt / f"{name}.csv", dtype=str))
                  for name in TABLES}
        engine = simulation.engine
        assert len(tables["orders"]) == len(engine.orders)
        assert len(tables["lots"]) == len(list(engine.inventory.lots()))
        filled = sum((Decimal(u) for u in tables["fills"]["units"]), Decimal(0))
        assert filled == sum((o.filled_units for o in engine.orders.values()), Decimal(0))
        minted = tables["mints"][tables["mints"]["event"] == "IndexOrderMinted"]
        assert len(minted) == sum(1 for o in engine.orders.values() if o.mint_tx)


def test_the_recorder_writes_tables_on_a_timer(tmp_path: Path) -> None:
    scenario = load_scenario(BASIC)
    simulation = Simulation(scenario)
    recorder = Recorder()
    recorder.attach(simulation.bus)
    simulation.run()

    async def until_written() -> None:
        task = asyncio.create_task(recorder.write_every(0.01, tmp_path / "rec"))
        while not (tmp_path / "rec" / "mints.parquet").exists():
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(until_written(), timeout=10))
    assert len(pd.read_parquet(tmp_path / "rec" / "orders.parquet")) == 2


# --- the command line --------------------------------------------------------------------


def test_journal_replay_prints_the_report_of_the_simulate_run_that_wrote_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    assert main(["simulate", str(BASIC), "--json", "--journal", str(path)]) == 0
    written = capsys.readouterr().out
    assert main(["journal", "replay", str(path), "--json"]) == 0
    assert capsys.readouterr().out == written
    assert main(["simulate", str(BASIC), "--journal", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["journal", "inspect", str(path)]) == 0
    assert "SubmitIndexOrder" in capsys.readouterr().out


def test_journal_commands_refuse_a_damaged_journal_naming_the_last_good_sequence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    run_with_journal(load_scenario(BASIC), path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE transactions SET ts = ts + 1 WHERE number = 3")
    for action in ("inspect", "replay"):
        assert main(["journal", action, str(path)]) == 3
        assert "after event sequence number" in capsys.readouterr().err
    assert main(["journal", "inspect", str(tmp_path / "missing.db")]) == 3


# --- helpers -----------------------------------------------------------------------------


def _inputs_of(scenario: Scenario) -> list[Input]:
    """The inputs a simulation of ``scenario`` applies, to feed another writer."""
    simulation = Simulation(scenario)
    simulation.run()
    return [t.input for t in simulation.transactions]


def _count_commits(journal: Journal) -> list[int]:
    counter = [0]
    commit = journal.commit

    def counting() -> int:
        written = commit()
        counter[0] += bool(written)
        return written

    journal.commit = counting  # type: ignore[method-assign]
    return counter


def test_transactions_since_an_event_start_with_the_one_holding_the_next_event(
        tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run_with_journal(long_scenario(orders=40), path)
    with Journal.open(path) as journal:
        rows = list(journal.rows())
        for seq in (0, 1, rows[3].last_seq - 1, rows[3].last_seq, rows[-1].last_seq):
            since = [t.number for t in journal.transactions_since(seq)]
            assert since == [r.number for r in rows if r.last_seq > seq]


def test_an_adapters_records_are_kept_apart_from_the_buffered_transactions(
        tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    scenario = load_scenario(BASIC)
    with Journal.create(path, setup_of(scenario)) as journal:
        engine = setup_of(scenario).build()
        journal.append(engine.apply(ClockTicked(1)))  # buffered, not committed
        journal.save_record("settle:1", '{"nonce": 7}')
        journal.save_record("settle:2", '{"nonce": 8}')
        journal.save_record("cursor:0xabc", '{"next_block": 5}')
        journal.save_record("settle:1", '{"nonce": 7, "tx": "0x1"}')
    with Journal.open(path) as journal:
        assert journal.last_number == 0  # the record's commit did not commit the transaction
        assert journal.record("settle:1") == '{"nonce": 7, "tx": "0x1"}'
        assert journal.record("settle:3") is None
        assert list(journal.records("settle:")) == ["settle:1", "settle:2"]
