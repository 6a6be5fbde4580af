"""The FIX gateway's settings: the acceptor, its accounts, the optional test session and the
front door's bounds. The deployment file that holds them is read by
``solver.config.deployment``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fix_gateway.dictionary import DICTIONARY
from fix_gateway.front_door import DoorSettings

if TYPE_CHECKING:
    from fix_gateway.signing import OrderSigning


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
    signing: OrderSigning | None = None
    """What orders' signatures are checked against; None: orders are not signed (no
    chain, or one whose settlements are not checked yet)."""

    def account_of(self, comp_id: str) -> Account | None:
        return next((a for a in self.accounts if a.comp_id == comp_id), None)
