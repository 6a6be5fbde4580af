"""The views' and adapters' memories of the events (projections) are checkpointed with the
engine's snapshots: a start resumes each from its checkpoint and the transactions since, reads
only those, and ends where a projection fed the whole journal ends."""

from __future__ import annotations

from pathlib import Path

from solver.core.commands import ClockTicked
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, local
from solver.journal.replay import rebuild
from solver.journal.snapshot import state_of
from solver.journal.store import Journal
from solver.service.runtime import Runtime, RuntimeSettings
from solver.service.service import projections
from solver.simulation.run import Simulation, setup_of
from tests.integration.test_journal import long_scenario


def picture(projection: object) -> object:
    view = getattr(projection, "view", None)
    return state_of(view() if callable(view) else projection)


def test_projections_resume_from_their_checkpoint_where_a_full_replay_ends(
        tmp_path: Path) -> None:
    scenario = long_scenario(orders=300)
    indexes = {i.symbol: i for i in scenario.indexes}
    path = tmp_path / "journal.db"
    journal = Journal.create(path, setup_of(scenario))
    simulation = Simulation(scenario, journal=journal, snapshot_every=97)
    followed = {name: new() for name, new in projections(indexes).items()}
    for name, projection in followed.items():
        simulation.bus.observe(projection)
        simulation.sequencer.projections[name] = projection
    simulation.run()
    journal.close()

    with Journal.open(path) as journal:
        rebuilt = rebuild(journal, keep=True)
        assert 0 < rebuilt.snapshot < journal.last_number, "no tail after the checkpoint"
        assert set(rebuilt.checkpoint.projections) == set(followed)
        connector = BinanceConnector(local(1), ApiKey("key", "secret"))  # never started
        runtime = Runtime(rebuilt.engine, connector, journal, checkpoint=rebuilt.checkpoint)
        for name, new in projections(indexes).items():
            assert picture(runtime.resume(name, new)) == picture(followed[name]), name
        assert list(runtime._read) == [rebuilt.snapshot], "read more than the tail"
        assert runtime._read[rebuilt.snapshot] is rebuilt.transactions, "the tail read twice"

        fresh = Runtime(rebuild(journal, use_snapshot=False).engine, connector, journal)
        for name, new in projections(indexes).items():  # no checkpoint: the whole journal
            assert picture(fresh.resume(name, new)) == picture(followed[name]), name


def test_a_start_with_a_long_tail_snapshots_at_its_first_transaction(tmp_path: Path) -> None:
    """The snapshot clock starts from the snapshot the engine was rebuilt from, not from the
    start: a service that keeps stopping short of ``snapshot_every`` new transactions still
    snapshots, and no start replays more than ``snapshot_every``."""
    scenario = long_scenario(orders=100)
    path = tmp_path / "journal.db"
    journal = Journal.create(path, setup_of(scenario))
    Simulation(scenario, journal=journal, snapshot_every=10_000).run()  # none taken
    journal.close()
    with Journal.open(path) as journal:
        rebuilt = rebuild(journal)
        assert rebuilt.snapshot == 0 and journal.last_number > 20
        connector = BinanceConnector(local(1), ApiKey("key", "secret"))  # never started
        runtime = Runtime(rebuilt.engine, connector, journal, RuntimeSettings(snapshot_every=20),
                          checkpoint=rebuilt.checkpoint)
        runtime.sequencer.apply(ClockTicked(10**12))
        runtime.sequencer.flush()
        assert [number for number, _, _ in journal.snapshots()] == [journal.last_number]
