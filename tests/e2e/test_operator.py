"""The operator's side of a running service (``index-solver run`` on anvil): the admin
endpoint refuses requests without the bearer token; ``status``, ``snapshot`` and ``reconcile``
answer from the events (a deposit from an unknown wallet shown held, the ledger and the vault
agreeing); the metrics endpoint serves Prometheus text that parses."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from prometheus_client.parser import text_string_to_metric_families
from web3.types import Wei

from chain.deploy import contract, transact
from chain.deployment import ChainDeployment
from mocks.fix_client import messages
from mocks.ports import free_port
from solver.plumbing.tables import short
from tests.support.chains import Anvil
from tests.support.deployed import ROOT, alice_client, on_anvil, signed_order
from tests.support.exchange import run, until
from tests.support.service import report_where

TOKEN = "operator-token-for-tests-0123456789"


def cli(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "solver.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={"SOLVER_ADMIN_TOKEN": token, "COLUMNS": "80",
                               "PATH": "/usr/bin:/bin"})


def get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_status_snapshot_reconcile_and_metrics_of_a_running_service(tmp_path: Path) -> None:
    async def scenario() -> None:
        admin_port, metrics_port = free_port(), free_port()
        async with on_anvil(tmp_path, step_ms=0) as stack:
            log = stack.log
            stranger = Account.create()  # deposits from a wallet no account has: held
            await _deposit_from(stack.node, tmp_path, stranger, 250)
            config = stack.config(admin={"port": admin_port}, metrics={"port": metrics_port})
            alice = alice_client(tmp_path, stack.fix_port)
            with stack.process(config, SOLVER_ADMIN_TOKEN=TOKEN) as process:
                await stack.accepting(process)
                await alice.connect()
                await report_where(alice, t35="BA")
                await alice.send(signed_order(tmp_path, "alice", "o1", D("1000")))
                await report_where(alice, t150="F", timeout=30)
                await alice.send(messages.cancel("c1", "o1", "SY2"))
                await report_where(alice, t150="4", timeout=30)
                base = f"http://127.0.0.1:{admin_port}"
                assert get(f"{base}/status", None)[0] == 401
                assert get(f"{base}/status", "wrong-token-wrong-token")[0] == 401
                for hostile in _hostile_requests():  # each refused, the endpoint still up
                    assert _raw(admin_port, hostile).startswith((b"HTTP/1.1 4", b"")), hostile
                assert get(f"{base}/status", TOKEN)[0] == 200
                await until(lambda: _minted(base), 30, "the settlement mined")

                status = json.loads(get(f"{base}/status", TOKEN)[1])
                assert status["held_deposits"] == [{
                    "wallet": stranger.address, "asset": "USDC", "amount": "250",
                    "deposit_ids": status["held_deposits"][0]["deposit_ids"]}]
                assert status["reconciliation"]["state"] == "agrees"
                assert {s["account"]: s["logged_on"] for s in status["fix_sessions"]} == {
                    "alice": True, "bob": False}
                assert status["last_exchange_event"] is not None
                assert status["planning"] == {"state": "planning"}  # nothing waits
                shown = cli("status", "--config", str(config))
                assert shown.returncode == 0, shown.stderr
                assert stranger.address in shown.stdout and "agrees" in shown.stdout
                assert "Planning: the last plan found a batch" in shown.stdout
                assert "…" not in shown.stdout

                snapshot = cli("snapshot", "--config", str(config), "--parquet",
                               str(tmp_path / "snap"))
                assert snapshot.returncode == 0, snapshot.stderr
                assert "alice" in snapshot.stdout and "…" not in snapshot.stdout
                tables = snapshot.stdout.split("wrote ")[0]
                assert max(map(len, tables.splitlines())) <= 80
                decimals = re.findall(r"\d\.(\d+)\b", tables)
                assert decimals and max(map(len, decimals)) <= 6  # amounts a person reads
                assert (tmp_path / "snap" / "collateral.parquet").stat().st_size > 0

                reconciled = cli("reconcile", "--config", str(config), "--json")
                assert reconciled.returncode == 0, reconciled.stderr
                answer = json.loads(reconciled.stdout)
                assert answer["exchange"]["facts"] == []
                assert {c["account"]: c["agrees"] for c in answer["chain"]["checks"]} == {
                    "alice": True, "bob": True}
                refused = cli("status", "--config", str(config), token="not-the-token-at-all")
                assert refused.returncode == 2 and "refused the token" in refused.stdout

                code, text = get(f"http://127.0.0.1:{metrics_port}/metrics", None)
                assert code == 200
                families = {f.name: f for f in text_string_to_metric_families(text)}
                events = {s.labels["type"]: s.value
                          for s in families["solver_execution_events"].samples
                          if s.name == "solver_execution_events_total"}
                assert events["IndexOrderFilled"] >= 1 and events["IndexOrderMinted"] == 1
                assert events["VaultOverpaid"] == 0  # every series from the start
                limited = {s.labels["status"] for s in families["solver_rate_limited"].samples}
                assert limited == {"418", "429"}
                statuses = {s.labels["status"]: s.value
                            for s in families["solver_orders"].samples}
                assert statuses["expired"] == 0 and statuses["canceled"] == 1
                for name in ("solver_position_delta_latency_seconds",
                             "solver_reconciliation_duration_seconds",
                             "solver_callback_gap_seconds", "solver_orders",
                             "solver_fix_sessions_logged_on", "solver_journal_commit_seconds",
                             "solver_settlement_latency_seconds", "solver_recovery_seconds",
                             *alerted_metrics()):
                    assert name in families, name
                assert_metric_conventions(text)
                assert dashboard_metrics() - set(families) == set()  # every query is served
                gauge = families["solver_fix_sessions_logged_on"].samples[0].value
                assert gauge == 1

                # a reorganisation deeper than the confirmations (0 here) takes a deposit the
                # service applied off the chain: shown, counted, then resolved by the operator
                await _deposit_from(stack.node, tmp_path, stranger, 100)
                await until(lambda: _held(base) == "350", 30, "the second deposit held")
                await stack.node._rpc("anvil_reorg", 1, [])
                await until(lambda: _status(base)["vanished_facts"], 30, "the deposit gone")
                [gone] = _status(base)["vanished_facts"]
                assert (gone["amount"], gone["account"], gone["kind"]) == ("100", None,
                                                                           "deposit")
                assert "vault event applied and gone from the chain" in log.read_text()
                shown = cli("status", "--config", str(config))
                assert "Vault events gone from the chain" in shown.stdout, shown.stdout
                assert short(gone["fact_id"]) in shown.stdout  # whole in --json
                code, text = get(f"http://127.0.0.1:{metrics_port}/metrics", None)
                assert "solver_vanished_vault_facts 1.0" in text
                resolved = cli("resolve", gone["fact_id"], "--config", str(config))
                assert resolved.returncode == 0 and "resolved" in resolved.stdout, resolved
                assert _status(base)["vanished_facts"] == [] and _held(base) == "250"
                again = cli("resolve", gone["fact_id"], "--config", str(config))
                assert again.returncode == 1 and "no vanished fact" in again.stdout
                for hostile in ("%FF%FE", "a%00b", "x" * 201, "%0Ainjected"):
                    assert post(f"{base}/resolve/{hostile}") == 400, hostile
                assert post(f"{base}/resolve/{'y' * 1_000_000}") in (400, 414, 0)
                bad = cli("resolve", "a b", "--config", str(config))
                assert bad.returncode == 2 and "printable ASCII" in bad.stdout
                assert get(f"{base}/status", TOKEN)[0] == 200  # still serving
            assert "operator-token" not in log.read_text()  # the secret never logged
    run(scenario(), timeout=150)


def _hostile_requests() -> list[bytes]:
    """Requests an unauthenticated peer might send: bad bytes, huge or empty values, the
    right token with control bytes around it, a path that is not there, a half request."""
    head = b"GET /status HTTP/1.1\r\nHost: x\r\n"
    return [head + b"Authorization: Bearer \xff\xfe\x00\x01\r\n\r\n",
            head + b"Authorization: Bearer " + b"9" * 70 + b"e400\r\n\r\n",
            head + b"Authorization: \r\n\r\n",
            head + b"Authorization: Bearer " + b"A" * 1_000_000 + b"\r\n\r\n",
            head + b"Authorization: Bearer \x00" + TOKEN.encode() + b"\x7f\r\n\r\n",
            b"POST /reconcile HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
            + b"\xff" * 1_000_000,
            b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello, then silence
            b"GET /status HTTP/1.1\r\n"]  # never finished


def _raw(port: int, request: bytes) -> bytes:
    """The first line of the answer to ``request`` sent as is (b"" if the peer is cut off)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(OSError):
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
        try:
            return conn.recv(64).split(b"\r\n")[0]
        except OSError:
            return b""


