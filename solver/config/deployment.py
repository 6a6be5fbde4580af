"""The deployment file (TOML, JSON or YAML): what one running service is made of. Paths in it
are relative to the file. Secrets are not in it: FIX passwords are scrypt hashes (inline or
named by an environment variable) and the exchange keys come from the environment. Every
problem is a ``ConfigError`` naming the file and the key. ``examples/deployment/local.toml``
is an example::

    [solver]
    indexes = ["../indexes/SY2.toml"]    # index definition files (solver/config/index_files)
    collaterals = { USDC = 6 }           # token decimals (default 6 for an index's collateral)
    client_order_prefix = "ixs"          # starts every exchange client order id

    [solver.params]                      # SolverParams; every key optional
    price_tolerance = "0.01"

    [markets.A1]                         # the exchange filters of each constituent's market
    symbol = "A1USDC"
    tick_size = "0.01"
    step_size = "0.001"
    min_qty = "0.001"
    min_notional = "5"

    [service]
    journal = "var/journal.db"           # created on first start
    exchange = "local:9876"              # local:PORT (the mock), testnet or production
    gather_ms = 2                        # orders arriving together share a batch
    plan_every_ms = 500                  # the fallback for orders a plan could not serve
    shutdown_grace_s = 30                # SIGTERM: in-flight work may finish for this long
    snapshot_every = 2000                # transactions; a start replays at most this many
    stall_after_ms = 60000               # orders that can be bought, no batch planned: alarm

    [admin]                              # optional: index-solver status | snapshot | reconcile
    port = 15080                         # on 127.0.0.1
    token_env = "SOLVER_ADMIN_TOKEN"     # the bearer token every request must carry

    [metrics]                            # optional: Prometheus metrics
    port = 15090
    host = "127.0.0.1"

    [fix]                                # the FIX gateway
    port = 15003                         # 127.0.0.1 unless host is set
    comp_id = "SOLVER"                   # our SenderCompID
    store = "var/fix-store"              # QuickFIX FileStore, the inbound log
    log = "var/fix-log"                  # optional QuickFIX message log
    chain_id = 31337                     # reported with every mint

    [fix.door]                           # optional: what peers that have not logged on hold
    logon_timeout_s = 5
    max_unauthenticated = 32
    max_unauthenticated_per_address = 4
    failed_logons_per_account_and_address = 5
    failed_logons_per_comp_id = 10
    failure_window_s = 60

    [accounts.alice]                     # one FIX session per account
    comp_id = "ALICE"                    # the client's SenderCompID, also its Username(553)
    password_hash_env = "FIX_ALICE_PASSWORD_HASH"   # or password_hash = "scrypt:..."
    wallet = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # with [chain]: its deposits

    [test_session]                       # optional, off unless enabled
    enabled = true
    comp_id = "ECHO"
    target_comp_id = "TESTER"

    [chain]                              # deposits and settlements on this chain
    rpc = "http://127.0.0.1:8545"        # the node's URL (anvil, a testnet); or
    # rpc_env = "CHAIN_RPC_URL"          # the variable holding it (a provider's URL and key)
    deployment = "var/chain.json"        # written by `index-solver chain deploy`
    operator_key_env = "CHAIN_OPERATOR_KEY"   # the settling account's private key; or
    # operator_keystore = "keys/operator.json" with operator_password_env = "..."
    confirmations = 2                    # blocks on top of a deposit before it is credited
    poll_ms = 1000
    settlements_in_flight = 8            # settlements sent at once, each with its own nonce

"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chain.finality import FINALIZED, Confirmations
from fix_gateway.config import Account, FixSettings, TestSession
from fix_gateway.dictionary import DICTIONARY
from fix_gateway.front_door import DoorSettings
from fix_gateway.passwords import BadPasswordHash, check_hash
from solver.config.fields import (
    ConfigError,
    expect_list,
    expect_number,
    expect_table,
    expect_text,
    expect_whole,
    read_file,
    reject_unknown,
)
from solver.config.index_files import load_index_file
from solver.core.market import MarketRules
from solver.core.model import Collateral, Index, IndexDefinitionError
from solver.core.money import ZERO
from solver.core.params import SolverParams, setting_problems
from solver.core.setup import EngineSetup

_COMP_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_WALLET = re.compile(r"0x[0-9A-Fa-f]{40}")
EXCHANGES = re.compile(r"local:\d{1,5}|testnet|production")
_FILTERS = ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    journal: Path
    exchange: str
    """``local:PORT`` (the mock on 127.0.0.1), ``testnet`` or ``production``."""
    gather_ms: int = 2
    """How long an order arriving while nothing is in flight waits for others to share its
    batch."""
    plan_every_ms: int = 500
    """The fallback: how often orders that a plan could not serve are planned again."""
    shutdown_grace_s: int = 30
    """On SIGTERM or SIGINT, how long in-flight asset orders and settlements may take to
    finish before the service stops anyway (they resume at the next start)."""
    snapshot_every: int = 2000
    """Store the engine's state, with the views' and adapters' checkpoints, after this many
    transactions: a start replays at most this many (restart time against snapshot writes)."""
    stall_after_ms: int = 60_000
    """Orders that could be bought alone waiting this long with no batch planned is a stall:
    logged as an error, counted in ``solver_orders_stalled``."""


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The operator's endpoint (``index-solver status | snapshot | reconcile``): HTTP on
    127.0.0.1, every request with the bearer token held by ``token_env``."""

    port: int
    token_env: str = "SOLVER_ADMIN_TOKEN"


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics, scraped over HTTP."""

    port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ChainSettings:
    rpc: str
    """The node's HTTP URL (anvil, a testnet)."""
    deployment: Path
    """The file ``index-solver chain deploy`` wrote: chain id, addresses, start block."""
    operator_key_env: str | None
    """The environment variable holding the operator's private key; or, with a keystore,
    the one holding the keystore's password."""
    operator_keystore: Path | None = None
    """An encrypted keystore file (web3 secret storage) holding the operator's key."""
    confirmations: Confirmations = 2
    """Blocks on top of a fact before it counts, or ``"finalized"``: the node's finalized
    block."""
    poll_ms: int = 1000
    settlements_in_flight: int = 8
    """Settlements worked on at once, each with its own nonce (one at a time, a chain with
    blocks every few seconds settles one order per block)."""

    def secret(self) -> str:
        """The operator's key, or the keystore's password, from the environment (checked at
        start, before anything is connected)."""
        variable = self.operator_key_env or ""
        value = os.environ.get(variable)
        if not value:
            key = "operator_password_env" if self.operator_keystore else "operator_key_env"
            raise ConfigError(f"chain.{key}: ${variable} is not set")
        return value

    @property
    def node(self) -> str:
        """The node's scheme, host and port, for messages: a provider's URL may carry its API
        key in the path or the query, which never goes into output or logs."""
        parts = urlsplit(self.rpc)
        hidden = "/..." if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}" \
            + hidden


