"""What ``ops/`` ships for running the service: the systemd unit restarts on failure, takes
its secrets from an environment file, and waits longer than the service's graceful stop."""

from __future__ import annotations

import configparser
from pathlib import Path

from solver.config.deployment import ServiceSettings

ROOT = Path(__file__).parent.parent.parent


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string((ROOT / "ops" / "systemd" / "index-solver.service").read_text())
    return parser


def test_the_systemd_unit_restarts_stops_gracefully_and_reads_secrets_from_a_file() -> None:
    service = unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    grace = ServiceSettings.__dataclass_fields__["shutdown_grace_s"].default
    assert int(service["TimeoutStopSec"]) > grace  # the graceful stop ends before a kill
    assert service["EnvironmentFile"].startswith("/etc/")
    assert " run --config " in service["ExecStart"]
    assert "Environment" not in service  # no secret in the unit itself
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
