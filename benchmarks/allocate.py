"""Record and allocate 100,000 fills (goal: over 100,000 allocations/s).

One batch of 1,000 orders on a 10-asset index; each asset order is filled in 10,000 trades.
Measured: the engine taking the trades in as lots, and settling the batch (allocating every
lot to the orders at the pool VWAPs, with per-lot assignment records).
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver.core import events as ev
from solver.core.commands import (
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BookUpdated,
    DepositConfirmed,
    PlanBatch,
    SubmitIndexOrder,
)
from solver.core.engine import Engine
from solver.core.params import SolverParams
from solver.simulation import synthetic

ORDERS, ASSETS, FILLS, RUNS = 1_000, 10, 100_000, 3


def main() -> None:
    runs = [run() for _ in range(RUNS)]
    recorded = statistics.median(r[0] for r in runs)
    settling = statistics.median(r[1] for r in runs)
    print(f"median of {RUNS} runs")
    print(f"fills recorded as lots: {FILLS / recorded:,.0f} fills/s")
    print(f"batch settlement: {settling * 1000:.0f} ms -> "
          f"{FILLS / settling:,.0f} fills allocated/s")
    print(f"end to end: {FILLS / (recorded + settling):,.0f} fills/s")


def run() -> tuple[float, float]:
    """One batch filled in FILLS trades: seconds to record them, seconds to settle it."""
    names = synthetic.assets(ASSETS)
    index = synthetic.index("SYN", names)
    markets = [synthetic.market(a, n, depth="1000000") for n, a in enumerate(names)]
    engine = Engine([index], [m.rules for m in markets], SolverParams(
        max_orders_per_batch=ORDERS, max_batch_notional=Decimal(10**12),
        max_inflight_notional=Decimal(10**12), max_order_notional=Decimal(10**9)))
    ts = 0
    for m in markets:
        engine.apply(BookUpdated(ts, m.book))
    engine.apply(DepositConfirmed(ts, "d", "desk", "USDC", Decimal(10**9)))
    for n in range(ORDERS):
        engine.apply(SubmitIndexOrder(ts, "desk", f"o{n}", "SYN", Decimal(1000 + n)))
    requests = engine.apply(PlanBatch(ts)).of_type(ev.AssetOrderRequested)
    per_order = FILLS // len(requests)
    trades = []
    for r in requests:
        piece = (r.quantity / per_order).quantize(synthetic.STEP.scaleb(-4))
        quantities = [piece] * (per_order - 1) + [r.quantity - piece * (per_order - 1)]
        trades += [AssetOrderFilled(ts, r.asset_order_id, str(n), r.price, q,
                                    r.price * q / 1000, "USDC") for n, q in enumerate(quantities)]
    start = time.perf_counter()
    for trade in trades:
        engine.apply(trade)
    recorded = time.perf_counter() - start
    for r in requests[:-1]:
        engine.apply(AssetOrderEnded(ts, r.asset_order_id, AssetOrderOutcome.FILLED, r.quantity))
    last = requests[-1]
    start = time.perf_counter()
    settled = engine.apply(AssetOrderEnded(ts, last.asset_order_id, AssetOrderOutcome.FILLED,
                                           last.quantity))
    settling = time.perf_counter() - start
    filled = settled.of_type(ev.IndexOrderFilled)
    assignments = sum(len(e.assignments) for e in settled.of_type(ev.BatchSettled))
    print(f"run: {len(trades)} fills, {len(filled)} orders filled, {assignments} lot "
          f"assignments; settled in {settling * 1000:.0f} ms")
    return recorded, settling


if __name__ == "__main__":
    main()