@dataclass(frozen=True, slots=True)
class Deployment:
    setup: EngineSetup
    """What a new journal is created with (an existing journal keeps its own)."""
    service: ServiceSettings
    fix: FixSettings
    chain: ChainSettings | None = None
    """Where deposits come from and mints are settled; the service needs one."""
    wallets: tuple[tuple[str, str], ...] = ()
    """(account, wallet): the vault's deposits from the wallet are the account's."""
    admin: AdminSettings | None = None
    metrics: MetricsSettings | None = None


def load_deployment(path: Path) -> Deployment:
    """The deployment in ``path``; a ``ConfigError`` names the file and the key at fault."""
    try:
        return _deployment(read_file(path), path.parent)
    except (ConfigError, IndexDefinitionError, ValueError) as error:
        message = str(error)
        raise ConfigError(message if message.startswith(str(path)) else
                          f"{path}: {message}") from None


def _deployment(data: Mapping[str, Any], base: Path) -> Deployment:
    reject_unknown(data, {"solver", "markets", "service", "fix", "accounts", "test_session",
                          "chain", "admin", "metrics"}, "(top)")
    setup = _setup(expect_table(data.get("solver"), "solver"),
                   expect_table(data.get("markets"), "markets"), base)
    fix = _fix(expect_table(data.get("fix"), "fix"), _accounts(data.get("accounts", {})),
               _test_session(data.get("test_session")), base)
    chain = None if data.get("chain") is None else _chain(expect_table(data["chain"], "chain"),
                                                          base)
    return Deployment(setup, _service(expect_table(data.get("service"), "service"), base), fix,
                      chain, _wallets(data.get("accounts", {})),
                      None if data.get("admin") is None else _admin(data["admin"]),
                      None if data.get("metrics") is None else _metrics(data["metrics"]))


