"""``index-solver check --config`` against the mock Binance and anvil: every check passes on a
good deployment, and each wrong part (keys, endpoint, a market's filter, chain id, a contract
address, the operator key, a fee reserve below the account's commission) fails its own check
with a message that says what is wrong."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from mocks.binance.local import KEY
from mocks.ports import free_port
from solver.cli.main import main
from tests.support.deployed import on_anvil, write_config
from tests.support.exchange import run

GOOD = ("exchange endpoint", "exchange keys", "fee reserve", "market A1USDC", "market A2USDC",
        "chain node", "contract vault", "vault's collateral", "index token SY2", "chain operator",
        "vault announcements")


def test_check_passes_then_names_each_wrong_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> None:
        async with on_anvil(tmp_path, step_ms=0) as stack:
            server, section, wallets, key = stack.server, stack.section, stack.wallets, stack.key
            monkeypatch.setenv("BINANCE_API_KEY", KEY.key)
            monkeypatch.setenv("BINANCE_API_SECRET", KEY.secret)
            monkeypatch.setenv("CHAIN_OPERATOR_KEY", key)
            monkeypatch.setenv("COLUMNS", "250")  # each finding on one line

            def check(**changes: Any) -> tuple[int, str]:
                config = write_config(tmp_path, free_port(), changes.pop("port", server.port),
                                      section, wallets)
                data = json.loads(config.read_text())
                for edit in changes.values():
                    edit(data)
                config.write_text(json.dumps(data))
                code = main(["check", "--config", str(config)])
                return code, "".join(capsys.readouterr().out.split())

            monkeypatch.setenv("COLUMNS", "80")  # as a person reads it: no line wider, no token cut
            config = write_config(tmp_path, free_port(), server.port, section, wallets)
            assert await asyncio.to_thread(main, ["check", "--config", str(config)]) == 0
            narrow = capsys.readouterr().out
            narrow = narrow[narrow.index("index-solver check"):]  # the harness's logs before
            assert max(map(len, narrow.splitlines())) <= 80
            addresses = re.findall(r"0x[0-9a-fA-F]+", narrow)
            assert addresses and all(len(a) == 42 for a in addresses), narrow
            monkeypatch.setenv("COLUMNS", "250")  # each finding on one line

            code, out = await _in_thread(check)
            assert code == 0, out
            for name in GOOD:  # a name, what it checked (a URL) in brackets, then "ok"
                assert re.search(re.escape("".join(name.split())) + r"(\([^)]*\))?ok", out), name

            monkeypatch.setenv("BINANCE_API_SECRET", "not-the-secret")
            code, out = await _in_thread(check)
            assert code == 1 and "exchangekeysFAILED" in out and "ignature" in out
            monkeypatch.setenv("BINANCE_API_SECRET", KEY.secret)

            code, out = await _in_thread(check, fees=lambda d: d["solver"]["params"].update(
                fee_reserve="0.0005"))
            assert code == 1 and "feereserveFAILEDparams.fee_reserve:0.0005keepsbacklessthan" \
                "theexchangeaccount'stakerfeerateof0.001" in out and "useatleast0.001001" in out

            code, out = await _in_thread(check, port=free_port())
            assert code == 1 and "exchangeendpoint(local:" in out and "FAILED" in out

            code, out = await _in_thread(check, tick=lambda d: d["markets"]["A1"].update(
                tick_size="0.1"))
            assert code == 1 and "marketA1USDCFAILED" in out and "tick_sizeis0.01,ours0.1" in out

            deployment_file = Path(section["deployment"])
            recorded = json.loads(deployment_file.read_text())
            wrong_chain = tmp_path / "wrong-chain.json"
            wrong_chain.write_text(json.dumps({**recorded, "chain_id": 5}))
            code, out = await _in_thread(check, file=lambda d: d["chain"].update(
                deployment=str(wrong_chain)))
            assert code == 1 and "thenodeischain31337,thedeploymentfilechain5" in out

            nowhere = Account.create().address
            wrong_vault = tmp_path / "wrong-vault.json"
            wrong_vault.write_text(json.dumps({**recorded, "vault": nowhere}))
            code, out = await _in_thread(check, file=lambda d: d["chain"].update(
                deployment=str(wrong_vault)))
            assert code == 1 and f"contractvaultFAILEDnocontractat{nowhere}" in out

            monkeypatch.setenv("CHAIN_OPERATOR_KEY", Account.create().key.hex())
            code, out = await _in_thread(check)
            assert code == 1 and "chainoperatorFAILEDthevault'soperatoris" in out
    run(scenario(), timeout=120)


async def _in_thread(check: Any, **changes: Any) -> tuple[int, str]:
    """The command runs its own event loop: off this one."""
    import asyncio

    result: tuple[int, str] = await asyncio.to_thread(check, **changes)
    return result
