"""The journal: appends per second with and without group commit, replay speed, restart time.

Goal: restart (open and verify the journal, load the latest snapshot, replay the rest) from a
1,000,000-event journal in under 10 s. ``--events N`` scales the restart journal down.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver.core.params import SolverParams
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, local
from solver.journal.replay import Checkpoint, rebuild
from solver.journal.store import Journal
from solver.service.runtime import Runtime
from solver.service.service import projections
from solver.simulation import synthetic
from solver.simulation.run import Simulation, setup_of

EVENTS_PER_ORDER = 13  # measured on this synthetic market; only sizes the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--snapshot-every", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        appends(directory)
        restart(directory, args.events, args.snapshot_every)


def appends(directory: Path) -> None:
    scenario = synthetic.scenario(2_000, 10, params=SolverParams(max_orders_per_batch=500))
    simulation = Simulation(scenario)
    simulation.run()
    transactions = simulation.transactions
    for group in (1, 16, 256):
        path = directory / f"append-{group}.db"
        journal = Journal.create(path, setup_of(scenario))
        start = time.perf_counter()
        for n, transaction in enumerate(transactions, 1):
            journal.append(transaction)
            if n % group == 0:
                journal.commit()
        journal.commit()
        elapsed = time.perf_counter() - start
        journal.close()
        print(f"append, commit every {group:>3} transactions: "
              f"{len(transactions) / elapsed:>9,.0f} transactions/s "
              f"({len(transactions)} transactions, {simulation.engine.last_seq} events, "
              f"fsync per commit)")


def restart(directory: Path, events: int, snapshot_every: int) -> None:
    orders = max(100, events // EVENTS_PER_ORDER)
    scenario = synthetic.scenario(orders, 10, params=SolverParams(max_orders_per_batch=1000))
    path = directory / "restart.db"
    journal = Journal.create(path, setup_of(scenario))
    start = time.perf_counter()
    simulation = Simulation(scenario, journal=journal, snapshot_every=snapshot_every)
    indexes = {i.symbol: i for i in scenario.indexes}
    for name, new in projections(indexes).items():  # checkpointed as the service's are
        simulation.sequencer.projections[name] = projection = new()
        simulation.bus.observe(projection)
    simulation.run()
    written = time.perf_counter() - start
    print(f"journal written: {journal.last_seq:,} events in {journal.last_number:,} "
          f"transactions, {path.stat().st_size / 1e6:,.0f} MB, "
          f"{len(journal.snapshots())} snapshots, {written:.1f} s (simulation included)")
    journal.close()

    start = time.perf_counter()
    with Journal.open(path) as journal:
        opened = time.perf_counter() - start
        replayed = rebuild(journal)
    total = time.perf_counter() - start
    print(f"restart: open and verify {opened:.2f} s, snapshot #{replayed.snapshot:,} + "
          f"{replayed.replayed:,} transactions replayed; total {total:.2f} s (goal < 10 s)")
    with Journal.open(path, verify=False) as journal:
        for checkpoint in (replayed.checkpoint, Checkpoint()):
            start = time.perf_counter()
            runtime = Runtime(replayed.engine, BinanceConnector(local(1), ApiKey("k", "s")),
                              journal, checkpoint=checkpoint)
            for name, new in projections(indexes).items():
                runtime.resume(name, new)
            how = "from their checkpoint" if checkpoint.number else "from the whole journal"
            print(f"the service's projections (views, FIX accounts, chain memory) {how}: "
                  f"{time.perf_counter() - start:.2f} s")

    with Journal.open(path, verify=False) as journal:
        start = time.perf_counter()
        full = rebuild(journal, use_snapshot=False)
        elapsed = time.perf_counter() - start
        print(f"full replay without snapshots: {full.replayed:,} transactions, "
              f"{journal.last_seq:,} events in {elapsed:.1f} s -> "
              f"{journal.last_seq / elapsed:,.0f} events/s")


if __name__ == "__main__":
    main()