def _chain(table: Mapping[str, Any], base: Path) -> ChainSettings:
    reject_unknown(table, {"rpc", "rpc_env", "deployment", "operator_key_env",
                           "operator_keystore", "operator_password_env", "confirmations",
                           "poll_ms", "settlements_in_flight"}, "chain")
    rpc = _rpc(table)
    keystore = table.get("operator_keystore")
    if (keystore is None) == (table.get("operator_key_env") is None):
        raise ConfigError("chain: give operator_key_env, or operator_keystore with "
                          "operator_password_env")
    secret = ("operator_key_env" if keystore is None else "operator_password_env")
    return ChainSettings(
        rpc, base / expect_text(table.get("deployment"), "chain.deployment"),
        expect_text(table.get(secret), f"chain.{secret}"),
        None if keystore is None else base / expect_text(keystore, "chain.operator_keystore"),
        _confirmations(table.get("confirmations", 2)),
        expect_whole(table.get("poll_ms", 1000), "chain.poll_ms", 10, 600_000),
        expect_whole(table.get("settlements_in_flight", 8), "chain.settlements_in_flight", 1,
                     64))


def _confirmations(value: Any) -> Confirmations:
    if value == FINALIZED:
        return FINALIZED
    if isinstance(value, str):
        raise ConfigError(f'chain.confirmations: a whole number of blocks or "{FINALIZED}", '
                          f"not {value!r}")
    return expect_whole(value, "chain.confirmations", 0, 1000)


def _rpc(table: Mapping[str, Any]) -> str:
    """The node's URL: ``rpc``, or the environment variable ``rpc_env`` names (a provider's
    URL often carries its API key)."""
    if (table.get("rpc") is None) == (table.get("rpc_env") is None):
        raise ConfigError("chain: give rpc (the node's URL) or rpc_env (the variable holding it)")
    if table.get("rpc") is not None:
        key, rpc = "chain.rpc", expect_text(table.get("rpc"), "chain.rpc")
    else:
        variable = expect_text(table.get("rpc_env"), "chain.rpc_env")
        key, rpc = "chain.rpc_env", os.environ.get(variable, "")
        if not rpc:
            raise ConfigError(f"chain.rpc_env: ${variable} is not set")
    if not re.fullmatch(r"https?://\S+", rpc):
        raise ConfigError(f"{key}: expected the node's http:// or https:// URL")
    return rpc


def _wallets(value: Any) -> tuple[tuple[str, str], ...]:
    wallets = []
    for name, table in expect_table(value, "accounts").items():
        wallet = expect_table(table, f"accounts.{name}").get("wallet")
        if wallet is None:
            continue
        wallet = expect_text(wallet, f"accounts.{name}.wallet")
        if not _WALLET.fullmatch(wallet):
            raise ConfigError(f"accounts.{name}.wallet: expected an EVM address, 0x and 40 "
                              "hexadecimal digits")
        wallets.append((name, wallet))
    if len({w.lower() for _, w in wallets}) != len(wallets):
        raise ConfigError("accounts: each account needs its own wallet")
    return tuple(wallets)


def _setup(table: Mapping[str, Any], markets: Mapping[str, Any], base: Path) -> EngineSetup:
    reject_unknown(table, {"indexes", "collaterals", "client_order_prefix", "params"}, "solver")
    files = expect_list(table.get("indexes"), "solver.indexes")
    if not files:
        raise ConfigError("solver.indexes: name at least one index definition file")
    indexes = tuple(load_index_file(base / expect_text(f, f"solver.indexes[{n}]"))
                    for n, f in enumerate(files))
    rules = tuple(_market(asset, expect_table(spec, f"markets.{asset}"))
                  for asset, spec in markets.items())
    _check_markets(indexes, rules)
    try:
        params = SolverParams.from_mapping(expect_table(table.get("params", {}),
                                                        "solver.params"))
    except ValueError as error:
        raise ConfigError(f"solver.params.{error}") from None
    decimals = {i.collateral: 6 for i in indexes}
    for asset, value in expect_table(table.get("collaterals", {}), "solver.collaterals").items():
        if asset not in decimals:
            raise ConfigError(f"solver.collaterals.{asset}: no index is bought with {asset}")
        decimals[asset] = expect_whole(value, f"solver.collaterals.{asset}", 0, 18)
    problems = setting_problems(params, decimals, {})
    if problems:
        raise ConfigError(f"solver.{problems[0]}")
    prefix = expect_text(table.get("client_order_prefix", "ixs"), "solver.client_order_prefix")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", prefix):
        raise ConfigError("solver.client_order_prefix: use 1 to 16 of A-Z a-z 0-9 _ -")
    return EngineSetup(indexes, rules, params,
                       tuple(Collateral(a, d) for a, d in decimals.items()), prefix)


