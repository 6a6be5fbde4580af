"""The simulate report: one JSON-ready mapping, and the same as readable tables.

Every amount is a decimal string (no floats, no exponents).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console

from solver.core.commands import SubmitIndexOrder
from solver.core.events import (
    IndexOrderAccepted,
    IndexOrderCompleted,
    IndexOrderRejected,
    LotOpened,
    QuoteIssued,
    QuoteRejected,
    Transaction,
)
from solver.core.money import ZERO, exact, plain, round_decimals
from solver.plumbing.tables import table
from solver.simulation.run import SimulationResult

AVG_PRICE_DECIMALS = 8


@dataclass(frozen=True, slots=True)
class Submission:
    key: str
    """The order's name in the report: its id, made unique where ids repeat."""
    order: SubmitIndexOrder
    order_id: int | None
    rejection: IndexOrderRejected | None


@exact  # the engine's context: amounts up to 1E+24 at 18 decimals need more than 28 digits
def build_report(result: SimulationResult) -> dict[str, Any]:
    submitted = submissions(result.transactions)
    return {
        "orders": _orders(result, submitted),
        "batches": _batches(result, submitted),
        "quotes": [_quote(e.event) for e in result.events
                   if isinstance(e.event, QuoteIssued | QuoteRejected)],
        "inventory": {a: plain(q) for a, q in sorted(result.engine.inventory.positions().items())},
        "accounts": _accounts(result),
        "fee_assets": {asset: {"funded": plain(held.funded), "paid": plain(held.paid),
                               "unvalued": plain(held.unvalued), "balance": plain(held.balance)}
                       for asset, held in sorted(result.engine.fee_assets.items())},
        "invariants": result.violations or "ok",
    }


def submissions(transactions: Iterable[Transaction]) -> list[Submission]:
    """Every order submitted, in order, named by its client order id (with its account where
    accounts share ids, and a counter where an account reuses one)."""
    submitted = [t for t in transactions if isinstance(t.input, SubmitIndexOrder)]
    accounts_per_id: dict[str, set[str]] = {}
    for t in submitted:
        assert isinstance(t.input, SubmitIndexOrder)
        accounts_per_id.setdefault(t.input.client_order_id, set()).add(t.input.account)
    seen: Counter[str] = Counter()
    found = []
    for t in submitted:
        order = t.input
        assert isinstance(order, SubmitIndexOrder)
        key = (order.client_order_id if len(accounts_per_id[order.client_order_id]) == 1
               else f"{order.account}/{order.client_order_id}")
        seen[key] += 1
        key = key if seen[key] == 1 else f"{key}#{seen[key]}"
        accepted, rejected = t.of_type(IndexOrderAccepted), t.of_type(IndexOrderRejected)
        found.append(Submission(key, order, accepted[0].order_id if accepted else None,
                                rejected[0] if rejected else None))
    return found


def _orders(result: SimulationResult,
            submitted: list[Submission]) -> dict[str, dict[str, Any]]:
    ended = {e.event.order_id: e.event.reason for e in result.events
             if isinstance(e.event, IndexOrderCompleted)}
    report = {}
    for sub in submitted:
        row: dict[str, Any] = {"account": sub.order.account, "index": sub.order.index,
                               "collateral": plain(sub.order.collateral)}
        if sub.order_id is None:
            assert sub.rejection is not None
            row.update(status="rejected", filled_units="0", collateral_spent="0",
                       collateral_released="0", fees="0", avg_price=None, minted_units="0",
                       mint_tx=None, reject_reason=sub.rejection.reason.value,
                       reject_text=sub.rejection.text, end_reason=None)
        else:
            o = result.engine.orders[sub.order_id]
            avg = None if not o.filled_units else round_decimals(o.spent / o.filled_units,
                                                                 AVG_PRICE_DECIMALS)
            row.update(status=o.status.value, filled_units=plain(o.filled_units),
                       collateral_spent=plain(o.spent),
                       # given back in all: by reductions, and what was left when it closed
                       collateral_released=plain(sub.order.collateral - o.collateral
                                                 + o.released),
                       fees=plain(o.fees), avg_price=None if avg is None else plain(avg),
                       minted_units=plain(o.minted_units), mint_tx=o.mint_tx,
                       reject_reason=None, reject_text=None,
                       end_reason=ended.get(o.id) or None)
        report[sub.key] = row
    return report


