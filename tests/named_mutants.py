"""Each rule the core's tests must guard, removed from the core one at a time: the property,
liveness, fitting and engine tests must fail every time (each rule has an example of its own,
so not by chance). Not
part of ``make test`` (a minute or two per rule); run it after changing the core or the
tests:

    .venv/bin/python -m tests.named_mutants [RULE ...]

mutmut's run over the whole core is recorded in ``docs/mutation.md``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = {  # rule: (file, the line as it is, the line without the rule)
    "batch cap": ("solver/core/fitting.py", "    cap = min(params.max_batch_notional, room)",
                  "    cap = room"),
    "in-flight cap": (
        "solver/core/batching.py",
        "    room = state.params.max_inflight_notional - state.inflight_notional()",
        "    room = state.params.max_inflight_notional"),
    "per-order cap": (
        "solver/core/fitting.py",
        "    usable = min(remaining / (ONE + params.fee_reserve), params.max_order_notional)",
        "    usable = remaining / (ONE + params.fee_reserve)"),
    "max price refusal": (
        "solver/core/fitting.py",
        "    return price > 0 and (order.max_price is None or price <= order.max_price)",
        "    return price > 0"),
    "buys floored to the step": ("solver/core/market.py",
                                 "        quantity = floor_to(wanted, self.step_size)",
                                 "        quantity = ceil_to(wanted, self.step_size)"),
    "commission in the asset bought netted": (
        "solver/core/exchange_facts.py",
        "        quantity, fee = fact.quantity - fact.commission, fact.commission * fact.price",
        "        quantity, fee = fact.quantity, fact.commission * fact.price"),
    "completion rule": (
        "solver/core/actions.py",
        "    if price is None or can_be_engaged(index, order.remaining, price, state.params,",
        "    if price is None or not can_be_engaged(index, order.remaining, price, "
        "state.params,"),
    "remainders take no slot from orders that can be bought": (
        "solver/core/planning.py", "        return buyable + remainders",
        "        return sorted(buyable + remainders, key=_oldest)"),
    "the lead is engaged, or its index or itself alone is tried": (
        "solver/core/planning.py",
        "    if isinstance(whole, BatchPlan) and (queue.lead is None or _engages(whole, "
        "queue.lead)):",
        "    if isinstance(whole, BatchPlan):"),
    "indexes take turns": (
        "solver/core/planning.py",
        "        return not self.buyable, self.last_served, self.orders[0].order_id",
        "        return not self.buyable, NEVER, self.orders[0].order_id"),
    "collaterals take turns": (
        "solver/core/planning.py",
        "        return first[0], max(i.last_served for i in self.indexes), first[2]",
        "        return first[0], NEVER, first[2]"),
    "a buy below the minimum buys the minimum": (
        "solver/core/fitting.py", "    if wanted < least <= needed:", "    if False:"),
    "an index that cannot get an asset takes no share of the others": (
        "solver/core/fitting.py",
        "                  if all(a in sendable or free_inventory.get(a, ZERO) > 0 for a in "
        "c.index.assets)]",
        "                  if True]"),
    "a remainder waits for company at most completion_wait_ms": (
        "solver/core/settlement.py", "        elif order.waits_until <= now:",
        "        elif False:"),
}
TESTS = ("tests/simulation/test_properties.py", "tests/simulation/test_liveness.py",
         "tests/unit/test_fitting.py", "tests/unit/test_intake.py",
         "tests/unit/test_fills_and_batches.py", "tests/unit/test_exchange_facts.py",
         "tests/unit/test_remainders.py")


def caught(rule: str) -> bool:
    file, line, mutant = MUTANTS[rule]
    path = ROOT / file
    original = path.read_text()
    if original.count(line + "\n") != 1:
        raise SystemExit(f"{rule}: {file} no longer has the line {line.strip()!r}")
    path.write_text(original.replace(line + "\n", mutant + "\n"))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                               "no:cacheprovider", *TESTS], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        return done.returncode != 0
    finally:
        path.write_text(original)


def main(rules: list[str]) -> int:
    survivors = [rule for rule in rules or list(MUTANTS) if not caught(rule)]
    for rule in rules or MUTANTS:
        print(f"{rule}: {'SURVIVED' if rule in survivors else 'caught'}", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