def _market(asset: str, spec: Mapping[str, Any]) -> MarketRules:
    key = f"markets.{asset}"
    reject_unknown(spec, {"symbol", "quote", *_FILTERS}, key)
    symbol = expect_text(spec.get("symbol"), f"{key}.symbol")
    quote = spec.get("quote") or (symbol[len(asset):] if symbol.startswith(asset) else "")
    if not quote:
        raise ConfigError(f"{key}.quote: cannot tell the quote asset of {symbol}")
    return MarketRules(symbol, asset, str(quote), **{
        f: expect_number(spec.get(f, 0), f"{key}.{f}", minimum=ZERO) for f in _FILTERS})


def _check_markets(indexes: tuple[Index, ...], rules: tuple[MarketRules, ...]) -> None:
    by_asset = {r.asset: r for r in rules}
    symbols = [r.symbol for r in rules]
    if len(set(symbols)) != len(symbols):
        raise ConfigError("markets: each market needs its own symbol")
    for index in indexes:
        for c in index.constituents:
            market = by_asset.get(c.asset)
            if market is None:
                raise ConfigError(f"markets.{c.asset}: required by index {index.symbol}")
            if (market.symbol, market.quote) != (c.symbol, index.collateral):
                raise ConfigError(f"markets.{c.asset}: index {index.symbol} trades it as "
                                  f"{c.symbol}, quoted in {index.collateral}")


def _service(table: Mapping[str, Any], base: Path) -> ServiceSettings:
    reject_unknown(table, {"journal", "exchange", "gather_ms", "plan_every_ms",
                           "shutdown_grace_s", "snapshot_every", "stall_after_ms"}, "service")
    exchange = expect_text(table.get("exchange"), "service.exchange")
    if not EXCHANGES.fullmatch(exchange):
        raise ConfigError("service.exchange: expected local:PORT, testnet or production")
    return ServiceSettings(
        base / expect_text(table.get("journal"), "service.journal"), exchange,
        expect_whole(table.get("gather_ms", 2), "service.gather_ms", 0, 1000),
        expect_whole(table.get("plan_every_ms", 500), "service.plan_every_ms", 10, 60_000),
        expect_whole(table.get("shutdown_grace_s", 30), "service.shutdown_grace_s", 0, 3600),
        expect_whole(table.get("snapshot_every", 2000), "service.snapshot_every", 10,
                     1_000_000),
        expect_whole(table.get("stall_after_ms", 60_000), "service.stall_after_ms", 100,
                     86_400_000))


def _admin(value: Any) -> AdminSettings:
    table = expect_table(value, "admin")
    reject_unknown(table, {"port", "token_env"}, "admin")
    return AdminSettings(expect_whole(table.get("port"), "admin.port", 0, 65535),
                         expect_text(table.get("token_env", "SOLVER_ADMIN_TOKEN"),
                                     "admin.token_env"))


def _metrics(value: Any) -> MetricsSettings:
    table = expect_table(value, "metrics")
    reject_unknown(table, {"port", "host"}, "metrics")
    return MetricsSettings(expect_whole(table.get("port"), "metrics.port", 0, 65535),
                           expect_text(table.get("host", "127.0.0.1"), "metrics.host"))


