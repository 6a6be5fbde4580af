"""Property tests: for random indexes, markets, orders, cancels and interleavings of planning
with the exchange's reports (batches planned while earlier ones are in flight), the core keeps
its laws. Money is checked exactly, in fractions: no decimal context rounds the checks.

Each property names the rule it guards; removing the rule from the core makes it fail (the
caps, the per-order cap, the max-price refusal, flooring buys to the step, netting a
commission paid in the asset bought, the completion rule).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from solver.config.market_files import MarketSpec
from solver.core import events as ev
from solver.core.allocation import min_fill_value
from solver.core.commands import (
    BindWallet,
    BookUpdated,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    FeeAssetFunded,
    Input,
    MintConfirmed,
    MintRefused,
    PlanBatch,
    SubmitIndexOrder,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.engine import Engine
from solver.core.fitting import (
    BatchPlan,
    Candidate,
    Market,
    can_be_bought_alone,
    can_be_engaged,
    limit_price,
    plan_batch,
    smallest_buy_cost,
)
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Constituent, Index
from solver.core.money import decimal_places, quantum
from solver.core.orders import OrderState, OrderStatus
from solver.core.params import SolverParams
from solver.simulation.exchange import SimulatedExchange
from solver.simulation.run import audit, setup_of, simulate
from solver.simulation.scenario import CancelSpec, OrderSpec, Scenario
from tests.support.builders import examples

D = Decimal
F = Fraction
ASSETS = tuple(f"A{n}" for n in range(1, 11))
STEPS = tuple(D(10) ** e for e in range(-8, 3))  # 1e-8 .. 100
TICKS = tuple(D(10) ** e for e in range(-8, 1))  # 1e-8 .. 1


# --- strategies -------------------------------------------------------------------------------


@st.composite
def market_specs(draw: st.DrawFn, asset: str, third: bool) -> MarketSpec:
    tick = draw(st.sampled_from(TICKS))
    cents = draw(st.integers(1, 300_000_000_000))  # prices with 8 decimals, up to 3000
    price = max(tick, (D(cents).scaleb(-8) // tick) * tick)
    step = draw(st.sampled_from([s for s in STEPS if s * price <= 100]))
    asks = []
    for _ in range(draw(st.sampled_from([3, 1, 2, 4, 5, 1, 2, 3, 0]))):
        worth = D(draw(st.sampled_from([20_000, 500, 3_000, 50, 100_000])))
        asks.append(Level(price, max(step, worth / price // step * step)))
        price += draw(st.integers(1, 50)) * tick
    rules = MarketRules(
        f"{asset}USDC", asset, "USDC", tick, step,
        min_qty=draw(st.sampled_from([D(0), step])),
        max_qty=draw(st.sampled_from([D(0), step * 10**7])),
        min_notional=draw(st.sampled_from([D(0), D(1), D(5), D(10)])))
    paid_in = draw(st.sampled_from(["", asset] + (["BNB"] if third else [])))
    return MarketSpec(rules, OrderBook(rules.symbol, tuple(asks)),
                      fee_rate=draw(st.sampled_from([D(0), D("0.001"), D("0.0075")])),
                      refill=draw(st.booleans()), commission_asset=paid_in)


BNB = MarketSpec(MarketRules("BNBUSDC", "BNB", "USDC", D("0.01"), D("0.001")),
                 OrderBook("BNBUSDC", (Level(D("612.37"), D(1000)),)), D(0), True)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    assets = ASSETS[:draw(st.integers(1, len(ASSETS)))]
    third = draw(st.booleans())
    markets = {a: draw(market_specs(a, third)) for a in assets}
    if third:
        markets["BNB"] = BNB
    indexes = []
    for symbol in ("IX1", "IX2", "IX3", "IX4")[:draw(st.integers(1, 4))]:
        chosen = draw(st.lists(st.sampled_from(assets), min_size=1, max_size=4, unique=True))
        indexes.append(Index(symbol, "USDC", tuple(
            Constituent(a, f"{a}USDC", D(draw(st.integers(1, 5 * 10**6))).scaleb(-6))
            for a in chosen), decimals=draw(st.sampled_from([18, 18, 12, 8, 2, 0]))))
    collateral_decimals = draw(st.one_of(st.just(6), st.integers(0, 18)))
    accounts = ("alice", "bob", "carol")
    deposits = tuple((a, "USDC", D(draw(st.sampled_from([200_000, 30_000, 3_000, 100]))))
                     for a in accounts)
    orders = tuple(order_specs(draw, f"o{n}", accounts, indexes, markets, collateral_decimals)
                   for n in range(draw(st.integers(1, 60))))
    cancels = tuple(CancelSpec(o.account, o.id, 0) for o in orders if draw(st.integers(0, 9)) == 0)
    params = SolverParams(
        price_tolerance=draw(st.sampled_from([D(0), D("0.005"), D("0.01"), D("0.05")])),
        fee_reserve=draw(st.sampled_from([D(0), D("0.001"), D("0.01")])),
        max_order_notional=max(min_fill_value(collateral_decimals),
                               draw(st.sampled_from([D(50), D(1000), D(1_000_000)]))),
        max_batch_notional=draw(st.sampled_from([D(300), D(5000), D(1_000_000)])),
        max_inflight_notional=draw(st.sampled_from([D(400), D(8000), D(10_000_000)])),
        max_levels=draw(st.integers(1, 5)),
        max_orders_per_batch=draw(st.sampled_from([1, 2, 3, 60, 10])),
        dust_threshold=draw(st.sampled_from([D("0.01"), D(1)])))
    return Scenario(params, tuple(indexes), markets, deposits, orders, cancels,
                    quotes=(), collateral_decimals={"USDC": collateral_decimals},
                    max_batches=200, fee_funds={"BNB": D(10**6)} if third else {})


def order_specs(draw: st.DrawFn, name: str, accounts: tuple[str, ...],
                indexes: list[Index], markets: dict[str, MarketSpec],
                decimals: int) -> OrderSpec:
    """An order of a known index (or now and then an unknown one), some with a max price
    around the index's price at the best asks."""
    index = draw(st.sampled_from([*indexes, None]) if draw(st.booleans()) else
                 st.sampled_from(indexes))
    max_price = None
    asks = [markets[c.asset].book.best_ask for c in index.constituents] if index else []
    if asks and all(asks) and draw(st.booleans()):
        price = sum((c.quantity * a for c, a in zip(index.constituents, asks, strict=True)
                     if a is not None), D(0))
        factor = draw(st.sampled_from(["0.5", "0.99", "1", "1.003", "1.02", "2"]))
        max_price = max(D("0.01"), (price * D(factor)).quantize(D("0.01")))
    return OrderSpec(draw(st.sampled_from(accounts)), name, index.symbol if index else "IX9",
                     amounts(draw, decimals), max_price)


