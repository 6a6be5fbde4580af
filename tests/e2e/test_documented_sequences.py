"""Every runnable shell sequence of the documentation runs as written, so the docs cannot drift:
the README's (the chain, then the service and a FIX client to a minted order),
``docs/fix-gateway.md``'s and ``docs/chain.md``'s "Running it", and ``docs/operations.md``'s
operator commands against the service of ``docs/fix-gateway.md``'s sequence, before its last
line stops it.

Each block is taken from its document and run with bash, ``set -e``, from a directory that
holds a copy of ``examples/`` and the repository's ``.venv`` and ``node_modules``; the only
change is that the example's fixed ports become free loopback ports, in the script and in the
copied deployment file alike (tests start their servers on free ports)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from mocks.ports import free_port

ROOT = Path(__file__).parent.parent.parent
PORTS = ("9876", "8545", "15003", "15080", "15090")
"""The mock Binance, anvil, the FIX door, the admin and the metrics endpoints."""


def sequence(document: str, heading: str, blocks: int) -> str:
    """The first ``blocks`` shell blocks after ``heading`` in ``document``, joined."""
    text = (ROOT / document).read_text()
    found = re.findall(r"```sh\n(.*?)```", text[text.index(heading):], re.S)[:blocks]
    assert len(found) == blocks, f"{document}: {blocks} sh blocks after {heading!r}"
    return "\n".join(found)


def workplace(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A directory to run in, and the free port for each of the example's."""
    work = tmp / "repo"
    work.mkdir()
    for shared in (".venv", "node_modules"):
        (work / shared).symlink_to(ROOT / shared)
    shutil.copytree(ROOT / "examples", work / "examples",
                    ignore=shutil.ignore_patterns("var"))
    ports = {port: str(free_port()) for port in PORTS}
    config = work / "examples" / "deployment" / "local.toml"
    config.write_text(free_ports(config.read_text(), ports))
    return work, ports


def free_ports(text: str, ports: dict[str, str]) -> str:
    return re.sub(r"\b(" + "|".join(ports) + r")\b", lambda m: ports[m[1]], text)


def run_as_written(tmp: Path, script: str) -> str:
    work, ports = workplace(tmp)
    env = {"PATH": f"{work / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
           "HOME": str(tmp), "COLUMNS": "100"}
    done = subprocess.run(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
         + free_ports(script, ports)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_readme_runs_to_a_minted_order(tmp_path: Path) -> None:
    out = run_as_written(tmp_path, sequence("README.md", "First the mock Binance and the chain",
                                            2))
    assert "ExecutionReport partial-fill ClOrdID=o1" in out
    assert re.search(r"ExecutionReport minted ClOrdID=o1 .*MintTxHash=0x[0-9a-f]{64}", out)
    assert "Orders: 1 filled" in out and "agrees" in out
    assert re.search(r"^SY2 0\.9\d+", out, re.M)  # the tokens, read back from the chain


def test_the_fix_gateways_sequence_and_the_operators_commands_run(tmp_path: Path) -> None:
    *serving, stopping = sequence("docs/fix-gateway.md", "## Running it", 1).rstrip().split("\n")
    operator = sequence("docs/operations.md", "## The operator's commands", 1)
    out = run_as_written(tmp_path, "\n".join([*serving, operator, stopping]))
    assert "ExecutionReport replaced ClOrdID=r2 OrigClOrdID=o2" in out
    assert "ExecutionReport canceled ClOrdID=c2 OrigClOrdID=r2" in out
    assert "index-solver status as of transaction" in out and "Orders: " in out
    assert "wrote examples/deployment/var/snapshot/positions.parquet" in out
    assert '"checks"' in out  # the reconciliation's answer, as JSON


def test_the_chains_sequence_runs(tmp_path: Path) -> None:
    out = run_as_written(tmp_path, sequence("docs/chain.md", "## Running it", 1))
    assert "vault balance 750" in out and "withdrawal requested 0" in out
