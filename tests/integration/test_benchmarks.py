"""Every benchmark with a size runs at a small one, so that a change cannot leave one broken
until the next person measures: the run ends well and prints its figures. What they measure
is in docs/performance.md; nothing here times anything. Not here: the benchmarks without a
size (``plan_batch.py``, ``allocate.py``, ...), which the core's tests exercise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

SMALL_RUNS = {
    "latency.py": ["--orders", "20"],
    "fix_gateway.py": ["--orders", "20", "--burst", "50"],
    "exchange.py": ["--orders", "20", "--burst", "20"],
    "chain.py": ["--n", "5"],
    "settle_gas.py": ["--sizes", "2"],
    "settle_rate.py": ["--rate", "20", "--seconds", "1", "--users", "2"],
    "sustained.py": ["--seconds", "5", "--rate", "5", "--users", "2"],
    "withdrawal.py": ["--runs", "1", "--orders", "3"],
}


@pytest.mark.parametrize("script", sorted(SMALL_RUNS))
def test_the_benchmark_runs_and_prints_its_figures(script: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script),
                           *SMALL_RUNS[script]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(ch.isdigit() for ch in done.stdout), done.stdout
