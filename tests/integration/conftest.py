"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.contracts import Chain, shared_chain


@pytest.fixture
def c() -> Iterator[Chain]:
    """The vault's chain (``tests/support/contracts.py``): one shared deployment, rolled back
    to its base state before each test."""
    chain = shared_chain()
    chain.tester().revert_to_snapshot(chain.base)
    yield chain
