"""Steps of the engine's tests: an asset order's fills and end, the events so far."""



from solver.core import events as ev
from solver.core.commands import (
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
)
from tests.support.builders import D, Desk, desk, market, params


def fill(d: Desk, request: ev.AssetOrderRequested, quantity: str, price: str | None = None,
         trade: str | None = None, commission: str = "0", asset: str = "USDC") -> None:
    d.apply(AssetOrderFilled, request.asset_order_id, trade or f"t{d.now}",
            D(price) if price else request.price, D(quantity), D(commission), asset)


def end(d: Desk, request: ev.AssetOrderRequested, executed: str,
        outcome: AssetOrderOutcome = AssetOrderOutcome.EXPIRED) -> ev.Transaction:
    return d.apply(AssetOrderEnded, request.asset_order_id, outcome, D(executed))


def fill_all(d: Desk, requests: list[ev.AssetOrderRequested]) -> list[ev.Transaction]:
    done = []
    for r in requests:
        fill(d, r, str(r.quantity))
        done.append(end(d, r, str(r.quantity), AssetOrderOutcome.FILLED))
    return done


def all_events(d: Desk) -> list[ev.Event]:
    return [e.event for t in d.transactions for e in t.events]


def filtered_desk(**param_values: object) -> Desk:
    """SY2 (8 A1 + 1 A2) on markets with Binance-like filters, at most 1000 USDC per order per
    batch. The index's smallest tradable quantity is 0.03 units: A2's 5 USDC minimum notional
    at 200 is 0.025 A2, up to its 0.01 step 0.03 (A1 needs only 0.05 A1, 0.00625 units); at
    the index price of 1000 it costs 30 USDC."""
    markets = [market("A1", ("100", "1000"), min_qty="0.001", min_notional="5"),
               market("A2", ("200", "1000"), step="0.01", min_qty="0.01", min_notional="5")]
    return desk(markets=markets,
                solver_params=params(max_order_notional=D(1000), **param_values))


def events_of(t: ev.Transaction) -> list[ev.Event]:
    return [e.event for e in t.events]
