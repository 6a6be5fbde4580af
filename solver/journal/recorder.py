"""The recorder: orders, fills, lots, allocations (per lot) and mints as tables, for analysis.

It is a bus consumer: it turns events into rows as they are published, and writes the tables as
Parquet (or CSV) on request or on a timer. The same tables come out of a journal with
``index-solver journal export``, which replays the journal's events through a recorder.

Amounts are exact decimal strings (Parquet strings), never floats: convert with ``Decimal`` or,
accepting float rounding, ``pandas.to_numeric``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.money import plain

if TYPE_CHECKING:  # pandas loads when tables are written, not with every command
    import pandas as pd

TABLES = ("orders", "fills", "lots", "allocations", "mints")
FORMATS = ("parquet", "csv")

Rows = list[dict[str, Any]]


class Recorder:
    def __init__(self) -> None:
        self._orders: dict[int, dict[str, Any]] = {}
        self._tables: dict[str, Rows] = {name: [] for name in TABLES if name != "orders"}

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(ev.Event, self.record)

    def record(self, envelope: ev.Envelope[ev.Event]) -> None:
        handler = _HANDLERS.get(type(envelope.event))
        if handler is not None:
            handler(self, envelope.seq, envelope.ts, envelope.event)

    def record_all(self, envelopes: Iterable[ev.Envelope[ev.Event]]) -> None:
        for envelope in envelopes:
            self.record(envelope)

    # --- tables ----------------------------------------------------------------------------

    def frames(self) -> dict[str, pd.DataFrame]:
        rows = {"orders": list(self._orders.values()), **self._tables}
        import pandas as pd

        return {name: pd.DataFrame(rows[name], columns=list(_COLUMNS[name]), dtype="string")
                for name in TABLES}

    def write(self, directory: Path, fmt: str = "parquet") -> list[Path]:
        """Every table as ``directory/<table>.<fmt>``; returns the paths written."""
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in self.frames().items():
            path = directory / f"{name}.{fmt}"
            partial = path.with_suffix(f".{fmt}.partial")  # readers never see half a file
            if fmt == "parquet":
                frame.to_parquet(partial, index=False)
            else:
                frame.to_csv(partial, index=False)
            partial.replace(path)
            written.append(path)
        return written

    async def write_every(self, seconds: float, directory: Path, fmt: str = "parquet") -> None:
        """Rewrite the tables every ``seconds`` until cancelled (run beside the writer task)."""
        while True:
            await asyncio.sleep(seconds)
            self.write(directory, fmt)

    # --- events ----------------------------------------------------------------------------

    def _accepted(self, seq: int, ts: int, e: ev.IndexOrderAccepted) -> None:
        self._orders[e.order_id] = {
            "order_id": str(e.order_id), "account": e.account,
            "client_order_id": e.client_order_id, "index": e.index,
            "collateral": plain(e.collateral), "accepted_ts": str(ts), "status": "open",
            "filled_units": "0", "spent": "0", "released": "0", "minted_units": "0",
            "mint_tx": None}

    def _order(self, order_id: int) -> dict[str, Any]:
        """The order's row; a placeholder if it was accepted before the recorder attached."""
        return self._orders.setdefault(order_id, {"order_id": str(order_id)})

    def _reduced(self, seq: int, ts: int, e: ev.IndexOrderReduced) -> None:
        self._order(e.order_id)["collateral"] = plain(e.collateral)

    def _completed(self, seq: int, ts: int, e: ev.IndexOrderCompleted) -> None:
        self._order(e.order_id).update(status=e.status.value,
                                        filled_units=plain(e.filled_units),
                                        spent=plain(e.spent), released=plain(e.released))

    def _filled(self, seq: int, ts: int, e: ev.IndexOrderFilled) -> None:
        self._tables["fills"].append({
            "seq": str(seq), "ts": str(ts), "order_id": str(e.order_id),
            "batch_id": str(e.batch_id), "units": plain(e.units), "price": plain(e.price),
            "cost": plain(e.cost), "fees": plain(e.fees), "filled_units": plain(e.filled_units),
            "spent": plain(e.spent), "remaining": plain(e.remaining)})
        self._order(e.order_id).update(filled_units=plain(e.filled_units), spent=plain(e.spent))

    def _settled(self, seq: int, ts: int, e: ev.BatchSettled) -> None:
        self._tables["allocations"] += [
            {"seq": str(seq), "batch_id": str(e.batch_id), "lot_id": a.lot_id,
             "order_id": str(a.order_id), "quantity": plain(a.quantity)}
            for a in e.assignments]

    def _lot(self, seq: int, ts: int, e: ev.LotOpened) -> None:
        self._tables["lots"].append({
            "seq": str(seq), "ts": str(ts), "lot_id": e.lot_id, "asset": e.asset,
            "asset_order_id": str(e.asset_order_id), "batch_id": str(e.batch_id),
            "price": plain(e.price), "quantity": plain(e.quantity), "fee": plain(e.fee)})

    def _mint(self, seq: int, ts: int, e: ev.Event) -> None:
        row = {"seq": str(seq), "ts": str(ts), "event": type(e).__name__,
               "order_id": str(getattr(e, "order_id", "")), "units": None, "attempt": None,
               "tx_hash": None, "reason": None}
        for name in ("units", "attempt", "tx_hash", "reason"):
            value = getattr(e, name, None)
            if value is not None:
                row[name] = plain(value) if name == "units" else str(value)
        self._tables["mints"].append(row)
        if isinstance(e, ev.IndexOrderMinted):
            self._order(e.order_id).update(minted_units=plain(e.units), mint_tx=e.tx_hash)


_HANDLERS: dict[type[ev.Event], Any] = {
    ev.IndexOrderAccepted: Recorder._accepted,
    ev.IndexOrderReduced: Recorder._reduced,
    ev.IndexOrderCompleted: Recorder._completed,
    ev.IndexOrderFilled: Recorder._filled,
    ev.LotOpened: Recorder._lot,
    ev.BatchSettled: Recorder._settled,
    ev.MintRequested: Recorder._mint,
    ev.MintRetryRequested: Recorder._mint,
    ev.MintRetryScheduled: Recorder._mint,
    ev.IndexOrderMinted: Recorder._mint,
    ev.IndexOrderMintRefused: Recorder._mint,
}

_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("order_id", "account", "client_order_id", "index", "collateral", "accepted_ts",
               "status", "filled_units", "spent", "released", "minted_units", "mint_tx"),
    "fills": ("seq", "ts", "order_id", "batch_id", "units", "price", "cost", "fees",
              "filled_units", "spent", "remaining"),
    "lots": ("seq", "ts", "lot_id", "asset", "asset_order_id", "batch_id", "price", "quantity",
             "fee"),
    "allocations": ("seq", "batch_id", "lot_id", "order_id", "quantity"),
    "mints": ("seq", "ts", "event", "order_id", "units", "attempt", "tx_hash", "reason"),
}