def amounts(draw: st.DrawFn, decimals: int) -> Decimal:
    """Order amounts from cents to tens of thousands, on the collateral's grid or finer."""
    units = D(draw(st.integers(1, 20_000)))
    scale = draw(st.sampled_from([0, -1, 1, -2, -4]))
    return max(units.scaleb(scale).quantize(quantum(decimals)) if decimals < 6 else
               units.scaleb(scale), quantum(decimals))


STEPS_DRAWN = st.tuples(st.integers(0, 4), st.lists(st.sampled_from(
    ["plan", "plan", "report", "plan", "report late", "cancel", "refill", "report",
     "withdraw", "wait"]),
    max_size=40)).map(lambda drawn: ["plan"] * drawn[0] + drawn[1])
"""Steps between submitting the orders and finishing the run; often a few plans first, so
that batches are planned while earlier ones are in flight."""


# --- a driver that plans while earlier batches are in flight ----------------------------------


@dataclass
class Run:
    """The engine, the simulated exchange and every transaction, in the order applied."""

    scenario: Scenario
    engine: Engine
    exchange: SimulatedExchange
    transactions: list[ev.Transaction] = field(default_factory=list)
    in_flight: list[ev.AssetOrderRequested] = field(default_factory=list)
    inflight_at_plan: list[tuple[int, Fraction]] = field(default_factory=list)
    """Per batch planned: (batch id, notional of every unsettled batch's asset orders)."""
    not_live: list[str] = field(default_factory=list)
    """Plans that found nothing while an order could be bought alone, and orders left open
    at the end that could have been."""
    clock: int = 0

    def apply(self, command: Input) -> ev.Transaction:
        transaction = self.engine.apply(command)
        self.transactions.append(transaction)
        self.in_flight += transaction.of_type(ev.AssetOrderRequested)
        for mint in transaction.of_type(ev.MintRequested):
            if mint.order_id % 3 == 2:  # the vault refuses some for good: given back
                self.apply(MintRefused(self.tick(), mint.order_id, 1, "expired"))
            else:
                self.apply(MintConfirmed(self.tick(), mint.order_id, f"0x{mint.order_id:x}"))
        for release in transaction.of_type(ev.WithdrawalReleaseRequested):
            self.apply(WithdrawalPaid(self.tick(), f"paid-{release.request_id}",
                                      release.wallet, release.asset, release.amount))
        return transaction

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def plan(self) -> bool:
        could = self.bought_alone()
        planned = self.apply(PlanBatch(self.tick())).of_type(ev.BatchPlanned)
        if planned:
            self.inflight_at_plan.append((planned[0].batch_id, self._unsettled_notional()))
        elif could:
            self.not_live.append(f"orders {could} could be bought alone; nothing was planned")
        return bool(planned)

    def bought_alone(self) -> list[int]:
        """The ready orders a batch of their own could buy now (at their limits, within the
        caps, on today's books and inventory)."""
        e, found = self.engine, []
        markets, room = e.markets(), e.params.max_inflight_notional - e.inflight_notional()
        smallest = min_fill_value(self.scenario.collateral_decimals["USDC"])
        for o in e.open_orders():
            index = e.indexes[o.index]
            least = smallest_buy_cost(index, markets, e.params, smallest)
            if not o.is_ready or not can_be_bought_alone(o.remaining, least, e.params):
                continue
            free = {a: e.inventory.free_quantity(a) for a in index.assets}
            alone = plan_batch([Candidate(o.id, index, o.remaining, o.max_price)], markets, free,
                               e.params, room, smallest)
            if isinstance(alone, BatchPlan):
                found.append(o.id)
        return found

    def wait(self) -> bool:
        """Let the clock run to the next time the engine waits for, and tick; False when
        nothing waits for time or the tick brought nothing."""
        due = self.engine.next_due()
        if due is None:
            return False
        self.clock = max(self.clock, due - 1)
        return bool(self.apply(ClockTicked(self.tick())).events)

    def _unsettled_notional(self) -> Fraction:
        """From the events alone: asset orders of batches not settled yet."""
        settled = {e.batch_id for t in self.transactions for e in t.of_type(ev.BatchSettled)}
        return sum((F(r.price) * F(r.quantity) for t in self.transactions
                    for r in t.of_type(ev.AssetOrderRequested) if r.batch_id not in settled),
                   F(0))

    def report(self, position: int, seed: int) -> None:
        """The exchange executes one order in flight; its reports arrive in any order."""
        request = self.in_flight.pop(position % len(self.in_flight))
        facts = self.exchange.execute(request, self.tick())
        random.Random(seed).shuffle(facts)
        for fact in facts:
            self.apply(fact)

    def refresh_books(self) -> None:
        for symbol in self.exchange.books:
            self.apply(BookUpdated(self.tick(), self.exchange.book(symbol)))

    def finish(self) -> None:
        """Report everything in flight and plan until no batch can be planned and nothing
        waits for time; then expire what is still open."""
        for _ in range(self.scenario.max_batches):
            while self.in_flight:
                self.report(0, self.clock)
            self.exchange.refill(only_refilling=True)
            self.refresh_books()
            if not self.plan() and not self.wait():
                self.not_live += [f"order {o} left open, though it could be bought alone"
                                  for o in self.bought_alone()]
                break
        while self.in_flight:
            self.report(0, self.clock)
        for order in self.engine.open_orders():
            self.apply(ExpireIndexOrder(self.tick(), order.account, order.client_order_id))