def _fix(table: Mapping[str, Any], accounts: tuple[Account, ...],
         test_session: TestSession | None, base: Path) -> FixSettings:
    reject_unknown(table, {"port", "host", "comp_id", "store", "log", "chain_id", "dictionary",
                           "door"}, "fix")
    log = table.get("log")
    dictionary = table.get("dictionary")
    return FixSettings(
        port=expect_whole(table.get("port"), "fix.port", 0, 65535),
        comp_id=_comp_id(table.get("comp_id"), "fix.comp_id"),
        store=base / expect_text(table.get("store"), "fix.store"),
        accounts=accounts,
        host=expect_text(table.get("host", "127.0.0.1"), "fix.host"),
        log=None if log is None else base / expect_text(log, "fix.log"),
        chain_id=expect_whole(table.get("chain_id", 31337), "fix.chain_id", 1, 2**63),
        dictionary=DICTIONARY if dictionary is None else base / expect_text(dictionary,
                                                                            "fix.dictionary"),
        test_session=test_session,
        door=_door(expect_table(table.get("door", {}), "fix.door")),
    )


def _door(table: Mapping[str, Any]) -> DoorSettings:
    defaults = DoorSettings()
    reject_unknown(table, set(DoorSettings.__dataclass_fields__), "fix.door")
    return DoorSettings(
        logon_timeout_s=float(expect_whole(table.get(
            "logon_timeout_s", int(defaults.logon_timeout_s)), "fix.door.logon_timeout_s",
            1, 600)),
        max_unauthenticated=expect_whole(table.get(
            "max_unauthenticated", defaults.max_unauthenticated),
            "fix.door.max_unauthenticated", 1, 10_000),
        max_unauthenticated_per_address=expect_whole(table.get(
            "max_unauthenticated_per_address", defaults.max_unauthenticated_per_address),
            "fix.door.max_unauthenticated_per_address", 1, 10_000),
        failed_logons_per_account_and_address=expect_whole(table.get(
            "failed_logons_per_account_and_address",
            defaults.failed_logons_per_account_and_address),
            "fix.door.failed_logons_per_account_and_address", 1, 10_000),
        failed_logons_per_comp_id=expect_whole(table.get(
            "failed_logons_per_comp_id", defaults.failed_logons_per_comp_id),
            "fix.door.failed_logons_per_comp_id", 1, 10_000),
        failure_window_s=float(expect_whole(table.get(
            "failure_window_s", int(defaults.failure_window_s)), "fix.door.failure_window_s",
            1, 86_400)),
    )


def _accounts(value: Any) -> tuple[Account, ...]:
    accounts = []
    for name, table in expect_table(value, "accounts").items():
        key = f"accounts.{name}"
        table = expect_table(table, key)
        reject_unknown(table, {"comp_id", "password_hash", "password_hash_env", "wallet"}, key)
        stored = _password_hash(table, key)
        accounts.append(Account(name, _comp_id(table.get("comp_id"), f"{key}.comp_id"), stored))
    comp_ids = [a.comp_id for a in accounts]
    if len(set(comp_ids)) != len(comp_ids):
        raise ConfigError("accounts: each account needs its own comp_id")
    return tuple(accounts)


def _password_hash(table: Mapping[str, Any], key: str) -> str:
    """Inline, or from the environment variable ``password_hash_env`` names."""
    variable = table.get("password_hash_env")
    if variable is not None:
        name = expect_text(variable, f"{key}.password_hash_env")
        stored = os.environ.get(name, "")
        where = f"{key}.password_hash_env: ${name}"
        if not stored:
            raise ConfigError(f"{where} is not set; make a hash with `index-solver "
                                "fix-password`")
    else:
        stored = expect_text(table.get("password_hash"), f"{key}.password_hash")
        where = f"{key}.password_hash"
    try:
        check_hash(stored)
    except BadPasswordHash as error:
        raise ConfigError(f"{where}: {error}") from None
    return stored


def _test_session(value: Any) -> TestSession | None:
    if value is None:
        return None
    table = expect_table(value, "test_session")
    reject_unknown(table, {"enabled", "comp_id", "target_comp_id"}, "test_session")
    if table.get("enabled") is not True:
        return None
    return TestSession(_comp_id(table.get("comp_id"), "test_session.comp_id"),
                       _comp_id(table.get("target_comp_id"), "test_session.target_comp_id"))


def _comp_id(value: Any, key: str) -> str:
    text = expect_text(value, key)
    if not _COMP_ID.fullmatch(text):
        raise ConfigError(f"{key}: use 1 to 32 of A-Z a-z 0-9 _ . -")
    return text
