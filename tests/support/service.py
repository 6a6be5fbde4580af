"""The FIX gateway in front of the runtime, trading on the mock Binance, on free loopback
ports; and simplefix clients logged on to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import simplefix

from fix_gateway.config import Account, FixSettings, TestSession
from fix_gateway.front_door import DoorSettings
from fix_gateway.gateway import Gateway
from fix_gateway.passwords import hash_password
from fix_gateway.signing import OrderSigning
from mocks.binance.local import KEY, mock_server, running
from mocks.binance.server import MockBinance
from mocks.fix_client import FixClient, SessionConfig
from mocks.ports import free_port
from solver.core.setup import EngineSetup
from solver.exchange.endpoints import local
from solver.exchange.execution import ReconcilePolicy
from solver.journal.snapshot import state_of
from solver.journal.store import Journal
from solver.service.chain_link import ChainAdapters, ChainLink
from solver.service.instant_mint import InstantMint, credit
from solver.service.runtime import Runtime, RuntimeSettings
from solver.service.service import Service as WiredService
from solver.service.service import running_service
from solver.simulation.run import setup_of
from solver.simulation.scenario import load_scenario

GATEWAY = "SOLVER"
PASSWORDS = {"alice": "alice-test-password", "bob": "bob-test-password"}
_HASHES = {name: hash_password(password, salt=name.encode()) for name, password in
           PASSWORDS.items()}
SCENARIO = Path(__file__).parent.parent.parent / "examples" / "scenarios" / "basic.toml"


FAST = RuntimeSettings(plan_every_ms=100, tick_every_ms=200,
                       reconcile=ReconcilePolicy(grace_ms=300, check_every_ms=100,
                                                 open_orders_every_ms=500))


def setup() -> EngineSetup:
    return setup_of(load_scenario(SCENARIO))



def fix_settings(tmp: Path, port: int, test_session: bool = False,
                 door: DoorSettings | None = None,
                 signing: OrderSigning | None = None) -> FixSettings:
    accounts = tuple(Account(name, name.upper(), _HASHES[name]) for name in PASSWORDS)
    return FixSettings(port=port, comp_id=GATEWAY, store=tmp / "fix-store", accounts=accounts,
                       test_session=TestSession("ECHO", "TESTER") if test_session else None,
                       door=door or DoorSettings(), signing=signing)


@dataclass
class Service:
    server: MockBinance
    runtime: Runtime
    gateway: Gateway
    journal: Journal
    port: int
    tmp: Path
    wired: WiredService
    """The composition root's own: its graceful stop (``wind_down``)."""
    clients: list[FixClient] = field(default_factory=list)
    chain: ChainAdapters | None = None

    async def client(self, account: str, password: str | None = None,
                     connect: bool = True, **config: object) -> FixClient:
        client = FixClient(SessionConfig(
            "127.0.0.1", self.port, account.upper(), GATEWAY, account.upper(),
            PASSWORDS.get(account, "") if password is None else password,
            store_dir=self.tmp / "client-store", **config))  # type: ignore[arg-type]
        self.clients.append(client)
        if connect:
            await client.connect()
        return client


@contextlib.asynccontextmanager
async def service(tmp: Path, deposits: dict[str, str] | None = None, step_ms: int = 0,
                  test_session: bool = False, settings: RuntimeSettings = FAST,
                  door: DoorSettings | None = None,
                  chain: ChainLink | None = None,
                  engine: EngineSetup | None = None,
                  signing: OrderSigning | None = None) -> AsyncIterator[Service]:
    """The whole service (through the composition root) on the mock Binance, its journal in
    ``tmp`` (resumed if there); ``deposits`` are credited at start, or, with ``chain``, the
    vault's deposits; ``engine``: the engine's setup, else the basic scenario's; ``signing``:
    orders signed and checked against it."""
    port = free_port()
    async with running(mock_server(step_ms=step_ms)) as server, running_service(
            engine or setup(), fix_settings(tmp, port, test_session, door, signing),
            local(server.port),
            KEY,
            tmp / "journal.db", settings, chain) as s:
        assert s.journal is not None
        if chain is None:  # the doubles: deposits credited as given, mints confirmed at once
            InstantMint(s.runtime.bus, s.runtime.submit, s.runtime.clock)
            credit(s.runtime.submit, s.runtime.clock,
                   [(a, "USDC", Decimal(amount)) for a, amount in (deposits or {}).items()])
        running_service_ = Service(server, s.runtime, s.gateway, s.journal, port, tmp, s,
                                   chain=s.chain)
        try:
            yield running_service_
        finally:
            for client in running_service_.clients:
                client.drop()


def field_of(message: simplefix.FixMessage, tag: int) -> str | None:
    value = message.get(tag)
    return None if value is None else value.decode()


async def report_where(client: FixClient, timeout: float = 10,
                       **wanted: str) -> simplefix.FixMessage:
    """The next application message whose fields (by tag number ``t<N>``) match ``wanted``."""
    tags = {int(k[1:]): v for k, v in wanted.items()}
    while True:
        message = await client.next_message(timeout)
        if all(field_of(message, t) == v for t, v in tags.items()):
            return message


def edit(message: simplefix.FixMessage,
         changes: dict[str, str | bytes | None]) -> simplefix.FixMessage:
    """``changes`` by ``t<tag>``: a value replaces the field where it stands (inside a group
    too) or is appended; None removes it."""
    wanted = {int(key[1:]): value for key, value in changes.items()}
    edited = simplefix.FixMessage()
    for tag, value in message:
        number = int(tag)
        if number not in wanted:
            edited.append_pair(number, value)
        elif wanted[number] is not None:
            edited.append_pair(number, wanted.pop(number))
    for number, new in wanted.items():
        if new is not None:
            edited.append_pair(number, new)
    return edited


def comparable(s: Service) -> dict[str, object]:
    """The engine's state, less what any applied input moves (counters and books)."""
    state = state_of(s.runtime.engine)
    return {k: v for k, v in state.items() if k not in ("_transactions", "_sequence", "books")}
