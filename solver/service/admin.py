"""The operator's endpoint: HTTP on 127.0.0.1, every request with the bearer token.

- ``GET /status``: FIX sessions, orders by status, batches in flight, whether plans find
  batches (and if not, why, and whether planning has stalled), when the exchange and
  the chain last told the engine something, deposits held for unknown wallets, and the state
  of the reconciliation of the ledger with the vault.
- ``GET /snapshot``: positions (per account and index), the solver's inventory, and every
  account's collateral.
- ``POST /resolve/{fact_id}``: an operator resolves a vault event a deep reorganisation took
  off the chain (``ResolveVanishedFact``, journaled): the engine undoes its effect on the
  ledger, or says why not yet.
- ``POST /reconcile``: query the exchange for every order not final and read the chain now,
  then check every account's vault balance against the ledger; says what this found.

What it says comes from views the bus keeps (``solver/views``) and from the adapters' own
records (the gateway's sessions, the reconciler's checks), never from the engine's live state.
Answers are JSON with amounts as exact decimal strings (``plain``: no exponent, no trailing
zeros); ``index-solver status | snapshot | reconcile``
print them as tables.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import asdict, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import structlog
from aiohttp import web

from solver.core.commands import Input, ResolveVanishedFact
from solver.core.events import InputIgnored
from solver.core.ledger import Balance
from solver.core.money import plain
from solver.plumbing.clock import now_ms
from solver.plumbing.http import Listening
from solver.service.service import Service
from solver.views.operations import NotPlanned

if TYPE_CHECKING:
    from chain.reconciler import Check

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
FACT_ID = re.compile(r"[!-~]{1,200}")


class AdminEndpoint:
    def __init__(self, service: Service, token: str) -> None:
        self.service = service
        self.operations, self.positions = service.operations, service.positions
        self._expected = f"Bearer {token}".encode()
        app = web.Application(middlewares=[self._authorised])
        app.add_routes([web.get("/status", self._status), web.get("/snapshot", self._snapshot),
                        web.post("/reconcile", self._reconcile),
                        web.post("/resolve/{fact_id}", self._resolve)])
        self.listening = Listening(app, "admin endpoint")

    async def start(self, port: int) -> None:
        await self.listening.start(HOST, port)

    async def stop(self) -> None:
        await self.listening.stop()

    @web.middleware
    async def _authorised(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            log.warning("admin request refused: no valid bearer token", path=request.path,
                        peer=request.remote)
            return web.json_response(
                {"error": "unauthorised: send the bearer token of admin.token_env"},
                status=401, headers={"WWW-Authenticate": 'Bearer realm="index-solver"'})
        response: web.StreamResponse = await handler(request)
        return response

    # --- answers --------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _reconcile(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(await self.reconcile())
        except Exception as error:  # the node or the exchange away: say so, keep serving
            log.warning("forced reconciliation failed", error=type(error).__name__)
            return web.json_response(  # the type only: a node's URL may carry a key
                {"error": f"reconciliation failed ({type(error).__name__}); see the logs "
                          "and try again"}, status=502)

    async def _resolve(self, request: web.Request) -> web.Response:
        try:  # the path as sent, percent-encoded (index-solver resolve quotes the id)
            fact_id = unquote(request.match_info["fact_id"], errors="strict")
        except UnicodeDecodeError:
            fact_id = ""
        if not FACT_ID.fullmatch(fact_id):
            return web.json_response(  # journaled otherwise: bounded, printable, one line
                {"error": "a fact id is 1 to 200 printable ASCII characters, as index-solver "
                          "status lists them (0x<transaction hash>:<ordinal>)"}, status=400)
        return web.json_response(await self.resolve(fact_id))

    async def resolve(self, fact_id: str) -> dict[str, Any]:
        transaction = await self.service.runtime.apply(ResolveVanishedFact(now_ms(), fact_id))
        refused = transaction.of_type(InputIgnored)
        log.warning("vanished vault fact resolved by the operator" if not refused else
                    "vanished vault fact not resolved", fact_id=fact_id,
                    transaction=transaction.number,
                    reason=refused[0].reason if refused else None)
        if refused:
            return {"resolved": False, "fact_id": fact_id, "reason": refused[0].reason}
        return {"resolved": True, "fact_id": fact_id, "transaction": transaction.number}

    def status(self) -> dict[str, Any]:
        view = self.operations.view()
        gateway = self.service.gateway
        logged_on = gateway.logged_on
        now = now_ms()
        return {
            "transaction": view.transaction,
            "fix_sessions": [{"account": a.name, "comp_id": a.comp_id,
                              "logged_on": a.name in logged_on}
                             for a in gateway.settings.accounts],
            "orders": dict(view.orders),
            "batches_in_flight": list(view.batches_in_flight),
            "planning": self._planning(view.not_planned, now),
            "last_exchange_event": _age(view.last_exchange_ts, now),
            "last_chain_event": _age(view.last_chain_ts, now),
            "held_deposits": [{"wallet": h.wallet, "asset": h.asset, "amount": plain(h.amount),
                               "deposit_ids": list(h.deposit_ids)} for h in view.held],
            "reconciliation": self._reconciliation(),
            "vanished_facts": [{"fact_id": f.fact_id, "kind": f.kind.value, "wallet": f.wallet,
                                "account": f.account, "asset": f.asset,
                                "amount": plain(f.amount)} for f in view.vanished.values()],
        }

    def _planning(self, not_planned: NotPlanned | None, now: int) -> dict[str, Any]:
        """Whether the last plan found a batch; if not, since when, for how many orders, why,
        and whether that is a stall (orders that could be bought alone waiting past the
        bound)."""
        if not_planned is None:
            return {"state": "planning"}
        bound = self.service.runtime.settings.stall_after_ms
        stalled = not_planned.buyable > 0 and now - not_planned.since >= bound
        return {"state": "stalled" if stalled else "nothing to plan",
                "since": _age(not_planned.since, now), "waiting": not_planned.waiting,
                "buyable": not_planned.buyable, "reason": not_planned.reason}

    def _reconciliation(self) -> dict[str, Any]:
        chain = self.service.chain
        if chain is None:
            return {"state": "no chain"}
        checks = chain.reconciler.checks
        state = ("not checked yet" if not checks else
                 "agrees" if all(c.agrees for c in checks.values()) else "disagrees")
        return {"state": state, "disagreements_seen": len(chain.reconciler.disagreements),
                "checks": [_check(c) for c in checks.values()]}

    def snapshot(self) -> dict[str, Any]:
        positions = self.positions.view()
        operations = self.operations.view()
        return {
            "transaction": operations.transaction,
            "positions": [{"account": account, "index": index, **_amounts(asdict(p))}
                          for (account, index), p in sorted(positions.holdings.items())],
            "inventory": [{"asset": asset, **_amounts(asdict(p))}
                          for asset, p in sorted(positions.inventory.items())],
            "collateral": [{"account": account, "asset": asset, **_balance(b)}
                           for (account, asset), b in sorted(operations.balances.items())],
        }

    async def reconcile(self) -> dict[str, Any]:
        found = await self.service.runtime.execution.reconcile_now()
        answer: dict[str, Any] = {"exchange": {"facts": [_fact(f) for f in found]}}
        chain = self.service.chain
        if chain is not None:
            submitted = await chain.watcher.poll_now()
            checks = await chain.reconciler.check_all()
            answer["chain"] = {"facts": submitted, "checks": [_check(c) for c in checks]}
        log.info("reconciliation forced by the operator", exchange_facts=len(found),
                 chain=answer.get("chain"))
        return answer


def _age(ts: int | None, now: int) -> dict[str, Any] | None:
    return None if ts is None else {"ts": ts, "age_s": round((now - ts) / 1000, 3)}


def _check(check: Check) -> dict[str, Any]:
    return {"account": check.account, "block": check.block, "vault": plain(check.vault),
            "ledger": plain(check.ledger), "agrees": check.agrees}


def _balance(balance: Balance) -> dict[str, str]:
    return {f.name: plain(getattr(balance, f.name)) for f in fields(balance)}


def _amounts(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _fact(fact: Input) -> dict[str, Any]:
    return {"fact": type(fact).__name__, **_amounts(
        {f.name: getattr(fact, f.name) for f in fields(fact)
         if f.name != "ts"})}
