"""A full ``simulate`` of 10,000 orders from 100 accounts on a 10-asset index."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver.simulation import synthetic
from solver.simulation.run import simulate

ORDERS, ASSETS = 10_000, 10


def main() -> None:
    scenario = synthetic.scenario(ORDERS, ASSETS)
    start = time.perf_counter()
    result = simulate(scenario)
    elapsed = time.perf_counter() - start
    orders = result.engine.orders.values()
    print(f"simulate: {ORDERS} orders, {ASSETS} assets, {len(result.engine.batches)} batches, "
          f"{len(result.exchange.trades)} trades, {len(result.events)} events")
    print(f"simulate wall time: {elapsed:.2f} s -> {ORDERS / elapsed:,.0f} orders/s, "
          f"{len(result.events) / elapsed:,.0f} events/s")
    print(f"completed: {sum(not o.is_open for o in orders)}, "
          f"minted: {sum(o.minted_units > 0 for o in orders)}, "
          f"invariants: {result.violations or 'ok'}")


if __name__ == "__main__":
    main()
