"""What the chain adapters remember from the events, following the bus from the start: the
writer answers orders while web3 loads and the node is reached, and what it publishes
meanwhile waits here for the settler and the reconciler. Pure data (no web3), checkpointed
with the engine's snapshots."""

from __future__ import annotations

from dataclasses import dataclass

from chain.ledger_side import LedgerSide
from chain.mints import MintsWaiting
from solver.service.runtime import Runtime


@dataclass(frozen=True)
class ChainMemory:
    mints: MintsWaiting
    ledger_side: LedgerSide

    @classmethod
    def resumed(cls, runtime: Runtime) -> ChainMemory:
        return cls(runtime.resume(MintsWaiting.NAME, MintsWaiting),
                   runtime.resume(LedgerSide.NAME, LedgerSide))
