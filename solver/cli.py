"""``index-solver``: the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from solver.simulation.report import build_report, print_report
from solver.simulation.run import simulate
from solver.simulation.scenario import ScenarioError, load_scenario

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_SCENARIO = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="index-solver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "simulate", help="run a scenario through the core against a simulated exchange",
        description="Exit status: 0 completed with invariants ok, 1 invariant violations, "
                    "2 bad scenario.")
    sim.add_argument("scenario", type=Path, help="scenario file (.json, .toml or .yaml)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    return _simulate(args.scenario, args.json)


def _simulate(path: Path, as_json: bool) -> int:
    try:
        scenario = load_scenario(path)
    except ScenarioError as error:
        print(f"index-solver simulate: bad scenario: {error}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    report = build_report(simulate(scenario))
    try:
        if as_json:
            json.dump(report, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print_report(report, Console())
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (e.g. `head`) has gone: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK if report["invariants"] == "ok" else EXIT_VIOLATIONS


if __name__ == "__main__":
    sys.exit(main())
