"""``index-solver journal inspect|export|replay PATH``: looking into a journal from a shell."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from solver.journal.recorder import Recorder
from solver.journal.replay import rebuild
from solver.journal.store import SCHEMA_VERSION, Journal, JournalError
from solver.simulation.report import build_report, print_report
from solver.simulation.run import SimulationResult, audit

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_JOURNAL = 0, 1, 3


def inspect(path: Path, console: Console) -> int:
    with _opened(path) as journal:
        counts = journal.count_by_type()
        summary = Table(title=f"Journal {path}", show_header=False)
        for name, value in [
            ("schema version", f"{SCHEMA_VERSION}"),
            ("created", _time(journal.created_ts)),
            ("transactions", f"{journal.last_number:,}"),
            ("events", f"{journal.last_seq:,}"),
            ("indexes", ", ".join(i.symbol for i in journal.setup.indexes)),
            ("client order prefix", journal.setup.client_order_prefix),
            ("snapshots", ", ".join(f"#{n} ({size:,} bytes)"
                                    for n, _, size in journal.snapshots()) or "none"),
        ]:
            summary.add_row(name, value)
        console.print(summary)
        kinds = Table(title="Inputs and events by type")
        kinds.add_column("type")
        kinds.add_column("count", justify="right")
        for kind, count in sorted(counts.items()):
            kinds.add_row(kind, f"{count:,}")
        console.print(kinds)
    return EXIT_OK


def export(path: Path, out: Path, fmt: str, console: Console) -> int:
    with _opened(path) as journal:
        recorder = Recorder()
        for transaction in journal.transactions():
            recorder.record_all(transaction.events)
        for written in recorder.write(out, fmt):
            console.print(f"wrote {written}")
    return EXIT_OK


def replay(path: Path, as_json: bool, console: Console) -> int:
    """Rebuild the engine from the journal's inputs alone, check that it reproduces every
    journaled event and the invariants, and print the simulate report of the final state."""
    with _opened(path) as journal, _progress("replaying", path, journal.last_number) as advance:
        replayed = rebuild(journal, use_snapshot=False, keep=True, progress=advance)
    result = SimulationResult(replayed.engine, replayed.transactions,
                              audit(replayed.engine, replayed.transactions))
    report = build_report(result)
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report, console)
    return EXIT_OK if report["invariants"] == "ok" else EXIT_VIOLATIONS


@contextmanager
def _opened(path: Path) -> Iterator[Journal]:
    """The journal, verified row by row first (with a progress bar)."""
    with _progress("checking", path) as advance:
        journal = Journal.open(path, progress=advance, readonly=True)
    try:
        yield journal
    finally:
        journal.close()


@contextmanager
def _progress(verb: str, path: Path,
              total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long journals (rich hides it when stderr is no terminal)."""
    bar = Progress(TextColumn(f"{verb} {path.name}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(verb, total=total)
        yield lambda done: bar.update(task, completed=done)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms else "-"


def bad_journal(error: JournalError) -> int:
    print(f"index-solver journal: {error}", file=sys.stderr)
    return EXIT_BAD_JOURNAL
