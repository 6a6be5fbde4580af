"""The reports a refused mint makes: the order restated with nothing filled, and the
collateral it had spent reported available again (``fix_gateway/reports.py`` on the engine's
own transaction)."""

from fix_gateway.reports import ReportMaker
from solver.core import events as ev
from solver.core.commands import CancelIndexOrder, MintRefused
from tests.support.builders import index
from tests.unit.engine_steps import events_of, fill_all
from tests.unit.test_signed_orders import signed_desk, terms


def test_a_refused_mint_is_restated_to_the_client_and_its_collateral_reported():
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    fill_all(d, [e for e in events_of(d.plan()) if isinstance(e, ev.AssetOrderRequested)])
    [mint] = [e for e in events_of(d.apply(CancelIndexOrder, "alice", "o1", "c1"))
              if isinstance(e, ev.MintRequested)]
    refused = d.apply(MintRefused, mint.order_id, 1, "the vault refused the settlement: expired")
    (_, restated), (_, collateral) = ReportMaker({"SY2": index()}, 31337).reports(refused)
    fields = dict(restated.fields)
    assert (restated.msg_type, fields[150], fields[39], fields[378]) == ("8", "D", "4", "99")
    assert (fields[14], fields[20011]) == ("0", "0")  # CumQty, CumCashQty: nothing filled now
    assert "refused the settlement for good" in fields[58] and "expired" in fields[58]
    assert collateral.msg_type == "BA" and "refused order o1's settlement" in dict(
        collateral.fields)[58]
