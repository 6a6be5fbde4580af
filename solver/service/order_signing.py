"""What the gateway checks orders' signatures against, for a service on a chain: the vault's
domain and its index tokens (the chain deployment file), the accounts' wallets, and each
index's collateral decimals (the engine's setup)."""

from __future__ import annotations

from collections.abc import Iterable

from chain.deployment import ChainDeployment
from fix_gateway.signing import OrderSigning
from solver.core.model import Collateral
from solver.core.setup import EngineSetup
from solver.signed_orders import Domain


def order_signing(chain: ChainDeployment, setup: EngineSetup,
                  wallets: Iterable[tuple[str, str]]) -> OrderSigning:
    """Every order signed by its account's wallet (``wallets``: account, wallet)."""
    known = {c.asset: c for c in setup.collaterals}
    decimals = {i.symbol: known.get(i.collateral, Collateral(i.collateral)).decimals
                for i in setup.indexes}
    return OrderSigning(Domain(chain.chain_id, chain.vault), dict(chain.index_tokens),
                        decimals, dict(wallets))
