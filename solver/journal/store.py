"""The journal: every transaction the engine made, durable before anyone acts on it.

An SQLite database in WAL mode with ``synchronous=FULL``, so a commit returns only once it is on
disk. One row per transaction holds its input and its events as exact JSON, with a CRC32 over
the row, so that damage is found and located. Rows are buffered by ``append`` and written by
``commit`` in one SQLite transaction: one fsync for however many engine transactions arrived
meanwhile (group commit).

Schema (``PRAGMA user_version`` = ``SCHEMA_VERSION``), documented in docs/journal.md:

- ``meta(key, value)``: ``setup`` (the engine's configuration as JSON), ``setup_crc``,
  ``created_ts``.
- ``transactions(number, ts, last_seq, input, events, crc)``: ``number`` counts from 1 without
  gaps; the events carry sequence numbers ``last_seq - len(events) + 1 .. last_seq``.
- ``snapshots(number, state_version, state, sha256)``: the engine's state after transaction
  ``number``; a cache that bounds restart time, never the source of truth.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from solver.core.events import Envelope, Transaction
from solver.core.setup import EngineSetup
from solver.journal import codec

SCHEMA_VERSION = 2
SNAPSHOTS_KEPT = 2

# MIGRATIONS[n] takes a journal from schema version n to n + 1. Never edit a shipped step: add
# one, and bump SCHEMA_VERSION.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE transactions (
            number INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            input TEXT NOT NULL,
            events TEXT NOT NULL,
            crc INTEGER NOT NULL)""",
        """CREATE TABLE snapshots (
            number INTEGER PRIMARY KEY,
            state_version INTEGER NOT NULL,
            state BLOB NOT NULL,
            sha256 TEXT NOT NULL)""",
    ),
    (
        # What an adapter must keep with the journal: the chain watcher's cursor, the
        # settler's jobs (written before the transaction they describe is sent).
        "CREATE TABLE adapter_records (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)


class JournalError(Exception):
    """A journal that cannot be used as it is; the message says why and what to do."""


class JournalCorrupt(JournalError):
    def __init__(self, path: Path, last_good_seq: int, last_good_number: int, detail: str):
        super().__init__(
            f"journal {path} is damaged after event sequence number {last_good_seq} "
            f"(transaction {last_good_number}): {detail}. The service will not start on it; "
            f"restore it from a backup or inspect it with `index-solver journal inspect`.")
        self.path = path
        self.last_good_seq = last_good_seq
        self.last_good_number = last_good_number


@dataclass(frozen=True, slots=True)
class Row:
    """A transaction as stored: its input and events still as JSON text."""

    number: int
    ts: int
    last_seq: int
    input: str
    events: str

    @property
    def crc(self) -> int:
        return zlib.crc32(f"{self.number}|{self.ts}|{self.last_seq}|{self.input}|"
                          f"{self.events}".encode())

    def transaction(self) -> Transaction:
        decoded = [codec.decode_event(e) for e in json.loads(self.events)]
        first = self.last_seq - len(decoded) + 1
        return Transaction(self.number, self.ts, codec.decode_input(json.loads(self.input)),
                           tuple(Envelope(first + n, self.ts, e) for n, e in enumerate(decoded)))

    @classmethod
    def of(cls, transaction: Transaction, last_seq: int) -> Row:
        return cls(transaction.number, transaction.ts, last_seq,
                   codec.dumps(codec.encode_tagged(transaction.input)),
                   codec.dumps([codec.encode_tagged(e.event) for e in transaction.events]))


@dataclass(frozen=True, slots=True)
class Snapshot:
    number: int
    state_version: int
    state: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    """What a scan of the whole journal found."""

    transactions: int
    last_seq: int


Progress = Callable[[int], None]
"""Called with the number of transactions scanned so far."""


class Journal:
    """Open with ``Journal.create`` or ``Journal.open``; close when done (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._pending: list[Row] = []
        setup = self._meta("setup")
        if str(zlib.crc32(setup.encode())) != self._meta("setup_crc"):
            raise ValueError("the stored setup fails its checksum")
        self.setup = codec.decode(EngineSetup, json.loads(setup))
        last = self._db.execute(
            "SELECT number, last_seq FROM transactions ORDER BY number DESC LIMIT 1").fetchone()
        self.last_number: int = last[0] if last else 0
        self.last_seq: int = last[1] if last else 0

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, setup: EngineSetup, created_ts: int = 0) -> Journal:
        """A new, empty journal for an engine built from ``setup``."""
        if path.exists():
            raise JournalError(f"journal {path} already exists; choose a new path")
        text = codec.dumps(codec.encode(setup))
        try:
            db = _connect(path)
            with _transaction(db):
                _migrate(db, 0)
                db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("setup", text), ("setup_crc", str(zlib.crc32(text.encode()))),
                    ("created_ts", str(created_ts))])
        except sqlite3.Error as error:
            raise JournalError(f"cannot create journal {path}: {error}") from None
        return cls(path, db)

    @classmethod
    def open(cls, path: Path, *, verify: bool = True, progress: Progress | None = None,
             readonly: bool = False) -> Journal:
        """An existing journal, migrated to this schema and (by default) checked row by row.
        ``readonly`` never writes to the file (and refuses a journal that needs migrating).

        Raises ``JournalError`` for a file that is no journal or one written by a newer solver,
        and ``JournalCorrupt``, naming the last good sequence number, for a damaged one.
        """
        if not path.is_file():
            raise JournalError(f"no journal at {path}")
        try:
            db = _connect(path, readonly)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise JournalCorrupt(path, 0, 0, f"not a readable SQLite database ({error})") from None
        refusal = _refusal(path, version, readonly)
        if refusal:
            db.close()
            raise JournalError(refusal)
        try:
            if version < SCHEMA_VERSION:
                with _transaction(db):
                    _migrate(db, version)
            journal = cls(path, db)
        except (sqlite3.DatabaseError, codec.CodecError, KeyError, ValueError) as error:
            db.close()
            raise JournalCorrupt(path, 0, 0, f"unreadable header ({error})") from None
        if verify:
            try:
                journal.verify(progress)
            except JournalCorrupt:
                journal.close()
                raise
        return journal

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------

    def append(self, transaction: Transaction) -> None:
        """Buffer one transaction; it is durable once ``commit`` returns."""
        expected = self.last_number + len(self._pending) + 1
        if transaction.number != expected:
            raise JournalError(f"transaction {transaction.number} out of order: the journal "
                               f"expects {expected}")
        last_seq = transaction.events[-1].seq if transaction.events else self._pending_last_seq()
        self._pending.append(Row.of(transaction, last_seq))

    def commit(self) -> int:
        """Write every buffered transaction with one fsync; returns how many were written."""
        rows = self._pending
        if not rows:
            return 0
        with _transaction(self._db):  # on failure the rows stay buffered for a retry
            self._db.executemany(
                "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)",
                [(r.number, r.ts, r.last_seq, r.input, r.events, r.crc) for r in rows])
        self._pending = []
        self.last_number, self.last_seq = rows[-1].number, rows[-1].last_seq
        return len(rows)

    def _pending_last_seq(self) -> int:
        return self._pending[-1].last_seq if self._pending else self.last_seq

    def save_snapshot(self, number: int, state_version: int, state: bytes) -> None:
        """Store the state after transaction ``number``; older snapshots beyond the newest
        ``SNAPSHOTS_KEPT`` are dropped (the journal's rows remain the truth)."""
        digest = hashlib.sha256(state).hexdigest()
        with _transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                             (number, state_version, state, digest))
            self._db.execute(
                "DELETE FROM snapshots WHERE number NOT IN "
                "(SELECT number FROM snapshots ORDER BY number DESC LIMIT ?)", (SNAPSHOTS_KEPT,))

    # --- reading ---------------------------------------------------------------------------

    def rows(self, after: int = 0) -> Iterator[Row]:
        """Stored transactions numbered above ``after``, in order."""
        cursor = self._db.execute(
            "SELECT number, ts, last_seq, input, events FROM transactions WHERE number > ? "
            "ORDER BY number", (after,))
        for values in cursor:
            yield Row(*values)

    def transactions(self, after: int = 0) -> Iterator[Transaction]:
        for row in self.rows(after):
            yield row.transaction()

    def transactions_since(self, seq: int) -> Iterator[Transaction]:
        """Stored transactions with events after event ``seq``, in order (for consumers that
        catch up after a restart). Numbers and sequence numbers both only grow, so the first
        one is found by bisection."""
        low, high = 0, self._last_number()
        while low < high:  # the last transaction whose events all precede seq + 1
            middle = (low + high + 1) // 2
            if self._last_seq_of(middle) <= seq:
                low = middle
            else:
                high = middle - 1
        return self.transactions(after=low)

    def _last_number(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(number), 0) FROM transactions")
                   .fetchone()[0])

    def _last_seq_of(self, number: int) -> int:
        row = self._db.execute("SELECT last_seq FROM transactions WHERE number = ?",
                               (number,)).fetchone()
        return 0 if row is None else int(row[0])

    def intact_snapshots(self, state_version: int) -> Iterator[Snapshot]:
        """Snapshots of this state version that pass their checksum, newest first."""
        cursor = self._db.execute(
            "SELECT number, state, sha256 FROM snapshots WHERE state_version = ? AND number <= ? "
            "ORDER BY number DESC", (state_version, self.last_number))
        for number, state, digest in cursor.fetchall():
            if hashlib.sha256(state).hexdigest() == digest:
                yield Snapshot(number, state_version, bytes(state))

    def snapshots(self) -> list[tuple[int, int, int]]:
        """(number, state version, size in bytes) of every snapshot."""
        return list(self._db.execute(
            "SELECT number, state_version, length(state) FROM snapshots ORDER BY number"))

    def verify(self, progress: Progress | None = None) -> Verified:
        """Check every row's CRC and the numbering, then SQLite's own structure; raise
        ``JournalCorrupt`` at the first fault, naming the last good row."""
        number = seq = 0
        try:
            cursor = self._db.execute(
                "SELECT number, ts, last_seq, input, events, crc FROM transactions "
                "ORDER BY number")
            for values in cursor:
                row, crc = Row(*values[:5]), values[5]
                if row.number != number + 1 or row.last_seq < seq or row.crc != crc:
                    raise JournalCorrupt(self.path, seq, number,
                                         f"transaction {row.number} fails its checksum "
                                         "or breaks the numbering")
                number, seq = row.number, row.last_seq
                if progress and number % 10_000 == 0:
                    progress(number)
            check = self._db.execute("PRAGMA quick_check").fetchall()
            newest = self._db.execute("SELECT max(number) FROM snapshots").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise JournalCorrupt(self.path, seq, number, f"SQLite: {error}") from None
        if check != [("ok",)]:
            detail = "; ".join(str(c[0]) for c in check[:3])
            raise JournalCorrupt(self.path, seq, number, f"SQLite integrity check: {detail}")
        if newest is not None and newest > number:
            raise JournalCorrupt(self.path, seq, number, f"a snapshot of transaction {newest} "
                                 "shows that committed transactions are missing")
        if progress:
            progress(number)
        return Verified(number, seq)

    def count_by_type(self) -> dict[str, int]:
        """How many of each input and event type the journal holds."""
        counts: dict[str, int] = {}
        for row in self.rows():
            for item in [json.loads(row.input), *json.loads(row.events)]:
                kind = item[codec.TYPE_KEY]
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    # --- adapters' records ---------------------------------------------------------------

    def record(self, key: str) -> str | None:
        """An adapter's record (JSON text), if it wrote one."""
        found = self._db.execute("SELECT value FROM adapter_records WHERE key = ?",
                                 (key,)).fetchone()
        return None if found is None else str(found[0])

    def records(self, prefix: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._db.execute(
            "SELECT key, value FROM adapter_records WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + "\uffff"))}

    def save_record(self, key: str, value: str) -> None:
        """Write an adapter's record durably now (its own fsync), apart from the
        transactions: they stay buffered until the writer commits them."""
        with _transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO adapter_records VALUES (?, ?)",
                             (key, value))

    def save_records(self, values: Mapping[str, str]) -> None:
        """Write several adapter records durably now, with one fsync."""
        with _transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO adapter_records VALUES (?, ?)",
                                 values.items())

    def forget_record(self, key: str) -> None:
        with _transaction(self._db):
            self._db.execute("DELETE FROM adapter_records WHERE key = ?", (key,))

    def forget_records(self, keys: Iterable[str]) -> None:
        with _transaction(self._db):
            self._db.executemany("DELETE FROM adapter_records WHERE key = ?",
                                 ((k,) for k in keys))

    def _meta(self, key: str) -> str:
        found = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if found is None:
            raise KeyError(f"meta {key} missing")
        return str(found[0])

    @property
    def created_ts(self) -> int:
        return int(self._meta("created_ts"))


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None, check_same_thread=False)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # in WAL mode: fsync the log on every commit
    return db


def _refusal(path: Path, version: int, readonly: bool) -> str | None:
    """Why a file with this schema version cannot be opened, if it cannot."""
    if version == 0:
        return f"{path} is not a journal (an SQLite file without a journal schema)"
    if version > SCHEMA_VERSION:
        return (f"journal {path} has schema version {version}, newer than this solver's "
                f"{SCHEMA_VERSION}: it was written by a newer release; run that release or "
                f"a later one")
    if readonly and version < SCHEMA_VERSION:
        return (f"journal {path} has schema version {version}; this solver migrates it to "
                f"{SCHEMA_VERSION} when the service opens it (reading it here would not)")
    return None


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One SQLite transaction: all of it is written, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection, version: int) -> None:
    for step in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {step + 1}")
