"""How much of their collateral orders get to spend: many orders at the caps through
``simulate``, and the collateral released on orders that ended as filled.

Goal: released on filled orders < 1 % of all collateral (the fee reserve and rounding): an
order is carried by later batches while a batch could still buy for it, and completes only
when what is left can buy nothing.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver.core.orders import OrderStatus
from solver.core.params import SolverParams
from solver.simulation import synthetic
from solver.simulation.run import simulate
from solver.simulation.scenario import Scenario

RUNS = (  # (orders, assets, batch cap, per-order cap, step size)
    (600, 3, Decimal(60_000), Decimal(1_000), synthetic.STEP),
    (600, 3, Decimal(60_000), Decimal(1_000), Decimal("0.1")),
    (2_000, 10, Decimal(60_000), Decimal(2_000), synthetic.STEP),
)


def coarse(scenario: Scenario, step: Decimal) -> Scenario:
    """The scenario with every market's step (and minimum quantity) at ``step``."""
    markets = {a: replace(m, rules=replace(m.rules, step_size=step, min_qty=step))
               for a, m in scenario.markets.items()}
    return replace(scenario, markets=markets)


def run(orders: int, assets: int, batch_cap: Decimal, order_cap: Decimal,
        step: Decimal) -> None:
    params = SolverParams(max_batch_notional=batch_cap, max_order_notional=order_cap,
                          max_inflight_notional=batch_cap, max_orders_per_batch=1_000)
    scenario = coarse(synthetic.scenario(orders, assets, params=params), step)
    start = time.perf_counter()
    result = simulate(scenario)
    elapsed = time.perf_counter() - start
    done = list(result.engine.orders.values())
    collateral = sum((o.collateral for o in done), Decimal(0))
    spent = sum((o.spent for o in done), Decimal(0))
    on_filled = sum((o.released for o in done if o.status is OrderStatus.FILLED), Decimal(0))
    elsewhere = sum((o.released for o in done if o.status is not OrderStatus.FILLED),
                    Decimal(0))
    statuses = Counter(o.status.value for o in done)
    print(f"completion: {orders} orders on a {assets}-asset index, batch cap {batch_cap}, "
          f"order cap {order_cap}, step {step}: {len(result.engine.batches)} batches in "
          f"{elapsed:.1f} s; "
          f"{dict(statuses)}; rejected at the door {len(scenario.orders) - len(done)}")
    print(f"  collateral {collateral:,.2f}, spent {spent / collateral:.4%}, released on filled "
          f"orders {on_filled / collateral:.4%} (goal < 1 %), released on others "
          f"{elsewhere / collateral:.4%}; largest release on a filled order "
          f"{max((o.released for o in done if o.status is OrderStatus.FILLED), default=0)}; "
          f"invariants {result.violations or 'ok'}")


def main() -> None:
    for figures in RUNS:
        run(*figures)


if __name__ == "__main__":
    main()