def _batches(result: SimulationResult, submitted: list[Submission]) -> list[dict[str, Any]]:
    engine = result.engine
    names = {s.order_id: s.key for s in submitted if s.order_id is not None}
    fills: dict[int, list[dict[str, str]]] = {}
    for envelope in result.events:
        lot = envelope.event
        if isinstance(lot, LotOpened):
            symbol, trade_id = lot.lot_id.split(":", 1)
            fills.setdefault(lot.batch_id, []).append(
                {"symbol": symbol, "trade_id": trade_id, "price": plain(lot.price),
                 "qty": plain(lot.quantity), "fee": plain(lot.fee)})
    batches = []
    for batch in engine.batches.values():
        orders = [engine.asset_orders[i] for i in batch.asset_order_ids]
        batches.append({
            "batch": batch.id,
            "engaged": {names[o]: plain(u) for o, u in batch.engagements.items()},
            "filled": {names[o]: plain(u) for o, u in batch.filled_units.items()},
            "inventory_used": {a: plain(q) for a, q in sorted(batch.inventory_used.items())},
            "asset_orders": [{"symbol": o.symbol, "side": o.side.value, "qty": plain(o.quantity),
                              "price": plain(o.price), "status": _outcome(o.outcome),
                              "executed": plain(o.executed)} for o in orders],
            "fills": fills.get(batch.id, []),
            "vwaps": {a: plain(p) for a, p in sorted(batch.vwaps.items())},
        })
    return batches


def _outcome(outcome: Any) -> str:
    return "open" if outcome is None else str(outcome.value)


def _quote(answer: Any) -> dict[str, Any]:
    if isinstance(answer, QuoteIssued):
        return {"index": answer.index, "collateral": plain(answer.collateral),
                "index_price": plain(answer.index_price), "units": plain(answer.units)}
    return {"index": answer.index, "error": answer.text}


def _accounts(result: SimulationResult) -> dict[str, dict[str, str]]:
    balances = result.engine.ledger.balances()
    assets_per_account: dict[str, int] = {}
    for account, _ in balances:
        assets_per_account[account] = assets_per_account.get(account, 0) + 1
    report = {}
    for (account, asset), b in sorted(balances.items()):
        key = account if assets_per_account[account] == 1 else f"{account}/{asset}"
        report[key] = {"asset": asset, "deposited": plain(b.deposited),
                       "available": plain(b.available), "reserved": plain(b.reserved),
                       "spent": plain(b.spent), "fees": plain(b.fees),
                       "withdrawing": plain(b.withdrawing), "withdrawn": plain(b.withdrawn)}
    return report


def print_report(report: Mapping[str, Any], console: Console) -> None:
    """The report as tables, for a person reading a terminal (80 columns are enough)."""
    orders = report["orders"]
    lives = table("Index orders", "order", "account", "index", "status", "filled units",
                  "minted")
    costs = table("What they cost (collateral)", "order", "collateral", "spent", "released",
                  "fees", "avg price")
    rejected = table("Rejected orders", "order", "reason")
    for key, o in orders.items():
        lives.add_row(key, o["account"], o["index"], o["status"], o["filled_units"],
                      o["minted_units"])
        costs.add_row(key, o["collateral"], o["collateral_spent"], o["collateral_released"],
                      o["fees"], o["avg_price"] or "-")
        if o["reject_reason"]:
            rejected.add_row(key, o["reject_reason"])
    for made in (lives, costs, *([rejected] if rejected.row_count else [])):
        console.print(made)

    batches = table("Batches", "batch", "orders", "asset orders", "fills", "filled units")
    for b in report["batches"]:
        batches.add_row(
            str(b["batch"]), str(len(b["engaged"])),
            "\n".join(f"{a['symbol']} {a['qty']} @ {a['price']} -> {a['executed']} "
                      f"({a['status']})" for a in b["asset_orders"]) or "inventory only",
            str(len(b["fills"])), "\n".join(f"{k}: {u}" for k, u in b["filled"].items()))
    console.print(batches)

    if report["quotes"]:
        quotes = table("Quotes", "index", "collateral", "index price", "units")
        for q in report["quotes"]:
            quotes.add_row(q["index"], q.get("collateral", "-"), q.get("index_price", "-"),
                           q.get("units", q.get("error", "")))
        console.print(quotes)

    accounts = table("Accounts", "account", "asset", "deposited", "available", "reserved",
                     "spent", "fees", "withdrawn")
    for key, a in report["accounts"].items():
        accounts.add_row(key, a["asset"], a["deposited"], a["available"], a["reserved"],
                         a["spent"], a["fees"], a["withdrawn"])
    console.print(accounts)

    inventory = table("Inventory (unassigned)", "asset", "quantity")
    for asset, quantity in report["inventory"].items():
        if Decimal(quantity) != ZERO:
            inventory.add_row(asset, quantity)
    console.print(inventory)

    invariants = report["invariants"]
    if invariants == "ok":
        console.print("[green]invariants: ok[/green]")
    else:
        console.print("[red]invariant violations:[/red]")
        for line in invariants:
            console.print(f"  - {line}")
