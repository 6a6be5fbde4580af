"""The deployment file (what a running service is made of) and the FIX password hashes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account

from fix_gateway.passwords import hash_password, verify
from solver.config.deployment import load_deployment
from solver.config.fields import ConfigError
from solver.core.model import Constituent
from solver.service.chain_link import operator_of

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "deployment" / "local.toml"
INDEXES = Path(__file__).parent.parent.parent / "examples" / "indexes"
BASE = ('[solver]\nindexes = ["{indexes}/SY2.toml"]\n'
        '[markets.A1]\nsymbol = "A1USDC"\n[markets.A2]\nsymbol = "A2USDC"\n'
        '[service]\njournal = "j.db"\nexchange = "local:1"\n'
        '[fix]\nport = 1\ncomp_id = "S"\nstore = "s"\n')


def test_passwords_are_stored_as_salted_hashes_and_checked() -> None:
    stored = hash_password("s3cret")
    assert "s3cret" not in stored and stored != hash_password("s3cret")
    assert verify("s3cret", stored) and not verify("s3cret ", stored)


def test_the_example_takes_its_hashes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIX_ALICE_PASSWORD_HASH", hash_password("a"))
    monkeypatch.setenv("FIX_BOB_PASSWORD_HASH", hash_password("b"))
    deployment = load_deployment(EXAMPLE)
    fix, setup = deployment.fix, deployment.setup
    assert [(a.name, a.comp_id) for a in fix.accounts] == [("alice", "ALICE"), ("bob", "BOB")]
    assert fix.test_session is None  # off unless enabled
    assert fix.store == EXAMPLE.parent / "var" / "fix-store"
    assert deployment.service.exchange == "local:9876"
    assert deployment.service.journal == EXAMPLE.parent / "var" / "journal.db"
    [sy2] = setup.indexes
    assert sy2.constituents == (Constituent("A1", "A1USDC", Decimal(8)),
                                Constituent("A2", "A2USDC", Decimal(1)))
    assert [(m.symbol, m.step_size) for m in setup.markets] == [
        ("A1USDC", Decimal("0.001")), ("A2USDC", Decimal("0.01"))]
    assert (setup.params.max_order_notional, setup.client_order_prefix) == (
        Decimal(2000), "local")
    assert deployment.chain is not None
    assert (deployment.chain.rpc, deployment.chain.deployment) == (
        "http://127.0.0.1:8545", EXAMPLE.parent / "var" / "chain.json")
    assert [account for account, _ in deployment.wallets] == ["alice", "bob"]


def test_the_testnet_example_takes_the_node_from_the_environment_and_never_shows_its_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    testnet = EXAMPLE.parent / "testnet.toml"
    monkeypatch.setenv("FIX_ALICE_PASSWORD_HASH", hash_password("a"))
    monkeypatch.delenv("CHAIN_RPC_URL", raising=False)
    with pytest.raises(ConfigError, match=r"chain.rpc_env: \$CHAIN_RPC_URL is not set"):
        load_deployment(testnet)
    monkeypatch.setenv("CHAIN_RPC_URL", "https://sepolia.example.org/v3/PROVIDER-KEY")
    deployment = load_deployment(testnet)
    assert deployment.service.exchange == "testnet"
    assert [m.symbol for m in deployment.setup.markets] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert deployment.chain is not None and deployment.admin is not None
    assert deployment.chain.node == "https://sepolia.example.org/..."


def test_a_missing_hash_names_the_variable_and_how_to_make_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIX_ALICE_PASSWORD_HASH", raising=False)
    with pytest.raises(ConfigError, match=r"local.toml: accounts.alice.password_hash_env: "
                                          r"\$FIX_ALICE_PASSWORD_HASH is not set.*fix-password"):
        load_deployment(EXAMPLE)


@pytest.mark.parametrize(("extra", "message"), [
    ('[accounts.a]\ncomp_id = "A"\npassword_hash = "plain"\n',
     "accounts.a.password_hash: expected scrypt"),
    ('[accounts.a]\ncomp_id = "A"\npassword_hash = "{h}"\n[accounts.b]\ncomp_id = "A"\n'
     'password_hash = "{h}"\n', "accounts: each account needs its own comp_id"),
    ('[fix.door]\nlogon_timeout_s = 0\n', "fix.door.logon_timeout_s: must be a whole number"),
    ('[colour]\nred = 1\n', r"\(top\).colour: unknown key"),
    ('[[stand_in_deposits]]\naccount = "a"\namount = "1"\n',
     r"\(top\).stand_in_deposits: unknown key"),
    ('[chain]\nrpc = "localhost:8545"\ndeployment = "c.json"\noperator_key_env = "K"\n',
     "chain.rpc: expected the node's http:// or https:// URL"),
    ('[chain]\nrpc = "http://127.0.0.1:8545"\noperator_key_env = "K"\n',
     "chain.deployment: "),
    ('[chain]\nrpc = "http://x"\ndeployment = "c.json"\noperator_key_env = "K"\n'
     'confirmations = -1\n', "chain.confirmations: must be a whole number"),
    ('[chain]\nrpc = "http://x"\ndeployment = "c.json"\noperator_key_env = "K"\n'
     'confirmations = "final"\n', 'chain.confirmations: a whole number of blocks or "finalized"'),
    ('[chain]\nrpc = "http://x"\ndeployment = "c.json"\noperator_key_env = "K"\n'
     'settlements_in_flight = 1e400\n', "chain.settlements_in_flight: must be a whole number"),
    ('[accounts.a]\ncomp_id = "A"\npassword_hash = "{h}"\nwallet = "0x12"\n',
     "accounts.a.wallet: expected an EVM address"),
    ('[admin]\nport = 70000\n', "admin.port: must be a whole number from 0 to 65535"),
    ('[admin]\nport = 1\ntoken = "secret"\n', "admin.token: unknown key"),
    ('[metrics]\nhost = "127.0.0.1"\n', "metrics.port: must be a whole number"),
])
def test_bad_deployments_are_refused_naming_the_file_and_the_key(
        tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "deployment.toml"
    path.write_text(BASE.format(indexes=INDEXES) + extra.replace("{h}", hash_password("x")))
    with pytest.raises(ConfigError, match=f"^{path}: {message}"):
        load_deployment(path)


@pytest.mark.parametrize(("change", "message"), [
    (("comp_id = \"S\"", "comp_id = \"bad id\""), "fix.comp_id: use 1 to 32"),
    (("port = 1", "port = 1\ncolour = 1"), "fix.colour: unknown key"),
    (("local:1", "mainnet"), "service.exchange: expected local:PORT, testnet or production"),
    (("local:1\"", "local:1\"\ngather_ms = -1"), "service.gather_ms: must be a whole number"),
    (("local:1\"", "local:1\"\nshutdown_grace_s = \"soon\""),
     "service.shutdown_grace_s: must be a whole number"),
    (("local:1\"", "local:1\"\nsnapshot_every = 0"),
     "service.snapshot_every: must be a whole number from 10"),
    (("local:1\"", "local:1\"\nsnapshot_every = " + "9" * 70),
     "service.snapshot_every: must be a whole number from 10"),
    (("local:1\"", "local:1\"\nstall_after_ms = 1e400"),
     "service.stall_after_ms: must be a whole number from 100"),
    (("local:1\"", "local:1\"\nstall_after_ms = 99"),
     "service.stall_after_ms: must be a whole number from 100"),
    (("[solver]\n", "[solver.params]\ncompletion_wait_ms = 0\n[solver]\n"),
     "solver.params.completion_wait_ms: must be a whole number from 1 to 86400000"),
    (("[solver]\n", "[solver.params]\ncompletion_wait_ms = \"" + "9" * 70 + "\"\n[solver]\n"),
     "solver.params.completion_wait_ms: must be below 1E\\+24"),
    (("[solver]\n", "[solver.params]\nmax_order_notional = 9999\n"
                     "[solver]\ncollaterals = { USDC = 0 }\n"),
     "solver.params.max_order_notional: 9999 is below the smallest fill of USDC "
     "\\(0 decimals\\), 10000: no order could ever be engaged"),
    (("[markets.A2]\nsymbol = \"A2USDC\"\n", ""), "markets.A2: required by index SY2"),
    (("symbol = \"A2USDC\"", "symbol = \"A2USDT\""),
     "markets.A2: index SY2 trades it as A2USDC, quoted in USDC"),
    (("SY2.toml", "NONE.toml"), "NONE.toml"),
    (("[markets.A1]\n", "[markets.A1]\ntick_size = \"-1\"\n"),
     "markets.A1.tick_size: must not be below 0"),
    (("[solver]\n", "[solver]\nclient_order_prefix = \"has space\"\n"),
     "solver.client_order_prefix: use 1 to 16"),
    (("[solver]\n", "[solver.params]\nfee_reserve = \"2\"\n[solver]\n"),
     "solver.params.fee_reserve"),
])
def test_bad_solver_settings_are_refused_naming_the_key(
        tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "deployment.toml"
    path.write_text(BASE.format(indexes=INDEXES).replace(*change))
    with pytest.raises(ConfigError, match=message):
        load_deployment(path)


def test_a_chain_section_and_wallets_are_read(tmp_path: Path) -> None:
    path = tmp_path / "deployment.toml"
    wallet = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    path.write_text(BASE.format(indexes=INDEXES) + (
        '[chain]\nrpc = "http://127.0.0.1:8545"\ndeployment = "var/chain.json"\n'
        'operator_key_env = "CHAIN_OPERATOR_KEY"\nconfirmations = 3\n'
        f'[accounts.a]\ncomp_id = "A"\npassword_hash = "{hash_password("x")}"\n'
        f'wallet = "{wallet}"\n'))
    deployment = load_deployment(path)
    assert deployment.chain is not None
    assert (deployment.chain.rpc, deployment.chain.deployment, deployment.chain.confirmations,
            deployment.chain.poll_ms) == ("http://127.0.0.1:8545", tmp_path / "var/chain.json",
                                          3, 1000)
    assert deployment.wallets == (("a", wallet),)
    path.write_text(path.read_text().replace("confirmations = 3", 'confirmations = "finalized"'))
    chain = load_deployment(path).chain
    assert chain is not None and chain.confirmations == "finalized"


def test_the_operators_key_comes_from_the_environment_or_an_encrypted_keystore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = Account.create()
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "s3cret", iterations=2)))
    path = tmp_path / "deployment.toml"
    chain = ('[chain]\nrpc = "http://127.0.0.1:8545"\ndeployment = "c.json"\n'
             'operator_keystore = "operator.json"\noperator_password_env = "OPERATOR_PW"\n')
    path.write_text(BASE.format(indexes=INDEXES) + chain)
    settings = load_deployment(path).chain
    assert settings is not None
    with pytest.raises(ConfigError, match=r"chain.operator_password_env: \$OPERATOR_PW is not"):
        operator_of(settings)
    monkeypatch.setenv("OPERATOR_PW", "wrong")
    with pytest.raises(ConfigError, match="the password does not open it"):
        operator_of(settings)
    monkeypatch.setenv("OPERATOR_PW", "s3cret")
    assert operator_of(settings).address == account.address
    monkeypatch.setenv("OPERATOR_KEY", account.key.hex())
    path.write_text(BASE.format(indexes=INDEXES) + chain.replace(
        'operator_keystore = "operator.json"\noperator_password_env = "OPERATOR_PW"',
        'operator_key_env = "OPERATOR_KEY"'))
    settings = load_deployment(path).chain
    assert settings is not None and operator_of(settings).address == account.address
    path.write_text(BASE.format(indexes=INDEXES) + chain + 'operator_key_env = "K"\n')
    with pytest.raises(ConfigError, match="give operator_key_env, or operator_keystore"):
        load_deployment(path)
