"""``index-solver walkthrough``: one user's order through the whole pipeline, narrated in eight
steps, each with the real messages that carried it.

The same parts as the demo, started by the command on loopback: the mock Binance (the
example's two-asset markets), an embedded chain with the contracts deployed, the service
(QuickFIX gateway, engine, journal, execution over python-binance, chain watcher and settler)
and one simplefix client. The FIX messages are read from QuickFIX's own message log (what went
over the wire, SOH shown as ``|``); the exchange requests are the parameters the mock Binance
received (the signature left out); the chain's are the transactions' receipts and their decoded
logs. ``docs/walkthrough.md`` is a run of it with the why of each step.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from web3.logs import DISCARD

from chain.deploy import contract
from chain.watcher import from_units
from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from fix_gateway.tags import ORDER_SIGNATURE
from mocks.binance.exchange import MockExchange
from mocks.binance.server import Credentials, MockBinance
from mocks.fix_client import FixClient, SessionConfig
from mocks.fix_client import messages as fix_messages
from mocks.ports import free_port
from solver.core import events as ev
from solver.demo import (
    FEE_BOUND_BPS,
    SIGNED_FOR,
    deployed_chain,
    deposit,
    signed_limit,
    signing_wallets,
)
from solver.exchange.endpoints import ApiKey, local
from solver.plumbing.tables import readable
from solver.service.order_signing import order_signing
from solver.service.service import running_service
from solver.simulation.run import setup_of
from solver.simulation.scenario import Scenario, load_scenario

STEPS = ("The user sends collateral", "The user sends an index order",
         "The solver receives the collateral", "The solver sends asset orders",
         "The solver receives fills", "The solver fills the index order",
         "The user receives a confirmation of each fill",
         "The user receives the newly minted index tokens")


def main(path: Path, console: Console) -> int:
    return asyncio.run(_walk(load_scenario(path), console))


async def _walk(scenario: Scenario, console: Console) -> int:
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))  # this run only, never shown
    user, _, amount = scenario.deposits[0]
    order = scenario.orders[0]
    chain = await deployed_chain(scenario.indexes, [user])
    index = next(i for i in scenario.indexes if i.symbol == order.index)
    exchange = MockExchange(dict(scenario.markets), {index.collateral: Decimal(10) ** 7})
    requests = _record_orders(exchange)
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=0)
    password = secrets.token_urlsafe(12)
    filled: list[ev.IndexOrderFilled] = []
    minted: list[ev.IndexOrderMinted] = []
    await server.start()
    try:
        with tempfile.TemporaryDirectory() as store:
            fix = FixSettings(port=free_port(), comp_id="SOLVER", store=Path(store),
                              accounts=(Account(user, user.upper(), hash_password(password)),),
                              log=Path(store) / "log", chain_id=chain.deployment.chain_id,
                              signing=order_signing(chain.deployment, setup_of(scenario),
                                                    chain.wallets.items()))
            async with running_service(setup_of(scenario), fix, local(server.port), key,
                                       chain=chain) as service:
                service.runtime.bus.subscribe(ev.IndexOrderFilled,
                                              lambda e: filled.append(e.event))
                service.runtime.bus.subscribe(ev.IndexOrderMinted,
                                              lambda e: minted.append(e.event))
                receipt = await deposit(chain, user, amount)
                client = FixClient(SessionConfig("127.0.0.1", fix.port, user.upper(), "SOLVER",
                                                 user.upper(), password))
                await client.connect()
                await _until(lambda: _has(client, "BA"))
                signed = signing_wallets(chain)[user].sign(
                    order.id, order.index, order.collateral, signed_limit(scenario, order),
                    datetime.now(UTC) + SIGNED_FOR, FEE_BOUND_BPS)
                await client.send(fix_messages.new_order(order.id, order.index,
                                                         order.collateral, signed=signed))
                await _until(lambda: bool(minted) and _has(client, "8", "B"))
                await client.logout()
                wire = _fix_log(Path(store) / "log")
            tokens = await contract(chain.w3, "IndexToken", chain.deployment.index_tokens[
                index.symbol]).functions.balanceOf(chain.wallets[user]).call()
            settled = await _settlement(chain, minted[0].tx_hash)
    finally:
        await server.stop()
    console.print(f"mock Binance on loopback, an embedded chain (py-evm) with the vault at "
                  f"{chain.deployment.vault}, the service, and {user}'s FIX client:")
    _narrate(console, receipt, chain, user, wire, requests, filled, settled, tokens)
    return 0


def _record_orders(exchange: MockExchange) -> list[tuple[dict[str, str], Any, list[Any]]]:
    """Every order the mock Binance places: the request's parameters, the order, its trades."""
    recorded: list[tuple[dict[str, str], Any, list[Any]]] = []
    place = exchange.place

    def recording(params: dict[str, str], now: int) -> Any:
        order, trades = place(params, now)
        recorded.append(({k: v for k, v in params.items() if k != "signature"}, order, trades))
        return order, trades

    exchange.place = recording  # type: ignore[method-assign]
    return recorded


