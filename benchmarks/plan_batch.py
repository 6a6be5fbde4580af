"""Plan one batch of 1,000 orders on a 100-asset index (goal: under 20 ms).

Three figures: ``plan_batch`` fitting the 1,000 orders; ``choose_batch``, what a PlanBatch
runs (the orders sorted into those that can be bought alone and remainders, then fitted); and
``choose_batch`` when the 100 oldest orders are remainders too small to be bought together, so
that the first set tried gives nothing and the planner falls back to the next.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import percentiles
from solver.core.fitting import BatchPlan, Candidate, Market, plan_batch
from solver.core.params import SolverParams
from solver.core.planning import choose_batch
from solver.simulation import synthetic

ORDERS, ASSETS, RUNS = 1_000, 100, 50
ROOM = Decimal(10**9)
SMALLEST = {"USDC": Decimal("0.01")}


def timed(name: str, plan: Callable[[], object]) -> None:
    samples, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = plan()
        samples.append(time.perf_counter() - start)
    assert isinstance(result, BatchPlan), result
    print(f"{name}: {len(result.engagements)} engaged, {len(result.asset_orders)} asset orders; "
          f"{percentiles(samples)}")


def main() -> None:
    names = synthetic.assets(ASSETS)
    index = synthetic.index("SYN", names)
    markets = {a: Market(s.rules, s.book) for a, s in
               ((a, synthetic.market(a, n)) for n, a in enumerate(names))}
    candidates = [Candidate(n, index, Decimal(100 + n) * 100) for n in range(ORDERS)]
    params = SolverParams(max_orders_per_batch=ORDERS, max_batch_notional=Decimal(10**9),
                          max_inflight_notional=Decimal(10**9))
    print(f"{ORDERS} orders x {ASSETS} assets")
    timed("plan_batch", lambda: plan_batch(candidates, markets, {}, params, ROOM))
    timed("choose_batch", lambda: choose_batch(candidates, markets, {}, params, ROOM, SMALLEST))
    slots = SolverParams(max_orders_per_batch=100, max_batch_notional=Decimal(10**9),
                         max_inflight_notional=Decimal(10**9))
    tiny = [Candidate(n, index, Decimal("0.05")) for n in range(100)]
    timed("choose_batch, 100 remainders first",
          lambda: choose_batch(tiny + candidates[100:], markets, {}, slots, ROOM, SMALLEST))


if __name__ == "__main__":
    main()
