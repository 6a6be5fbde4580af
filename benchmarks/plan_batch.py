"""Plan one batch of 1,000 orders on a 100-asset index (goal: under 20 ms)."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import percentiles
from mocks import synthetic
from solver.core.fitting import Candidate, Market, plan_batch
from solver.core.params import SolverParams

ORDERS, ASSETS, RUNS = 1_000, 100, 50


def main() -> None:
    names = synthetic.assets(ASSETS)
    index = synthetic.index("SYN", names)
    markets = {a: Market(s.rules, s.book) for a, s in
               ((a, synthetic.market(a, n)) for n, a in enumerate(names))}
    candidates = [Candidate(n, index, Decimal(100 + n)) for n in range(ORDERS)]
    params = SolverParams(max_orders_per_batch=ORDERS, max_batch_notional=Decimal(10**9),
                          max_inflight_notional=Decimal(10**9))
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        plan = plan_batch(candidates, markets, {}, params, Decimal(10**9))
        samples.append(time.perf_counter() - start)
    assert plan is not None
    print(f"plan_batch: {ORDERS} orders x {ASSETS} assets -> {len(plan.engagements)} engaged, "
          f"{len(plan.asset_orders)} asset orders")
    print(f"plan_batch latency: {percentiles(samples)}")


if __name__ == "__main__":
    main()
