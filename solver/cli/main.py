"""``index-solver``: the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from rich.console import Console

from solver.cli import chain as chain_commands
from solver.cli import operator as operator_commands
from solver.config.fields import ConfigError
from solver.journal.recorder import FORMATS
from solver.journal.store import JournalError
from solver.plumbing.logs import LEVELS, configure_logs

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_SCENARIO, EXIT_BAD_JOURNAL = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="index-solver", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"index-solver {package_version('index-solver')}")
    parser.add_argument("--log-level", choices=LEVELS,
                        help="the least level logged (default: info for run, warning else)")
    parser.add_argument("--log-file", type=Path, metavar="PATH",
                        help="append the log there (JSON lines) instead of stderr; on a "
                             "terminal stderr gets readable lines, else JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "simulate", help="run a scenario through the core against a simulated exchange",
        description="Exit status: 0 completed with invariants ok, 1 invariant violations, "
                    "2 bad scenario.")
    sim.add_argument("scenario", type=Path, help="scenario file (.json, .toml or .yaml)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.add_argument("--journal", type=Path, metavar="PATH",
                     help="write every transaction to a new journal at PATH")
    journal = commands.add_parser(
        "journal", help="inspect, export or replay a journal",
        description="Exit status: 0 ok, 1 invariant violations (replay), 3 missing, damaged "
                    "or newer journal.")
    actions = journal.add_subparsers(dest="action", required=True)
    actions.add_parser("inspect", help="summary: size, snapshots, counts by type").add_argument(
        "path", type=Path)
    exporting = actions.add_parser("export", help="orders, fills, lots, allocations and mints "
                                                  "as tables")
    exporting.add_argument("path", type=Path)
    exporting.add_argument("--out", type=Path, required=True, help="directory for the tables")
    exporting.add_argument("--format", choices=FORMATS, default="parquet")
    replaying = actions.add_parser(
        "replay", help="rebuild the state from the journal, verify it, print the report")
    replaying.add_argument("path", type=Path)
    replaying.add_argument("--json", action="store_true", help="print one JSON object")
    demo = commands.add_parser(
        "demo", help="a scenario's users through the whole pipeline: FIX, the mock Binance, "
                     "an embedded chain",
        description="Exit status: 0 every invariant holds and every trade is recorded once, "
                    "1 otherwise, 2 bad scenario.")
    demo.add_argument("scenario", type=Path, nargs="?",
                      default=Path("examples/scenarios/demo.toml"))
    demo.add_argument("--verbose", action="store_true",
                      help="print every FIX report as it arrives (else a table of the orders)")
    checking = commands.add_parser(
        "check", help="verify a deployment without trading: exchange endpoint, keys, markets "
                      "and filters; chain node, chain id, contracts, operator",
        description="Exit status: 0 every check passed, 1 a check failed (each says why), "
                    "2 bad config.")
    checking.add_argument("--config", type=Path, required=True, help="deployment file")
    walk = commands.add_parser(
        "walkthrough", help="one order through the whole pipeline in eight narrated steps, "
                            "with the real messages (docs/walkthrough.md)",
        description="Exit status: 0 done, 2 bad scenario.")
    walk.add_argument("scenario", type=Path, nargs="?",
                      default=Path("examples/scenarios/walkthrough.toml"),
                      help="its first deposit and first order are walked through")
    run = commands.add_parser(
        "run", aliases=["gateway"],
        help="the service: FIX orders in, asset orders to the exchange, settlements on-chain",
        description="Exchange keys come from BINANCE_API_KEY and BINANCE_API_SECRET, the "
                    "chain operator's key as the config says. SIGTERM or SIGINT stops it "
                    "gracefully: new orders refused, work in flight finished (bounded by "
                    "service.shutdown_grace_s), FIX sessions logged out. Exit status: 0 "
                    "stopped by a signal, 2 bad config, missing keys, or a part that cannot "
                    "be reached or does not match (a port taken, the exchange's filters), 3 "
                    "damaged journal.")
    run.add_argument("--config", type=Path, required=True,
                     help="deployment file, e.g. examples/deployment/local.toml")
    chain_commands.add_commands(commands)
    operator_commands.add_commands(commands)
    commands.add_parser(
        "fix-password", help="print the hash of a FIX password for the gateway's config",
        description="Reads the password from FIX_PASSWORD, else asks for it.")
    args = parser.parse_args(argv)
    level = args.log_level or ("info" if args.command in ("run", "gateway") else "warning")
    configure_logs(getattr(logging, level.upper()), args.log_file)
    if args.command == "chain":
        return chain_commands.run(args)
    if args.command in ("status", "snapshot", "reconcile", "resolve"):
        return operator_commands.run(args, Console())
    if args.command in ("run", "gateway"):
        return _run(args.config)
    if args.command == "fix-password":
        return _fix_password()
    if args.command == "journal":
        return _journal(args)
    if args.command == "demo":
        return _demo(args.scenario, args.verbose)
    if args.command == "walkthrough":
        return _walkthrough(args.scenario)
    if args.command == "check":
        return _check(args.config)
    return _simulate(args.scenario, args.json, args.journal)


def _simulate(path: Path, as_json: bool, journal_path: Path | None) -> int:
    from solver.journal.store import Journal
    from solver.simulation.report import build_report
    from solver.simulation.run import setup_of, simulate
    from solver.simulation.scenario import load_scenario

    try:
        scenario = load_scenario(path)
    except ConfigError as error:
        print(f"index-solver simulate: bad scenario: {error}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    journal = None
    if journal_path is not None:
        try:
            journal = Journal.create(journal_path, setup_of(scenario))
        except JournalError as error:
            print(f"index-solver simulate: {error}", file=sys.stderr)
            return EXIT_BAD_SCENARIO
    try:
        report = build_report(simulate(scenario, journal=journal))
    finally:
        if journal is not None:
            journal.close()
    _print(report, as_json)
    return EXIT_OK if report["invariants"] == "ok" else EXIT_VIOLATIONS


def _demo(path: Path, verbose: bool) -> int:
    from solver import demo  # starts the mock exchange: only this command needs it

    return _narrated("demo", lambda p, console: demo.main(p, console, verbose), path)


def _check(path: Path) -> int:
    import asyncio

    from rich.markup import escape

    from solver.config.deployment import load_deployment
    from solver.plumbing.tables import table
    from solver.service.check import check

    try:
        deployment = load_deployment(path)
    except ConfigError as error:
        print(f"index-solver check: {error}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    findings = asyncio.run(check(deployment))
    # each finding's detail on its own line below its name: an address or a URL has the
    # table's whole width, so it is never cut at 80 columns
    shown = table(f"index-solver check {path}", "check", "ok", left={"check", "ok"})
    for finding in findings:
        shown.add_row(f"{escape(finding.what)}\n  [dim]{escape(finding.detail)}[/]",
                      "ok" if finding.ok else "[red]FAILED[/]")
    Console().print(shown)
    return EXIT_OK if all(f.ok for f in findings) else EXIT_VIOLATIONS


def _walkthrough(path: Path) -> int:
    from solver import walkthrough  # starts the mock exchange and the chain

    return _narrated("walkthrough", walkthrough.main, path)


def _narrated(command: str, run: Callable[[Path, Console], int], path: Path) -> int:
    """A command that runs a scenario on the whole local stack, telling a person as it goes."""
    try:
        return run(path, Console())
    except ConfigError as error:
        print(f"index-solver {command}: bad scenario: {error}", file=sys.stderr)
        return EXIT_BAD_SCENARIO


def _run(path: Path) -> int:
    import asyncio

    from solver.config.deployment import load_deployment
    from solver.service.process import (
        CannotStart,
        serve,  # QuickFIX loads with the service only
    )

    try:
        deployment = load_deployment(path)
        asyncio.run(serve(deployment))
    except (ConfigError, ValueError, CannotStart) as error:
        print(f"index-solver run: {error}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    except JournalError as error:
        print(f"index-solver run: {error}", file=sys.stderr)
        return EXIT_BAD_JOURNAL
    return EXIT_OK


def _fix_password() -> int:
    import getpass

    from fix_gateway.passwords import hash_password

    password = os.environ.get("FIX_PASSWORD") or getpass.getpass("FIX password: ")
    if not password:
        print("index-solver fix-password: empty password", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    print(hash_password(password))
    return EXIT_OK


def _journal(args: argparse.Namespace) -> int:
    from solver.cli import journal as journal_commands

    console = Console()
    try:
        if args.action == "inspect":
            return journal_commands.inspect(args.path, console)
        if args.action == "export":
            return journal_commands.export(args.path, args.out, args.format, console)
        return journal_commands.replay(args.path, args.json, console)
    except JournalError as error:
        return journal_commands.bad_journal(error)


def _print(report: dict[str, Any], as_json: bool) -> None:
    from solver.simulation.report import print_report

    try:
        if as_json:
            json.dump(report, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print_report(report, Console())
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (e.g. `head`) has gone: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
