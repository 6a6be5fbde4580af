"""Logs by the conventions: JSON lines for services and files, readable lines on a terminal,
the level chosen on the command line, and ``--version``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import structlog

from solver.plumbing.logs import configure_logs

ROOT = Path(__file__).parent.parent.parent


def test_a_log_file_gets_json_lines_at_the_level_asked(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    try:
        configure_logs(logging.WARNING, path)
        log = structlog.get_logger("t")
        log.info("not this one")
        log.warning("asset order rejected", client_order_id="ixs-1")
        [line] = path.read_text().splitlines()
        record = json.loads(line)
        assert (record["event"], record["level"], record["client_order_id"]) == (
            "asset order rejected", "warning", "ixs-1")
        assert record["timestamp"].endswith("Z")
    finally:
        configure_logs(logging.INFO, as_json=True)


def test_readable_lines_when_not_json(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    configure_logs(logging.INFO, path, as_json=False)
    structlog.get_logger("t").info("serving", fix_port=15003)
    text = path.read_text()
    assert "serving" in text and "fix_port=15003" in text and not text.startswith("{")
    configure_logs(logging.INFO, as_json=True)


def test_the_command_line_says_its_version_and_takes_a_level_and_a_file(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "solver.cli", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("index-solver 0.")
    log = tmp_path / "run.log"
    done = cli("--log-level", "debug", "--log-file", str(log), "simulate",
               "examples/scenarios/basic.toml", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["invariants"]  # the report alone on stdout
    refused = cli("--log-level", "loud", "simulate", "examples/scenarios/basic.toml")
    assert refused.returncode == 2 and "invalid choice: 'loud'" in refused.stderr
