"""``index-solver simulate``: the report contract, the three file formats and exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from solver.cli.main import main
from solver.core.commands import BookUpdated, PlanBatch, SubmitIndexOrder
from solver.core.events import AssetOrderRequested
from solver.simulation import run
from solver.simulation.scenario import parse_scenario

D = Decimal

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "scenarios"

HAND_COMPUTED = {
    "params": {"price_tolerance": "0", "fee_reserve": "0", "dust_threshold": "0.01"},
    "indexes": {"SY2": {"collateral": "USDC", "constituents": {"A1": "8", "A2": "1"}}},
    "markets": {
        "A1": {"symbol": "A1USDC", "asks": [["100", "10"]], "tick_size": "0.01",
               "step_size": "0.001", "min_notional": "5"},
        "A2": {"symbol": "A2USDC", "asks": [["200", "2"]], "tick_size": "0.01",
               "step_size": "0.001", "min_notional": "5"},
    },
    "deposits": [{"account": "alice", "amount": "1500"}],
    "orders": [{"account": "alice", "id": "o1", "index": "SY2", "collateral": "1000"}],
    "quotes": [{"index": "SY2", "collateral": "1000"}],
}


def simulate(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> tuple[int, str, str]:
    status = main(["simulate", str(path), *flags])
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path: Path, data: object, suffix: str = ".json") -> Path:
    path = tmp_path / f"scenario{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        path.write_text(yaml.safe_dump(data))
    return path


def test_hand_computed_scenario(tmp_path, capsys):
    status, out, _ = simulate(capsys, write(tmp_path, HAND_COMPUTED), "--json")
    report = json.loads(out)
    assert status == 0 and report["invariants"] == "ok"
    assert report["orders"]["o1"] == {
        "account": "alice", "index": "SY2", "collateral": "1000", "status": "filled",
        "filled_units": "1", "collateral_spent": "1000", "collateral_released": "0",
        "fees": "0", "avg_price": "1000", "minted_units": "1", "mint_tx": report["orders"]["o1"][
            "mint_tx"], "reject_reason": None, "reject_text": None,
        "end_reason": "filled: all of its collateral was spent"}
    assert report["orders"]["o1"]["mint_tx"].startswith("0x")
    [batch] = report["batches"]
    assert batch["engaged"] == {"o1": "1"} and batch["filled"] == {"o1": "1"}
    assert batch["asset_orders"] == [
        {"symbol": "A1USDC", "side": "buy", "qty": "8", "price": "100", "status": "filled",
         "executed": "8"},
        {"symbol": "A2USDC", "side": "buy", "qty": "1", "price": "200", "status": "filled",
         "executed": "1"}]
    assert report["quotes"] == [{"index": "SY2", "collateral": "1000", "index_price": "1000",
                                 "units": "1"}]
    assert report["inventory"] == {"A1": "0", "A2": "0"}
    assert report["accounts"] == {"alice": {
        "asset": "USDC", "deposited": "1500", "available": "500", "reserved": "0",
        "spent": "1000", "fees": "0", "withdrawing": "0", "withdrawn": "0"}}


def test_orders_without_liquidity_are_expired_with_what_they_got(tmp_path, capsys):
    data = json.loads(json.dumps(HAND_COMPUTED))
    data["orders"][0]["collateral"] = "1500"  # the books hold only 1.25 units' worth of A1
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    order = json.loads(out)["orders"]["o1"]
    assert status == 0
    assert (order["status"], order["filled_units"], order["collateral_spent"],
            order["collateral_released"], order["minted_units"]) == (
        "expired", "1.25", "1250", "250", "1.25")
    assert order["end_reason"] == "expired: the run ended with no batch able to buy for it"


def test_example_scenario_in_every_format_gives_the_same_report(tmp_path, capsys):
    status, reference, _ = simulate(capsys, EXAMPLES / "basic.toml", "--json")
    assert status == 0 and json.loads(reference)["invariants"] == "ok"
    import tomllib
    data = tomllib.loads((EXAMPLES / "basic.toml").read_text())
    for suffix in (".json", ".yaml"):
        assert simulate(capsys, write(tmp_path, data, suffix), "--json")[1] == reference


def test_every_shipped_example_runs_clean(capsys):
    for path in sorted(EXAMPLES.iterdir()):
        status, out, _ = simulate(capsys, path, "--json")
        assert (path.name, status, json.loads(out)["invariants"]) == (path.name, 0, "ok")


def test_tables_for_people_fit_80_columns_when_piped():
    done = subprocess.run([sys.executable, "-m", "solver.cli", "simulate",
                           str(EXAMPLES / "basic.toml")], capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"]})  # no COLUMNS: rich's 80
    assert done.returncode == 0, done.stderr
    for title in ("Index orders", "Batches", "Quotes", "Accounts", "invariants: ok"):
        assert title in done.stdout
    assert "…" not in done.stdout, "a cell was cut"
    assert max(map(len, done.stdout.splitlines())) <= 80
    assert "3.958556871079531487" in done.stdout  # alice's units, whole


@pytest.mark.parametrize("change, key", [
    (lambda d: d.pop("orders"), "orders: required"),
    (lambda d: d.update(colour="red"), "colour: unknown key"),
    (lambda d: d["params"].update(max_levels="0"), "params.max_levels"),
    (lambda d: d["params"].update(price_tolerance="-1"), "params.price_tolerance"),
    (lambda d: d["params"].update(speed="9"), "params.speed"),
    (lambda d: d["markets"]["A1"].update(asks=[["100", "1"], ["99", "1"]]),
     "markets.A1.asks[1]"),
    (lambda d: d["markets"]["A1"].update(asks=[["100", "-1"]]), "markets.A1.asks[0].quantity"),
    (lambda d: d["markets"]["A1"].pop("symbol"), "markets.A1.symbol"),
    (lambda d: d["indexes"]["SY2"]["constituents"].update(A9="1"), "indexes: asset A9"),
    (lambda d: d["indexes"]["SY2"]["constituents"].update(A1="x"),
     "indexes.SY2: constituents.A1.quantity"),
    (lambda d: d["deposits"][0].pop("amount"), "deposits[0].amount"),
    (lambda d: d["orders"][0].update(collateral="lots"), "orders[0].collateral"),
    (lambda d: d.update(cancels=[{"account": "a", "id": "o1", "after_batch": -1}]),
     "cancels[0].after_batch"),
])
def test_bad_scenarios_exit_2_naming_the_key(tmp_path, capsys, change, key):
    data = json.loads(json.dumps(HAND_COMPUTED))
    change(data)
    status, out, err = simulate(capsys, write(tmp_path, data))
    assert status == 2 and out == ""
    assert key in err


HUGE = "1e400"


def second_market_named_a1usdc(data: dict) -> None:
    data["markets"]["A3"] = dict(data["markets"]["A1"], quote="USDC")
    data["indexes"]["SY2"]["constituents"]["A3"] = "1"


def quoted_in_eur(data: dict) -> None:
    data["markets"]["A1"].update(symbol="A1EUR", quote="EUR")


@pytest.mark.parametrize("suffix, change, key", [
    # Issue 12, point 5: set-up values out of range
    (".json", lambda d: d["deposits"][0].update(amount=HUGE), "deposits[0].amount: must be below"),
    (".json", lambda d: d["markets"]["A1"].update(asks=[[HUGE, "10"]]),
     "markets.A1.asks[0].price: must be below"),
    (".json", lambda d: d["indexes"]["SY2"]["constituents"].update(A1=HUGE),
     "indexes.SY2: constituents.A1.quantity: must be below"),
    (".json", lambda d: d["markets"]["A1"].update(fee_rate=HUGE), "markets.A1.fee_rate"),
    (".json", lambda d: d["params"].update(fee_reserve=HUGE), "params.fee_reserve"),
    (".json", lambda d: d["params"].update(price_tolerance=HUGE), "params.price_tolerance"),
    (".json", lambda d: d["params"].update(dust_threshold=HUGE), "params.dust_threshold"),
    (".json", lambda d: d["markets"]["A1"].update(tick_size=HUGE), "markets.A1.tick_size"),
    (".json", lambda d: d["markets"]["A1"].update(step_size=HUGE), "markets.A1.step_size"),
    (".json", lambda d: d["markets"]["A1"].update(min_notional=HUGE),
     "markets.A1.min_notional"),
    (".json", lambda d: d["params"].update(max_levels=HUGE), "params.max_levels"),
    (".json", lambda d: d["params"].update(max_order_notional=HUGE),
     "params.max_order_notional"),
    (".json", lambda d: d["deposits"][0].update(asset="EUR"),
     "deposits[0].asset: no index is bought with EUR"),
    (".json", second_market_named_a1usdc, "markets.A3.symbol: A1USDC is already the symbol"),
    (".json", quoted_in_eur, "indexes.SY2: constituents.A1: markets.A1 is quoted in EUR"),
    (".yaml", lambda d: d["deposits"][0].update(amount=float("nan")),
     "deposits[0].amount: must be a finite number"),
    (".yaml", lambda d: d["markets"]["A1"].update(tick_size=float("inf")),
     "markets.A1.tick_size: must be a finite number"),
    # point 2: amounts beyond what the arithmetic carries
    (".json", lambda d: d["orders"][0].update(collateral="999." + "9" * 65),
     "orders[0].collateral: must have at most 18 decimals"),
    (".json", lambda d: d["deposits"][0].update(amount="0." + "9" * 65),
     "deposits[0].amount: must have at most 18 decimals"),
    (".json", lambda d: d.update(collaterals={"EUR": 2}), "collaterals.EUR: no index"),
])
def test_set_up_values_out_of_range_exit_2_naming_the_key(tmp_path, capsys, suffix, change,
                                                          key):
    data = json.loads(json.dumps(HAND_COMPUTED))
    change(data)
    status, out, err = simulate(capsys, write(tmp_path, data, suffix))
    assert (status, out) == (2, "")
    assert key in err


@pytest.mark.parametrize("put, edge, beyond, key", [
    (lambda d, v: d.update(collaterals={"USDC": v}), 18, 19,
     "collaterals.USDC: must be a whole number from 0 to 18"),
    (lambda d, v: d["indexes"]["SY2"].update(decimals=v), 18, 19,
     "indexes.SY2: decimals: must be a whole number from 0 to 18"),
    (lambda d, v: (d["params"].update(fee_reserve="0.999999999999999999"),
                   d["markets"]["A1"].update(fee_rate=v)), "0.4", "1",
     "markets.A1.fee_rate: must be below 1"),
    (lambda d, v: d["params"].update(fee_reserve=v), "0.999999999999999999", "1",
     "params.fee_reserve: must be below 1"),
    (lambda d, v: d["params"].update(price_tolerance=v), "0.999999999999999999", "1",
     "params.price_tolerance: must be below 1"),
    (lambda d, v: d["params"].update(max_levels=v), 1000, 1001, "params.max_levels"),
    (lambda d, v: d["params"].update(max_orders_per_batch=v), 100_000, 100_001,
     "params.max_orders_per_batch"),
    (lambda d, v: d["params"].update(max_batch_notional=v), "9" * 24, "1e24",
     "params.max_batch_notional: must be below 1E+24"),
])
def test_bounds_take_their_edge_and_no_further(tmp_path, capsys, put, edge, beyond, key):
    data = json.loads(json.dumps(HAND_COMPUTED))
    put(data, edge)
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    assert status == 0 and json.loads(out)["invariants"] == "ok"
    put(data, beyond)
    status, out, err = simulate(capsys, write(tmp_path, data))
    assert (status, out) == (2, "") and key in err


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["markets"]["A1"].update(fee_rate="0.003"),
     "params.fee_reserve: 0.002 keeps back less than A1USDC's fee rate of 0.003 can charge; "
     "use at least 0.00300903"),
    (lambda d: (d.update(collaterals={"USDC": 2}), d["params"].update(max_order_notional="99")),
     "params.max_order_notional: 99 is below the smallest fill of USDC (2 decimals), 100: no "
     "order could ever be engaged"),
])
def test_settings_that_can_never_work_are_refused_naming_the_least_that_works(
        tmp_path, capsys, change, problem):
    data = json.loads(json.dumps(HAND_COMPUTED))
    data["params"]["fee_reserve"] = "0.002"
    status, _, _ = simulate(capsys, write(tmp_path, data))
    assert status == 0
    change(data)
    status, out, err = simulate(capsys, write(tmp_path, data))
    assert (status, out) == (2, "") and problem in err


def test_reductions_withdrawals_and_book_moves_happen_when_the_scenario_says(tmp_path, capsys):
    """Before the first batch A1 moves from 100 to 90 (the index to 920) and alice lowers her
    order to 920; after it she asks the vault for 500 of the 580 she has left, and the
    simulated vault pays what the solver releases."""
    data = json.loads(json.dumps(HAND_COMPUTED))
    data.update(
        reductions=[{"account": "alice", "id": "o1", "collateral": "920", "after_batch": 0}],
        book_changes=[{"market": "A1", "asks": [["90", "10"]], "after_batch": 0}],
        withdrawals=[{"account": "alice", "amount": "500", "after_batch": 1}])
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    report = json.loads(out)
    assert status == 0 and report["invariants"] == "ok"
    order = report["orders"]["o1"]
    assert (order["status"], order["filled_units"], order["collateral_spent"],
            order["collateral_released"]) == ("filled", "1", "920", "80")
    assert [(f["symbol"], f["price"], f["qty"]) for f in report["batches"][0]["fills"]] == [
        ("A1USDC", "90", "8"), ("A2USDC", "200", "1")]
    assert {k: report["accounts"]["alice"][k] for k in ("available", "withdrawn")} == {
        "available": "80", "withdrawn": "500"}


@pytest.mark.parametrize("key, value, problem", [
    ("book_changes", [{"market": "ZZ", "asks": [["1", "1"]]}], "book_changes[0].market: no "
     "market ZZ"),
    ("withdrawals", [{"account": "alice", "amount": "-1"}], "withdrawals[0].amount"),
    ("reductions", [{"account": "alice", "id": "o1", "collateral": "1e400"}],
     "reductions[0].collateral"),
    ("withdrawals", [{"account": "alice", "amount": "1", "after_batch": -1}],
     "withdrawals[0].after_batch"),
])
def test_bad_scenario_changes_exit_2_naming_the_key(tmp_path, capsys, key, value, problem):
    data = json.loads(json.dumps(HAND_COMPUTED))
    data[key] = value
    status, out, err = simulate(capsys, write(tmp_path, data))
    assert (status, out) == (2, "") and problem in err


def test_average_prices_near_1e21_are_reported(tmp_path, capsys):
    price = "1000000000000000000000.5"
    data = {
        "params": {"price_tolerance": "0", "fee_reserve": "0", "max_order_notional": "1e23",
                   "max_batch_notional": "1e23", "max_inflight_notional": "1e23"},
        "indexes": {"BIG": {"collateral": "USDC", "constituents": {"A1": "1"}}},
        "markets": {"A1": {"symbol": "A1USDC", "asks": [[price, "10"]], "tick_size": "0.5",
                           "step_size": "1"}},
        "deposits": [{"account": "alice", "amount": "5e21"}],
        "orders": [{"account": "alice", "id": "o1", "index": "BIG", "collateral": "2500e18"}],
    }
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    order = json.loads(out)["orders"]["o1"]
    assert status == 0
    assert (order["filled_units"], order["avg_price"]) == ("2", price)


def test_the_planner_never_sends_more_than_the_engine_records(tmp_path, capsys):
    """At 1e-8 a unit, 1e17 USDC would buy 5e24 A1: more than any trade the engine records
    (below 1e24). The planned quantity is capped, so every trade is recorded and each batch
    settles."""
    data = {
        "params": {"price_tolerance": "0.99", "fee_reserve": "0", "max_order_notional": "1e20",
                   "max_batch_notional": "1e20", "max_inflight_notional": "1e21"},
        "indexes": {"TINY": {"collateral": "USDC", "constituents": {"A1": "1"}}},
        "markets": {"A1": {"symbol": "A1USDC", "tick_size": "0.000000001",
                           "step_size": "0.00000001",
                           "asks": [["0.00000001", "9e23"], ["0.000000015", "9e23"]]}},
        "deposits": [{"account": "alice", "amount": "1e17"}],
        "orders": [{"account": "alice", "id": "o1", "index": "TINY", "collateral": "1e17"}],
    }
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    report = json.loads(out)
    assert (status, report["invariants"]) == (0, "ok")
    first = report["batches"][0]["asset_orders"][0]
    assert D("0.99e24") < D(first["qty"]) < D("1e24") and first["status"] == "filled"
    assert D(report["orders"]["o1"]["filled_units"]) == D("1.8e24")


def test_the_audit_flags_unsettled_batches_and_trades_without_lots():
    scenario = parse_scenario(HAND_COMPUTED)
    simulation = run.Simulation(scenario)
    result = simulation.run()
    assert result.violations == []
    engine, exchange = result.engine, result.exchange
    assert exchange is not None
    simulation.apply(SubmitIndexOrder(100, "alice", "o2", "SY2", D(400)))
    exchange.refill()
    simulation.apply(BookUpdated(101, exchange.book("A1USDC")))
    simulation.apply(BookUpdated(102, exchange.book("A2USDC")))
    [requested, _] = simulation.apply(PlanBatch(103)).of_type(AssetOrderRequested)
    exchange.execute(requested, 104)  # traded on the exchange, never reported to the engine
    assert run.audit(engine, result.transactions, exchange) == [
        "batch 2: not settled at the end of the run",
        "trade A1USDC 3 of 3.2: no lot"]


def test_commission_in_the_asset_bought_or_in_a_third_asset(tmp_path, capsys):
    """A1's commission is paid in BNB (0.1 % of 640 USDC at 500 a BNB: 0.00128 BNB, charged
    as 0.64 USDC), A2's in A2 itself (0.1 % of 0.8: the lot is 0.7992 A2)."""
    data = json.loads(json.dumps(HAND_COMPUTED))
    data["params"]["fee_reserve"] = "0.25"  # 800 of the 1000 usable: 0.8 units
    data["markets"]["A1"].update(fee_rate="0.001", commission_asset="BNB")
    data["markets"]["A2"].update(fee_rate="0.001", commission_asset="A2")
    data["markets"]["BNB"] = {"symbol": "BNBUSDC", "asks": [["500", "10"]], "tick_size": "0.01",
                              "step_size": "0.001"}
    data["fee_funds"] = {"BNB": "1"}
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    report = json.loads(out)
    assert (status, report["invariants"]) == (0, "ok")
    fills = {f["symbol"]: (f["qty"], f["fee"]) for f in report["batches"][0]["fills"]}
    assert fills == {"A1USDC": ("6.4", "0.64"), "A2USDC": ("0.7992", "0.16")}
    assert report["batches"][0]["filled"] == {"o1": "0.7992"}  # A2 was the scarcer asset
    paid = sum(D(f["fee"]) / 500 for b in report["batches"] for f in b["fills"]
               if f["symbol"] == "A1USDC")  # the order's remainder buys in later batches
    held = report["fee_assets"]["BNB"]
    assert (D(held["paid"]), D(held["balance"]), held["unvalued"]) == (paid, 1 - paid, "0")
    data["fee_funds"] = {"BNB": "0.001"}
    status, out, _ = simulate(capsys, write(tmp_path, data), "--json")
    assert (status, json.loads(out)["invariants"]) == (1, [
        f"fee asset BNB: commissions paid {paid} exceed its funding 0.001 (fund it)"])
    data["markets"]["A1"]["commission_asset"] = "XYZ"
    status, _, err = simulate(capsys, write(tmp_path, data), "--json")
    assert status == 2 and "markets.A1.commission_asset: XYZ needs a market" in err


