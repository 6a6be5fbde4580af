"""The compiled contracts, read from the committed JSON artifacts (never from a compiler)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from eth_typing import ABI

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    """One contract as compiled by ``python -m chain.compile``."""

    name: str
    abi: ABI
    bytecode: str
    compiler: str
    source_sha256: str
    blueprint: str | None
    """The ERC-5202 blueprint's deployment code, for contracts created from one."""


def load(name: str, directory: Path = ARTIFACTS_DIR) -> Artifact:
    """The artifact of contract ``name`` (``CollateralVault``, ``IndexToken``, ``MockUSDC``)."""
    path = directory / f"{name}.json"
    data = json.loads(path.read_text())
    if data.get("contractName") != name:
        raise ValueError(f"{path}: contractName is {data.get('contractName')!r}, not {name!r}")
    return Artifact(
        name=name,
        abi=cast(ABI, tuple(data["abi"])),
        bytecode=str(data["bytecode"]),
        compiler=str(data["compiler"]),
        source_sha256=str(data["source_sha256"]),
        blueprint=data.get("blueprint"),
    )
