"""What a deployment is: the chain, the contracts' addresses and the block to read events from,
as ``index-solver chain deploy --out`` writes them. Read without web3, so that the service's
start (which checks orders' signatures against it) does not wait for web3 to load."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_typing import ChecksumAddress


@dataclass(frozen=True, slots=True)
class ChainDeployment:
    chain_id: int
    collateral: ChecksumAddress
    vault: ChecksumAddress
    index_tokens: dict[str, ChecksumAddress]
    """index symbol -> its token"""
    start_block: int
    """The vault's deployment block: nothing before it concerns us."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ChainDeployment:
        data = json.loads(path.read_text())
        return cls(int(data["chain_id"]), data["collateral"], data["vault"],
                   dict(data["index_tokens"]), int(data["start_block"]))
