"""What an engine is built from. The journal keeps it, so that replay needs nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.core.engine import Engine
from solver.core.market import MarketRules
from solver.core.model import Collateral, Index
from solver.core.params import SolverParams


@dataclass(frozen=True, slots=True)
class EngineSetup:
    indexes: tuple[Index, ...]
    markets: tuple[MarketRules, ...]
    params: SolverParams = field(default_factory=SolverParams)
    collaterals: tuple[Collateral, ...] = ()
    client_order_prefix: str = "ixs"

    def build(self) -> Engine:
        """A fresh engine in its initial state."""
        return Engine(self.indexes, self.markets, self.params, self.collaterals,
                      self.client_order_prefix)
