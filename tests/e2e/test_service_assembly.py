"""The composition root stops the service in the order that keeps what it took: the gateway
first (the writer journals every message it took), then the runtime, then the exchange
connector and the journal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fix_gateway.gateway import Gateway
from mocks.binance.local import KEY, mock_server, running
from mocks.ports import free_port
from solver.config.fields import ConfigError
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import local
from solver.journal.store import Journal
from solver.service import service as assembled
from solver.service.runtime import Runtime
from tests.support.exchange import run
from tests.support.service import FAST, fix_settings, setup


def recording(calls: list[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return method(*args, **kwargs)
    return record


def test_the_service_stops_the_gateway_first_and_closes_the_journal_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for owner, method, name in ((Gateway, "stop", "gateway"), (Runtime, "stop", "runtime"),
                                (BinanceConnector, "close", "connector"),
                                (Journal, "close", "journal")):
        monkeypatch.setattr(owner, method, recording(calls, name, getattr(owner, method)))

    async def scenario() -> None:
        async with running(mock_server()) as server, assembled.running_service(
                setup(), fix_settings(tmp_path, 0), local(server.port), KEY,
                tmp_path / "journal.db", FAST) as service:
            assert service.journal is not None and not calls
    run(scenario())
    assert calls == ["gateway", "runtime", "connector", "journal"]


def test_a_service_that_fails_to_start_still_closes_what_it_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for owner, method, name in ((BinanceConnector, "close", "connector"),
                                (Journal, "close", "journal")):
        monkeypatch.setattr(owner, method, recording(calls, name, getattr(owner, method)))

    async def scenario() -> None:
        async with running(mock_server()) as server:
            server_port = server.port
        with pytest.raises(OSError):  # nothing listens there any more
            async with assembled.running_service(setup(), fix_settings(tmp_path, 0),
                                              local(server_port), KEY,
                                              tmp_path / "journal.db", FAST):
                pass
    run(scenario())
    assert calls == ["connector", "journal"]


def test_a_service_on_a_chain_refuses_to_start_without_signed_orders(tmp_path: Path) -> None:
    """The vault settles only what a wallet signed: a chain with orders unsigned would take
    orders it could never mint. Nothing is opened, and the chain is never reached."""
    reached: list[str] = []

    async def chain() -> Any:
        reached.append("the node")

    async def scenario() -> None:
        with pytest.raises(ConfigError, match=r"fix\.signing"):
            async with assembled.running_service(
                    setup(), fix_settings(tmp_path, 0), local(free_port()), KEY,
                    tmp_path / "journal.db", FAST, chain=chain()):
                pass
    run(scenario())
    assert reached == [] and not (tmp_path / "journal.db").exists()