def run(scenario: Scenario, steps: list[str], seed: int) -> Run:
    r = Run(scenario, setup_of(scenario).build(), SimulatedExchange(scenario.markets))
    r.refresh_books()
    for asset, quantity in scenario.fee_funds.items():
        r.apply(FeeAssetFunded(r.tick(), f"fund-{asset}", asset, quantity))
    for account in sorted({account for account, _, _ in scenario.deposits}):
        r.apply(BindWallet(r.tick(), f"0x{account}", account))
    for n, (account, asset, amount) in enumerate(scenario.deposits):
        r.apply(DepositConfirmed(r.tick(), f"dep-{n}", account, asset, amount))
    for o in scenario.orders:
        r.apply(SubmitIndexOrder(r.tick(), o.account, o.id, o.index, o.collateral,
                                 max_price=o.max_price))
    rng = random.Random(seed)
    cancels = list(scenario.cancels)
    for step in steps:
        if step == "plan":
            r.plan()
        elif step.startswith("report") and r.in_flight:
            r.report(-1 if step == "report late" else 0, rng.randrange(2**32))
        elif step == "cancel" and cancels:
            cancel = cancels.pop()
            r.apply(CancelIndexOrder(r.tick(), cancel.account, cancel.id))
        elif step == "refill":
            r.exchange.refill()
            r.refresh_books()
        elif step == "wait":
            r.wait()
        elif step == "withdraw":
            account, asset, amount = rng.choice(scenario.deposits)
            r.apply(WithdrawalRequested(r.tick(), f"w-{r.clock}", f"0x{account}", asset,
                                        amount * D(rng.choice(["0.1", "0.5", "1", "2"]))))
    r.finish()
    return r