def test_unreadable_files_exit_2(tmp_path, capsys):
    assert simulate(capsys, tmp_path / "missing.json")[0] == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    status, _, err = simulate(capsys, broken)
    assert status == 2 and "not valid json" in err


def test_numbers_python_cannot_read_exit_2(tmp_path, capsys):
    longest_int = tmp_path / "long.json"  # Python refuses ints of more than 4300 digits
    longest_int.write_text('{"indexes": ' + "1" * 5000 + "}")
    status, _, err = simulate(capsys, longest_int)
    assert status == 2 and "not valid json" in err
    sexagesimal = write(tmp_path, HAND_COMPUTED, ".yaml")  # YAML 1.1 reads 1:30.5 as a float
    sexagesimal.write_text(sexagesimal.read_text().replace("amount: '1500'", "amount: 1:30.5"))
    status, _, err = simulate(capsys, sexagesimal)
    assert status == 2 and "deposits[0].amount: '1:30.5' is not a number" in err


def test_violations_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "violations", lambda engine: ["asset X: made up"])
    status, out, _ = simulate(capsys, write(tmp_path, HAND_COMPUTED), "--json")
    assert status == 1 and json.loads(out)["invariants"] == ["asset X: made up"]


def test_console_script_is_installed():
    done = subprocess.run([Path(sys.executable).parent / "index-solver", "simulate",
                           str(EXAMPLES / "basic.toml"), "--json"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["invariants"] == "ok"


def test_readme_library_example_runs(capsys):
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "IndexOrderFilled(" in out and "MintRequested(" in out
