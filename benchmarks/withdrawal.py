"""How long a withdrawal waits for what the solver holds: the whole service (runtime, mock
Binance, embedded chain, watcher, settler), one account with many orders, some engaged in
batches on the exchange, when the user asks the vault for everything back.

Measured per run, from the request's transaction mined: until the solver asks the vault to
release it (every batch holding the account's collateral settled, every settlement of its
orders on the chain), and until the payout is journaled. The vault's delay is the bound it
must stay well inside (hours; `chain deploy --withdrawal-delay`, 86,400 s by default).
``--runs`` (default 10), ``--orders`` per run (default 40).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from benchmarks.figures import percentiles
from chain.deploy import contract
from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from mocks.binance.local import KEY, mock_server, running
from mocks.ports import free_port
from solver.core import events as ev
from solver.core.commands import SubmitIndexOrder
from solver.core.signed_terms import SignedTerms
from solver.demo import FEE_BOUND_BPS, embedded_chain, signing_wallets
from solver.exchange.endpoints import local
from solver.service.order_signing import order_signing
from solver.service.runtime import RuntimeSettings
from solver.service.service import running_service
from solver.signed_orders import Domain, signed_by
from solver.simulation.run import setup_of
from solver.simulation.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples" / "scenarios" / "basic.toml"


async def one_run(orders: int, store: Path) -> tuple[float, float]:
    scenario = load_scenario(SCENARIO)
    link = await embedded_chain(scenario, ["alice", "bob"])
    setup = setup_of(scenario)
    fix = FixSettings(port=free_port(), comp_id="SOLVER", store=store,
                      accounts=(Account("alice", "ALICE", hash_password("unused")),),
                      signing=order_signing(link.deployment, setup, link.wallets.items()))
    key = signing_wallets(link)["alice"].account.key.to_0x_hex()
    domain = Domain(link.deployment.chain_id, link.deployment.vault)
    deadline_s = int(time.time()) + 86_400
    released: list[float] = []
    paid: list[float] = []
    async with running(mock_server(step_ms=20)) as server, running_service(
            setup, fix, local(server.port), KEY,
            settings=RuntimeSettings(plan_every_ms=50), chain=link) as service:
        runtime = service.runtime
        runtime.bus.subscribe(ev.WithdrawalReleaseRequested,
                              lambda e: released.append(time.perf_counter()))
        runtime.bus.subscribe(ev.CollateralWithdrawn, lambda e: paid.append(time.perf_counter()))
        while runtime.engine.ledger.balance("alice", "USDC").deposited == 0:
            await asyncio.sleep(0.01)
        for n in range(orders):  # signed for any price: withdrawals are measured, not prices
            terms = signed_by(SignedTerms(link.wallets["alice"], f"o{n}", Decimal(100),
                                          Decimal(10**6), FEE_BOUND_BPS, deadline_s, ""),
                              key, link.deployment.index_tokens["SY2"], 6, domain)
            runtime.submit(SubmitIndexOrder(runtime.clock(), "alice", f"o{n}", "SY2",
                                            Decimal(100), signed=terms))
        while not any(not b.settled for b in runtime.engine.batches.values()):
            await asyncio.sleep(0.001)  # a batch is on the exchange: ask now
        vault = contract(link.w3, "CollateralVault", link.deployment.vault)
        wallet = link.wallets["alice"]
        receipt = await link.w3.eth.wait_for_transaction_receipt(
            await vault.functions.request_withdrawal(10**12).transact({"from": wallet}))
        asked = time.perf_counter()
        assert receipt["status"] == 1
        while not paid:
            await asyncio.sleep(0.005)
    return released[0] - asked, paid[0] - asked


async def main_async(runs: int, orders: int) -> None:
    import tempfile

    to_release, to_paid = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as name:
            release, paid = await one_run(orders, Path(name))
        to_release.append(release)
        to_paid.append(paid)
    print(f"withdrawal asked -> release requested ({orders} orders, some in flight): "
          f"{percentiles(to_release)}")
    print(f"withdrawal asked -> payout journaled: {percentiles(to_paid)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--orders", type=int, default=40)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    asyncio.run(main_async(args.runs, args.orders))


if __name__ == "__main__":
    main()
