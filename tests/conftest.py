"""Shared test configuration and fixtures.

The tests are by level: ``unit`` (pure code: the core and the adapters' logic, no QuickFIX,
no network, no files), ``integration`` (one part against a real counterpart: the journal on
SQLite, the connector against the mock Binance over loopback, the simplefix client against a
QuickFIX acceptor, the command line), ``e2e`` (the whole service over its real protocols).
``support`` holds what several use: builders of core objects, the mock exchange's clients, the
service on free loopback ports. No test imports another test module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import Phase, settings

ROOT = Path(__file__).parent.parent

# mutmut's run on the core (docs/mutation.md) sets MUTANT_UNDER_TEST: there the property tests
# run the "mutation" profile's few examples and do not shrink a failure (a mutant is caught by
# any failing example), so that the run fits its time. `make test` and CI run them all.
settings.register_profile("mutation", max_examples=10,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
if "MUTANT_UNDER_TEST" in os.environ:
    settings.load_profile("mutation")


@pytest.fixture
def examples_dir() -> Path:
    """The repository's ``examples/``: scenarios, markets, index files, deployments."""
    return ROOT / "examples"


@pytest.fixture
def journal_fixtures() -> Path:
    """Journals written by earlier code, with the reports they must replay to."""
    return ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """Commands run in-process (the demo, the CLI) configure structlog for their process; the
    next test must see the run's configuration again (its ``capture_logs`` included)."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)
