"""``index-solver status | snapshot | reconcile | resolve --config CONFIG``: the operator's
commands, over the running service's admin endpoint (``[admin]`` in the deployment file:
127.0.0.1 and its port, the bearer token from the environment variable it names)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console

from solver.config.deployment import load_deployment
from solver.config.fields import ConfigError
from solver.plumbing.tables import NAMES, readable, short, table

EXIT_OK, EXIT_DISAGREES, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 4
TIMEOUT_S = 30
HOST = "127.0.0.1"


def add_commands(commands: Any) -> None:
    described = ("Talks to the running service's admin endpoint ([admin] in the config; the "
                 "bearer token from the variable admin.token_env names). Exit status: 0 ok, "
                 "1 the ledger and the vault disagree, 2 bad config or token refused, 4 the "
                 "service is not reachable.")
    for name, text in (("status", "FIX sessions, orders, batches in flight, last exchange and "
                                  "chain events, held deposits, reconciliation"),
                       ("snapshot", "positions, inventory and collateral, as tables or Parquet"),
                       ("reconcile", "reconcile with the exchange and the chain now; print "
                                     "what changed"),
                       ("resolve", "undo on the ledger a vault event a deep reorganisation "
                                   "took off the chain (status lists them); the account "
                                   "takes orders again")):
        command = commands.add_parser(name, help=text, description=described)
        command.add_argument("--config", type=Path, required=True, help="deployment file")
        command.add_argument("--json", action="store_true", help="print the answer as JSON")
        if name == "resolve":
            command.add_argument("fact_id", help="the vanished deposit, request or payout id")
        if name == "snapshot":
            command.add_argument("--parquet", type=Path, metavar="DIR",
                                 help="write positions, inventory and collateral as Parquet "
                                      "files in DIR")


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        answer = ask(args.config, args.command if args.command != "resolve"
                     else f"resolve/{urllib.parse.quote(args.fact_id, safe='')}")
    except ConfigError as error:
        console.print(f"index-solver {args.command}: {error}", style="red")
        return EXIT_USAGE
    except Unreachable as error:
        console.print(f"index-solver {args.command}: {error}", style="red")
        return EXIT_UNREACHABLE
    if args.json:
        console.print_json(json.dumps(answer))
    elif args.command == "status":
        print_status(answer, console)
    elif args.command == "snapshot":
        print_snapshot(answer, console)
    elif args.command == "resolve":
        return print_resolution(answer, console)
    else:
        print_reconciliation(answer, console)
    if args.command == "snapshot" and args.parquet is not None:
        write_parquet(answer, args.parquet, console)
    return EXIT_DISAGREES if _disagrees(answer) else EXIT_OK


class Unreachable(Exception):
    pass


def ask(config: Path, command: str) -> dict[str, Any]:
    """The admin endpoint's answer to ``command``."""
    admin = load_deployment(config).admin
    if admin is None:
        raise ConfigError(f"{config}: admin: the config has no [admin] section")
    token = os.environ.get(admin.token_env, "")
    if not token:
        raise ConfigError(f"admin.token_env: set {admin.token_env} to the service's admin token")
    request = urllib.request.Request(
        f"http://{HOST}:{admin.port}/{command}",
        method="GET" if command in ("status", "snapshot") else "POST",
        headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise ConfigError(f"the service refused the token in {admin.token_env}") from None
        if error.code == 400:  # the request itself: the service says what is wrong with it
            raise ConfigError(str(json.loads(error.read(2000)).get("error"))) from None
        raise Unreachable(f"the service answered {error.code} {error.reason}: "
                          f"{error.read(500).decode(errors='replace')}") from None
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(f"no service at {HOST}:{admin.port} ({error})") from None
    except ValueError as error:  # not JSON: something else listens on the port
        raise Unreachable(f"{HOST}:{admin.port} did not answer as the service does "
                          f"({error})") from None


# --- printing --------------------------------------------------------------------------------


def print_status(status: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]index-solver status[/] as of transaction {status['transaction']}")
    sessions = ", ".join(f"{s['account']} ({'logged on' if s['logged_on'] else 'away'})"
                         for s in status["fix_sessions"])
    orders = ", ".join(f"{n} {status}" for status, n in status["orders"].items()) or "none"
    batches = status["batches_in_flight"]
    for label, value in (
            ("FIX sessions", sessions or "none configured"), ("Orders", orders),
            ("Batches in flight", f"{len(batches)} {batches}" if batches else "none"),
            ("Planning", _planning(status["planning"])),
            ("Last exchange event", _ago(status["last_exchange_event"])),
            ("Last chain event", _ago(status["last_chain_event"]))):
        console.print(f"{label}: {value}")
    held = status["held_deposits"]
    if held:
        shown = table("Deposits held (wallets no account has)", "wallet", "asset", "amount",
                       "deposits")
        for h in held:
            shown.add_row(h["wallet"], h["asset"], h["amount"], str(len(h["deposit_ids"])))
        console.print(shown)
    else:
        console.print("Deposits held: none")
    vanished = status.get("vanished_facts", [])
    if vanished:
        shown = table("[red]Vault events gone from the chain[/] (index-solver resolve FACT_ID)",
                      "fact", "kind", "account", "wallet", "amount")
        for f in vanished:
            shown.add_row(short(f["fact_id"]), f["kind"], f["account"] or "-",
                          short(f["wallet"]), f"{readable(f['amount'])} {f['asset']}")
        console.print(shown)
    reconciliation = status["reconciliation"]
    console.print(f"Reconciliation with the vault: {reconciliation['state']}")
    _print_checks(reconciliation.get("checks", []), console)


def _planning(planning: dict[str, Any]) -> str:
    if planning["state"] == "planning":
        return "the last plan found a batch"
    state = "STALLED" if planning["state"] == "stalled" else "no batch"
    return (f"{state} for {planning['since']['age_s']} s: {planning['waiting']} order(s) "
            f"waiting, {planning['buyable']} could be bought alone; {planning['reason']}")


def print_snapshot(snapshot: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]index-solver snapshot[/] as of transaction {snapshot['transaction']}")
    for title, rows, columns in (
            ("Positions", snapshot["positions"],
             ("account", "index", "quantity", "cost", "fees")),
            ("Inventory", snapshot["inventory"],
             ("asset", "quantity", "cost", "fees", "realised")),
            ("Collateral", snapshot["collateral"],
             ("account", "asset", "deposited", "available", "reserved", "spent", "withdrawn"))):
        shown = table(title, *columns)
        for row in rows:
            shown.add_row(*(str(row[c]) if c in NAMES else readable(row[c]) for c in columns))
        console.print(shown if rows else f"{title}: none")
    console.print("Amounts to 6 decimals at most; --json gives them whole.")


def print_reconciliation(answer: dict[str, Any], console: Console) -> None:
    facts = answer["exchange"]["facts"]
    console.print(f"Exchange: {len(facts)} fact(s) reported during the forced round")
    for fact in facts:
        console.print("  " + ", ".join(f"{k}={v}" for k, v in fact.items()))
    chain = answer.get("chain")
    if chain is not None:
        console.print(f"Chain: {chain['facts']} fact(s) read from the vault")
        _print_checks(chain["checks"], console)


def print_resolution(answer: dict[str, Any], console: Console) -> int:
    if answer["resolved"]:
        console.print(f"{answer['fact_id']} resolved (transaction {answer['transaction']})")
        return EXIT_OK
    console.print(f"{answer['fact_id']} not resolved: {answer['reason']}", style="red")
    return EXIT_DISAGREES


def write_parquet(snapshot: dict[str, Any], directory: Path, console: Console) -> None:
    import pandas

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("positions", "inventory", "collateral"):
        rows = snapshot[name]
        path = directory / f"{name}.parquet"
        pandas.DataFrame(rows).to_parquet(path, index=False)  # amounts stay decimal strings
        console.print(f"wrote {path} ({len(rows)} rows)", soft_wrap=True)


def _print_checks(checks: list[dict[str, Any]], console: Console) -> None:
    if not checks:
        return
    shown = table(None, "account", "block", "vault", "ledger", "agrees")
    for c in checks:
        shown.add_row(c["account"], str(c["block"]), c["vault"], c["ledger"],
                      "yes" if c["agrees"] else "[red]NO[/]")
    console.print(shown)


def _ago(when: dict[str, Any] | None) -> str:
    return "never" if when is None else f"{when['age_s']} s ago"


def _disagrees(answer: dict[str, Any]) -> bool:
    checks = (answer.get("reconciliation", {}).get("checks", [])
              + answer.get("chain", {}).get("checks", []))
    return any(not c["agrees"] for c in checks)