async def _until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


def _has(client: FixClient, msg_type: str, exec_type: str | None = None) -> bool:
    return any(m.get(35) == msg_type.encode() and (
        exec_type is None or m.get(150) == exec_type.encode()) for m in client.received)


def _fix_log(directory: Path) -> list[str]:
    """The messages QuickFIX sent and received, in order, SOH shown as ``|``."""
    lines: list[str] = []
    for path in sorted(directory.glob("*.messages.current.log")):
        for line in path.read_text(errors="replace").splitlines():
            message = line.split(" : ", 1)[-1]
            lines.append(message.replace("\x01", "|"))
    return lines


async def _settlement(chain: Any, tx_hash: str) -> tuple[Any, dict[str, Any]]:
    receipt = await chain.w3.eth.get_transaction_receipt(tx_hash)
    vault = contract(chain.w3, "CollateralVault", chain.deployment.vault)
    logs = vault.events.OrderSettled().process_receipt(receipt, DISCARD)  # the token's too
    return receipt, dict(logs[0]["args"])


def _narrate(console: Console, receipt: Any, chain: Any, user: str, wire: list[str],
             requests: list[tuple[dict[str, str], Any, list[Any]]],
             filled: list[ev.IndexOrderFilled], settled: tuple[Any, dict[str, Any]],
             tokens: int) -> None:
    vault = contract(chain.w3, "CollateralVault", chain.deployment.vault)
    deposited = dict(vault.events.Deposited().process_receipt(receipt, DISCARD)[0]["args"])
    by_type = _by_type(wire)
    step = iter(range(1, 9))

    def show(text: str, *body: str) -> None:
        n = next(step)
        # a space after each FIX field's "|": long messages wrap between fields, not in one
        lines = (line.replace("|", "| ") for line in body)
        console.print(Panel("\n".join((f"[italic]{text}[/]", *lines)),
                            title=f"{n}. {STEPS[n - 1]}", title_align="left"), highlight=False)

    show("the wallet calls deposit(amount, ref) on the vault; the vault's event credits it",
         f"transaction 0x{receipt['transactionHash'].hex()} in block {receipt['blockNumber']}",
         f"Deposited {_fields(deposited)}")
    show("FIX NewOrderSingle (35=D) for the index, sized in collateral: CashOrderQty(152); "
         "signed by the wallet: the limit fees included Price(44), the deadline "
         "ExpireTime(126), the fee bound MaxFeeBps(20031), OrderSignature(20030) (its 65 "
         "bytes shortened here)", *(_shortened(m) for m in by_type.get("D", [])))
    show("once the deposit has its confirmations: CollateralReport (35=BA)",
         *by_type.get("BA", [])[:1])
    show("one LIMIT IOC order per asset, at the prices the batch was fitted to",
         *(f"POST /api/v3/order {_fields(params)}" for params, _, _ in requests))
    show("the exchange's answers: each order's trades (the fills of the FULL response)",
         *(f"{order.client_order_id} {order.status}: " + "; ".join(
             _fields(t.fill()) for t in trades) for _, order, trades in requests))
    show("the batch settles: the fills are allocated to the index order (the engine's event)",
         *(f"IndexOrderFilled units={readable(f.units)} price={readable(f.price)} "
           f"cost={readable(f.cost)} fees={readable(f.fees)} remaining={readable(f.remaining)}"
           for f in filled),
         "(amounts to 6 decimals here; the engine's are exact)")
    show("an ExecutionReport (35=8) per partial fill, then the mint report (150=B)",
         *by_type.get("8", []))
    receipt_, args = settled
    show("settle_batch(...) checks the signature, charges the collateral and mints the "
         "tokens in one transaction",
         f"transaction 0x{receipt_['transactionHash'].hex()} in block "
         f"{receipt_['blockNumber']}",
         f"OrderSettled {_fields(args)}",
         f"IndexToken.balanceOf({chain.wallets[user]}) = {from_units(tokens, 18)}")


def _shortened(message: str) -> str:
    """``message`` with its OrderSignature's middle left out: 132 characters would not fit a
    line."""
    return re.sub(rf"(\b{ORDER_SIGNATURE}=0x[0-9a-f]{{8}})[0-9a-f]+([0-9a-f]{{8}})",
                  r"\1...\2", message)


def _by_type(wire: list[str]) -> dict[str, list[str]]:
    """The application messages by MsgType, in order."""
    found: dict[str, list[str]] = {}
    for message in wire:
        kind = next((f[3:] for f in message.split("|") if f.startswith("35=")), "")
        if kind not in ("0", "1", "2", "4", "5", "A"):
            found.setdefault(kind, []).append(message)
    return found


def _fields(values: dict[str, Any]) -> str:
    return " ".join(f"{k}=0x{v.hex()}" if isinstance(v, bytes) else f"{k}={v}"
                    for k, v in values.items())
