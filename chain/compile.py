"""Compile ``chain/contracts/*.vy`` with the pinned Vyper into ``chain/artifacts/<Name>.json``.

``python -m chain.compile`` writes the artifacts; ``python -m chain.compile --check`` writes
nothing and exits 1 naming every artifact that differs from a fresh compile (a test runs it, so
a contract edited without recompiling fails the suite). Vyper is a dev dependency: only this
module imports it, never run-time code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import vyper
from vyper.cli.vyper_compile import compile_files

CONTRACTS_DIR = Path(__file__).parent / "contracts"
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
# The deployable contracts; other .vy files are modules they import (erc20.vy).
CONTRACTS = ("CollateralVault", "IndexToken", "MockUSDC")
# Deployed as ERC-5202 blueprints too: the vault creates its index tokens from one.
BLUEPRINTS = ("IndexToken",)
PINNED_VYPER = "0.4.3"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(name: str) -> dict[str, Any]:
    """The artifact of one contract, as it would be written."""
    source = CONTRACTS_DIR / f"{name}.vy"
    formats = ("abi", "bytecode") + (("blueprint_bytecode",) if name in BLUEPRINTS else ())
    out = compile_files([str(source)], formats, paths=[str(CONTRACTS_DIR)])
    (compiled,) = out.values()
    # A module's edit changes the bytecode too, so the artifact names every source it hashed.
    modules = {p.name: sha256(p) for p in sorted(CONTRACTS_DIR.glob("*.vy"))
               if p.stem not in CONTRACTS}
    blueprint = {"blueprint": compiled["blueprint_bytecode"]} if name in BLUEPRINTS else {}
    return blueprint | {
        "contractName": name,
        "compiler": f"vyper-{vyper.__version__}",
        "source_sha256": sha256(source),
        "module_sha256": modules,
        "abi": compiled["abi"],
        "bytecode": compiled["bytecode"],
    }


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def stale() -> list[str]:
    """The contracts whose committed artifact differs from a fresh compile."""
    return [name for name in CONTRACTS
            if not (path := ARTIFACTS_DIR / f"{name}.json").exists()
            or path.read_text() != render(build(name))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chain.compile", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any artifact is stale")
    args = parser.parse_args(argv)
    if vyper.__version__ != PINNED_VYPER:
        print(f"vyper {PINNED_VYPER} required, found {vyper.__version__}", file=sys.stderr)
        return 2
    if args.check:
        names = stale()
        if names:
            print(f"stale artifacts: {names} (run python -m chain.compile)", file=sys.stderr)
            return 1
        return 0
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for name in CONTRACTS:
        (ARTIFACTS_DIR / f"{name}.json").write_text(render(build(name)))
        print(f"wrote {ARTIFACTS_DIR / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
