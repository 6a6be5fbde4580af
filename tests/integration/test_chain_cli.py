"""``index-solver chain`` against anvil: deploy, deposit, balance, an exit refused with the
vault's reason, and a missing key refused before anything is sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from solver.cli.main import main
from tests.support.chains import Anvil, chain

# anvil's well-known development keys (mnemonic "test test ... junk"): local chains only
DEPLOYER = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ALICE = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ALICE_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OPERATOR = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TREASURY = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def test_a_user_deploys_deposits_and_reads_the_balance_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEPLOYER", DEPLOYER)
    monkeypatch.setenv("ALICE_KEY", ALICE)
    out = tmp_path / "chain.json"

    async def scenario() -> None:
        async with chain("anvil") as node:
            assert isinstance(node, Anvil)
            rpc = str(node.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
            node_args = ["--rpc", rpc]
            user = [*node_args, "--key-env", "ALICE_KEY", "--deployment", str(out)]
            deploy = ["chain", "deploy", *node_args, "--key-env", "DEPLOYER", "--out", str(out),
                      "--index", "SY2", "--operator", OPERATOR, "--treasury", TREASURY]
            assert await cli([*deploy, "--withdrawal-delay", "60"]) == 1
            assert "delay not within an hour and 30 days" in capsys.readouterr().err
            assert await cli([*deploy, "--withdrawal-delay", "3600"]) == 0
            assert json.loads(out.read_text())["chain_id"] == 31337
            assert await cli(["chain", "deposit", *user, "1000.5", "--mint"]) == 0
            assert await cli(["chain", "request-withdrawal", *user, "100"]) == 0
            capsys.readouterr()
            assert await cli(["chain", "balance", *node_args, "--deployment", str(out),
                              ALICE_ADDRESS]) == 0
            assert capsys.readouterr().out.splitlines() == [
                "vault balance 1000.5", "withdrawal requested 100", "SY2 0"]
            assert await cli(["chain", "withdraw", *user]) == 1
            assert "too early" in capsys.readouterr().err
            for absurd in ("1.0000001", "1e400", "1" * 70, "", "-5", "NaN", "x\udcff"):
                assert await cli(["chain", "deposit", *user, absurd]) == 2, absurd
            assert await cli(["chain", "balance", *node_args, "--deployment", str(out),
                              "0xzz"]) == 2
            assert "expected an EVM address" in capsys.readouterr().err
            assert await cli(["chain", "deposit", *node_args, "--key-env", "NOBODY",
                              "--deployment", str(out), "1"]) == 2
            assert "NOBODY" in capsys.readouterr().err
    asyncio.run(asyncio.wait_for(scenario(), 120))


async def cli(argv: list[str]) -> int:
    """The command runs its own event loop: on a thread of its own here."""
    return await asyncio.to_thread(main, argv)