def assert_metric_conventions(text: str) -> None:
    """Every series of ours starts with solver_ and measures time in seconds; promtool's own
    lint agrees where it is installed (CI installs it)."""
    ours = {f.name for f in text_string_to_metric_families(text)
            if not f.name.startswith(("process_", "python_"))}
    assert {n for n in ours if not n.startswith("solver_")} == set()
    assert {n for n in ours if re.search(r"_(ms|millis\w*|micro\w*)$", n)} == set()
    if shutil.which("promtool"):
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                              capture_output=True, timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr


PROMQL_WORDS = {"rate", "increase", "histogram_quantile", "sum", "by", "le", "round",
                "changes", "type"}


def dashboard_metrics() -> set[str]:
    """The series the Grafana dashboard's queries name, by family (no _total, _bucket)."""
    dashboard = json.loads((ROOT / "ops" / "grafana" / "index-solver.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    words = {w for e in exprs for w in re.findall(r"[a-z_][a-z0-9_]*(?=[{\[\s)]|$)",
                                                   re.sub(r'"[^"]*"', "", e))}
    assert exprs and words
    return {re.sub(r"_(total|bucket|sum|count)$", "", w) for w in words - PROMQL_WORDS}


def alerted_metrics() -> set[str]:
    """The metrics the alert rules read (a counter by its family name, without _total)."""
    rules = (ROOT / "ops" / "prometheus" / "alerts.yml").read_text()
    names = set(re.findall(r"\b(?:solver_[a-z_]+|process_start_time_seconds)\b",
                           "\n".join(re.findall(r"expr: (.*)", rules))))
    return {n.removesuffix("_total") for n in names}


def post(url: str) -> int:
    """The status of a POST with the token (0: the connection was cut)."""
    request = urllib.request.Request(url, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _status(base: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(get(f"{base}/status", TOKEN)[1])
    return answer


def _held(base: str) -> str | None:
    held = _status(base)["held_deposits"]
    return held[0]["amount"] if held else None


def _minted(base: str) -> bool:
    status = json.loads(get(f"{base}/status", TOKEN)[1])
    return bool(status["orders"].get("canceled")) and \
        status["reconciliation"]["state"] == "agrees"


async def _deposit_from(node: Anvil, tmp: Path, account: LocalAccount, amount: int) -> None:
    w3 = node.w3
    owner = (await w3.eth.accounts)[0]
    await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
        {"from": owner, "to": account.address, "value": Wei(10**18)}))
    deployment = ChainDeployment.load(tmp / "chain.json")
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    for call in (usdc.functions.mint(account.address, amount * 10**6),
                 usdc.functions.approve(vault.address, amount * 10**6),
                 vault.functions.deposit(amount * 10**6, 0)):
        await transact(w3, account, call)

