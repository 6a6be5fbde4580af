"""The gateway's deployment file (TOML): the FIX acceptor, its accounts, and the service it
fronts. Paths are relative to the file. Secrets are not in it: passwords are scrypt hashes and
the exchange keys come from the environment.

::

    [fix]
    port = 15003                 # 127.0.0.1 unless host is set
    comp_id = "SOLVER"           # our SenderCompID
    store = "var/fix/store"      # QuickFIX FileStore: sequence numbers and sent messages
    log = "var/fix/log"          # optional QuickFIX message log
    chain_id = 31337             # reported with every mint

    [accounts.alice]             # one FIX session per account
    comp_id = "ALICE"            # the client's SenderCompID, also its Username(553)
    password_hash = "scrypt:..." # from `index-solver fix-password`, or
    # password_hash_env = "FIX_ALICE_PASSWORD_HASH"   # the environment variable holding it

    [fix.door]                   # optional: what peers that have not logged on may hold
    logon_timeout_s = 5          # a connection must send its Logon within this
    max_unauthenticated = 32     # connections not logged on at once, at most
    failed_logons_per_address = 5    # within failure_window_s; past it, refused unchecked
    failed_logons_per_comp_id = 10
    failure_window_s = 60

    [test_session]               # optional, off unless enabled: an echo session for FIX suites
    enabled = true
    comp_id = "ECHO"
    target_comp_id = "TESTER"

    [service]
    setup = "../scenarios/basic.toml"   # indexes, markets and params for a new journal
    journal = "var/journal.db"
    exchange = "local:9876"             # local:PORT (the mock), testnet or production
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fix_gateway.front_door import DoorSettings
from fix_gateway.passwords import BadPasswordHash, check_hash
from solver.config.fields import (
    ScenarioError,
    expect_table,
    expect_text,
    expect_whole,
    reject_unknown,
)
from solver.simulation.scenario import read_file

DICTIONARY = Path(__file__).with_name("spec") / "FIX44-gw.xml"
_COMP_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    comp_id: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class TestSession:
    comp_id: str
    target_comp_id: str


@dataclass(frozen=True, slots=True)
class FixSettings:
    port: int
    comp_id: str
    store: Path
    accounts: tuple[Account, ...]
    host: str = "127.0.0.1"
    log: Path | None = None
    chain_id: int = 31337
    dictionary: Path = DICTIONARY
    test_session: TestSession | None = None
    door: DoorSettings = field(default_factory=DoorSettings)

    def account_of(self, comp_id: str) -> Account | None:
        return next((a for a in self.accounts if a.comp_id == comp_id), None)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    setup: Path
    journal: Path
    exchange: str


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    fix: FixSettings
    service: ServiceSettings | None = None


def load_config(path: Path) -> GatewayConfig:
    data = read_file(path)
    reject_unknown(data, {"fix", "accounts", "test_session", "service"}, str(path))
    base = path.parent
    fix = _fix(expect_table(data.get("fix"), "fix"), _accounts(data.get("accounts", {})),
               _test_session(data.get("test_session")), base)
    service = data.get("service")
    return GatewayConfig(fix, None if service is None else _service(service, base))


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
        failed_logons_per_address=expect_whole(table.get(
            "failed_logons_per_address", defaults.failed_logons_per_address),
            "fix.door.failed_logons_per_address", 1, 10_000),
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
        reject_unknown(table, {"comp_id", "password_hash", "password_hash_env"}, key)
        stored = _password_hash(table, key)
        accounts.append(Account(name, _comp_id(table.get("comp_id"), f"{key}.comp_id"), stored))
    comp_ids = [a.comp_id for a in accounts]
    if len(set(comp_ids)) != len(comp_ids):
        raise ScenarioError("accounts: each account needs its own comp_id")
    return tuple(accounts)


def _password_hash(table: Mapping[str, Any], key: str) -> str:
    """Inline, or from the environment variable ``password_hash_env`` names."""
    variable = table.get("password_hash_env")
    if variable is not None:
        name = expect_text(variable, f"{key}.password_hash_env")
        stored = os.environ.get(name, "")
        where = f"{key}.password_hash_env: ${name}"
        if not stored:
            raise ScenarioError(f"{where} is not set; make a hash with `index-solver "
                                "fix-password`")
    else:
        stored = expect_text(table.get("password_hash"), f"{key}.password_hash")
        where = f"{key}.password_hash"
    try:
        check_hash(stored)
    except BadPasswordHash as error:
        raise ScenarioError(f"{where}: {error}") from None
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


def _service(value: Any, base: Path) -> ServiceSettings:
    table = expect_table(value, "service")
    reject_unknown(table, {"setup", "journal", "exchange"}, "service")
    exchange = expect_text(table.get("exchange"), "service.exchange")
    if not re.fullmatch(r"local:\d{1,5}|testnet|production", exchange):
        raise ScenarioError("service.exchange: expected local:PORT, testnet or production")
    return ServiceSettings(base / expect_text(table.get("setup"), "service.setup"),
                           base / expect_text(table.get("journal"), "service.journal"),
                           exchange)


def _comp_id(value: Any, key: str) -> str:
    text = expect_text(value, key)
    if not _COMP_ID.fullmatch(text):
        raise ScenarioError(f"{key}: use 1 to 32 of A-Z a-z 0-9 _ . -")
    return text