# --- the properties ---------------------------------------------------------------------------


SETTINGS = settings(max_examples=examples(200), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def hand_market(asset: str, step: str = "0.01", offered: str = "1000",
                **changes: object) -> MarketSpec:
    """``asset`` asked at 100, ``offered`` of it, on a tick of 0.01, with no minimums."""
    rules = MarketRules(f"{asset}USDC", asset, "USDC", D("0.01"), D(step))
    book = OrderBook(rules.symbol, (Level(D(100), D(offered)),))
    return replace(MarketSpec(rules, book, D(0), False), **changes)


def hand_made(orders: tuple[str, ...] = ("1000",), max_price: str | None = None,
              a1: MarketSpec | None = None, **params: object) -> Scenario:
    """IX1 = 1 A1 + 1 A2 (``hand_market``): each named rule has a run of its own that breaks
    without it, so that every run of the property catches it, whatever else it draws."""
    index = Index("IX1", "USDC", (Constituent("A1", "A1USDC", D(1)),
                                  Constituent("A2", "A2USDC", D(1))), decimals=2)
    values: dict[str, object] = {"price_tolerance": D(0), "fee_reserve": D(0), **params}
    return Scenario(
        SolverParams(**values),  # type: ignore[arg-type]
        (index,), {"A1": a1 or hand_market("A1"), "A2": hand_market("A2")},
        (("alice", "USDC", D(100_000)),),
        tuple(OrderSpec("alice", f"o{n}", "IX1", D(amount),
                        None if max_price is None else D(max_price))
              for n, amount in enumerate(orders)),
        (), quotes=(), collateral_decimals={"USDC": 6}, max_batches=200)


NAMED_RULES = {  # rule: a run that breaks without it (tests/named_mutants.py removes each)
    "batch cap": (hand_made(("1000", "1000"), max_batch_notional=D(300)), ["plan"]),
    "in-flight cap": (hand_made(("300", "300", "300"), max_inflight_notional=D(400)),
                      ["plan", "plan"]),
    "per-order cap": (hand_made(("1000",), max_order_notional=D(50)), ["plan"]),
    "max price refusal": (hand_made(("1000",), max_price="150"), ["plan"]),
    "buys floored to the step": (hand_made(("250",), a1=hand_market("A1", step="1")),
                                 ["plan"]),
    "commission in the asset bought netted": (
        hand_made(("1000",), fee_reserve=D("0.01"), a1=hand_market(
            "A1", fee_rate=D("0.001"), commission_asset="A1")), ["plan"]),
    "completion rule": (hand_made(("1000",), a1=hand_market("A1", offered="3")),
                        ["plan", "report", "report"]),
}


def with_named_rules(test: Callable[..., None]) -> Callable[..., None]:
    """The property, also run on each named rule's own example."""
    for scenario, steps in NAMED_RULES.values():
        test = example(scenario, steps, 0)(test)
    return test


@SETTINGS
@given(scenarios(), STEPS_DRAWN, st.integers(0, 2**32))
@with_named_rules
def test_the_core_keeps_its_laws(scenario: Scenario, steps: list[str], seed: int) -> None:
    r = run(scenario, steps, seed)
    # The conservation laws, every batch settled, every trade recorded as a lot of its size
    # (the lot net of a commission paid in the asset bought), each order minted at most once.
    assert audit(r.engine, r.transactions, r.exchange) == []
    assert not r.engine.open_orders()
    assert not r.engine.custody.withdrawals  # every withdrawal released once nothing held it
    assert_caps_hold_on_what_is_sent(r)
    assert_buys_are_floored_to_the_step(r)
    assert_max_price_holds(r)
    assert_charges_are_on_the_collateral_grid(r)
    assert_value_is_conserved_exactly(r)
    assert_no_order_closed_while_a_batch_could_buy_for_it(r)
    assert r.not_live == []  # a plan is never empty while an order could be bought alone


def plans(r: Run) -> Iterator[tuple[ev.BatchPlanned, list[ev.AssetOrderRequested]]]:
    for t in r.transactions:
        for planned in t.of_type(ev.BatchPlanned):
            yield planned, t.of_type(ev.AssetOrderRequested)


def assert_caps_hold_on_what_is_sent(r: Run) -> None:
    p = r.scenario.params
    for planned, requested in plans(r):
        prices = dict(planned.index_prices)
        sent = sum((F(q.price) * F(q.quantity) for q in requested), F(0))
        engaged = [F(e.units) * F(prices[r.engine.orders[e.order_id].index])
                   for e in planned.engagements]
        assert sent <= p.max_batch_notional
        assert sum(engaged, F(0)) <= p.max_batch_notional
        assert all(value <= p.max_order_notional for value in engaged)
        assert len(planned.engagements) <= p.max_orders_per_batch
    for _, in_flight in r.inflight_at_plan:
        assert in_flight <= p.max_inflight_notional


def assert_buys_are_floored_to_the_step(r: Run) -> None:
    """Every buy is on the step and passes the filters, and buys no more than the batch's
    engagements need beyond the inventory it uses (never rounded up)."""
    for planned, requested in plans(r):
        needed: dict[str, F] = {}
        for e in planned.engagements:
            index = r.engine.indexes[r.engine.orders[e.order_id].index]
            for c in index.constituents:
                needed[c.asset] = needed.get(c.asset, F(0)) + F(e.units) * F(c.quantity)
        for asset, used in planned.inventory_used:
            needed[asset] -= F(used)
        for q in requested:
            asset = q.symbol[:-len("USDC")]
            rules = r.scenario.markets[asset].rules
            assert rules.filter_failure(q.price, q.quantity) is None
            assert F(q.quantity) % F(rules.step_size) == 0 and q.quantity <= needed[asset]


def assert_max_price_holds(r: Run) -> None:
    """No order is engaged above its max price, nor charged more per unit before fees (up to
    rounding each charge up to the collateral's grid)."""
    grid = F(quantum(r.scenario.collateral_decimals["USDC"]))
    for planned, _ in plans(r):
        prices = dict(planned.index_prices)
        for e in planned.engagements:
            order = r.engine.orders[e.order_id]
            assert order.max_price is None or prices[order.index] <= order.max_price
    for t in r.transactions:
        for filled in t.of_type(ev.IndexOrderFilled):
            limit = r.engine.orders[filled.order_id].max_price
            assert limit is None or (
                F(filled.cost) - F(filled.fees) <= F(filled.units) * F(limit) + 2 * grid)


def assert_charges_are_on_the_collateral_grid(r: Run) -> None:
    decimals = r.scenario.collateral_decimals["USDC"]
    for t in r.transactions:
        for e in t.events:
            amounts: tuple[Decimal, ...] = ()
            match e.event:
                case ev.IndexOrderFilled(cost=cost, fees=fees, spent=spent):
                    amounts = (cost, fees, spent)
                case ev.CollateralReleased(amount=amount) | ev.CollateralReserved(
                        amount=amount):
                    amounts = (amount,)
                case ev.IndexOrderCompleted(spent=spent, released=released):
                    amounts = (spent, released)
            assert all(decimal_places(a) <= decimals for a in amounts), e.event


def assert_value_is_conserved_exactly(r: Run) -> None:
    """In fractions: every lot is the slices given to orders plus what is left; what the
    exchange was paid (fees included) is the value of every slice plus inventory at cost; each
    batch charged its orders the value of the slices it gave them (each order pays the pool's
    average, so orders of one batch share its lots' prices), rounded up to the grid once per
    fill, never less (up to the pro-rata split's 36-decimal floor); each order spent plus
    released its collateral; per account, deposited = available + reserved + spent +
    withdrawn, where withdrawn is what the vault paid out."""
    engine, grid = r.engine, F(quantum(r.scenario.collateral_decimals["USDC"]))
    lots = {lot.id: lot for lot in engine.inventory.lots()}
    unit_value = {i: F(lot.price) + F(lot.fee) / F(lot.quantity)
                  for i, lot in lots.items() if lot.quantity}
    sliced: dict[str, F] = {i: F(0) for i in lots}
    given = F(0)
    for t in r.transactions:
        for settled in t.of_type(ev.BatchSettled):
            worth = F(0)
            for a in settled.assignments:
                sliced[a.lot_id] += F(a.quantity)
                worth += F(a.quantity) * unit_value[a.lot_id]
            fills = t.of_type(ev.IndexOrderFilled)
            rounding = sum((F(f.cost) for f in fills), F(0)) - worth
            split = F(1, 10**30) * (1 + worth)
            assert -split <= rounding <= grid * len(fills) + split
            given += worth
        for refused in t.of_type(ev.IndexOrderMintRefused):
            for lid, quantity in refused.lots:
                sliced[lid] -= F(quantity)
                given -= F(quantity) * unit_value[lid]
    for i, lot in lots.items():
        assert sliced[i] + F(engine.inventory.unassigned(i)) == F(lot.quantity)
    paid = sum((F(lot.price) * F(lot.quantity) + F(lot.fee) for lot in lots.values()), F(0))
    held = sum((F(engine.inventory.unassigned(i)) * unit_value[i] for i in unit_value), F(0))
    assert paid == given + held
    for order in engine.orders.values():
        assert F(order.spent) + F(order.released) == F(order.collateral)
    final = (OrderState.CLOSED, OrderState.MINTED, OrderState.MINT_REFUSED)
    assert not any(engine.orders[o].state in final for o in engine.inventory._of_order), \
        "an order's assignments kept after they could be given back"
    deposited: dict[str, F] = {}
    for account, _, amount in r.scenario.deposits:
        deposited[account] = deposited.get(account, F(0)) + F(amount)
    withdrawn: dict[str, F] = {}
    for t in r.transactions:
        for paid_out in t.of_type(ev.CollateralWithdrawn):
            withdrawn[paid_out.account] = withdrawn.get(paid_out.account, F(0)) + F(
                paid_out.amount)
    for (account, _), b in engine.ledger.balances().items():
        assert F(b.available) + F(b.reserved) + F(b.spent) + F(b.withdrawn) == deposited[account]
        assert F(b.withdrawn) == withdrawn.get(account, F(0)) and b.withdrawing == 0
        assert b.reserved == 0 and F(b.spent) == sum(
            (F(o.spent) for o in engine.orders.values() if o.account == account), F(0))


def assert_no_order_closed_while_a_batch_could_buy_for_it(r: Run) -> None:
    """An order completes as filled only with fills, and only when what it has left is at or
    below the dust threshold or buys less than the smallest fill at the books of that moment
    (together with other orders or not), or when it could not be bought alone for the whole
    ``completion_wait_ms`` (and still cannot)."""
    p, books = r.scenario.params, dict[str, OrderBook]()
    smallest = min_fill_value(r.scenario.collateral_decimals["USDC"])
    for t in r.transactions:
        if isinstance(t.input, BookUpdated):
            books[t.input.book.symbol] = t.input.book
        for done in t.of_type(ev.IndexOrderCompleted):
            index = r.engine.indexes[r.engine.orders[done.order_id].index]
            markets = {a: Market(m.rules, books[m.rules.symbol])
                       for a, m in r.scenario.markets.items() if m.rules.symbol in books}
            if "could buy it with other orders of" in done.reason:
                least = smallest_buy_cost(index, markets, p, smallest)
                assert isinstance(t.input, PlanBatch | ClockTicked)
                assert not can_be_bought_alone(done.released, least, p)
                assert (done.status is OrderStatus.FILLED) == (done.filled_units > 0)
                continue
            if done.status is not OrderStatus.FILLED:
                continue
            assert done.filled_units > 0
            if done.released <= p.dust_threshold:
                continue
            price = limit_price(index, markets, p)
            assert price is not None
            assert not can_be_engaged(index, done.released, price, p, smallest)


# --- fill order -------------------------------------------------------------------------------


def outcome(scenario: Scenario, seed: int | None) -> object:
    def shuffled(facts: list[Input]) -> list[Input]:
        random.Random(seed).shuffle(facts)
        return facts

    engine = simulate(scenario, None if seed is None else shuffled).engine
    return ([(o.status, o.filled_units, o.spent, o.fees, o.released, o.minted_units)
             for o in engine.orders.values()],
            engine.inventory.positions(), engine.ledger.balances())


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios(), st.integers(0, 2**32))
def test_results_do_not_depend_on_the_order_of_exchange_reports(scenario: Scenario,
                                                                seed: int) -> None:
    assert outcome(scenario, seed) == outcome(scenario, None)
