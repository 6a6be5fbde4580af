"""The engine: applies one input at a time to the solver's state and returns what it caused.

Single writer, no I/O, no clock: time comes in on each input and ids are counters in the
state, so replaying the same inputs gives the same state and the same events.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal, localcontext
from typing import Any

from solver.core import custody, minting, settlement
from solver.core import events as ev
from solver.core.allocation import min_fill_value
from solver.core.batches import AssetOrder, Batch
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    BindWallet,
    BookUpdated,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    FeeAssetFunded,
    Input,
    MintConfirmed,
    MintFailed,
    PlanBatch,
    ReduceIndexOrder,
    RequestQuote,
    ResolveVanishedFact,
    SettlementMoved,
    SubmitIndexOrder,
    VaultDepositConfirmed,
    VaultFactVanished,
    VaultReadingStarted,
    VaultReadThrough,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.custody import Custody
from solver.core.fee_assets import FeeAsset
from solver.core.fitting import (
    BatchPlan,
    Candidate,
    Market,
    one_order_cap,
    quote,
    smallest_buy_cost,
    within_caps,
)
from solver.core.inventory import Inventory, Lot, lot_id
from solver.core.ledger import Balance, CollateralLedger
from solver.core.market import MarketRules, OrderBook
from solver.core.model import Collateral, Index, Side
from solver.core.money import (
    CONTEXT,
    MAX_AMOUNT,
    ZERO,
    amount_problem,
    ceil_decimals,
    plain,
)
from solver.core.orders import (
    CancelRejectReason,
    IndexOrder,
    OrderState,
    OrderStatus,
    Refusal,
    RejectReason,
    amount_refusal,
    changeable,
    reduction_refusal,
)
from solver.core.params import SolverParams, setting_problems
from solver.core.planning import Unplanned, choose_batch

Events = list[ev.Event]
_CLIENT_ORDER_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,16}")


class Engine:
    """The solver's state and the only code that changes it."""

    def __init__(
        self,
        indexes: Iterable[Index],
        markets: Iterable[MarketRules],
        params: SolverParams | None = None,
        collaterals: Iterable[Collateral] = (),
        client_order_prefix: str = "ixs",
    ) -> None:
        """``client_order_prefix`` starts every exchange client order id: the journal makes one
        per deployment, so that ids stay unique even across journals."""
        if not _CLIENT_ORDER_PREFIX.fullmatch(client_order_prefix):
            raise ValueError(f"client order prefix {client_order_prefix!r}: use 1 to 16 of "
                             "A-Z a-z 0-9 _ - (Binance allows 36 characters in all)")
        self.params = params or SolverParams()
        self.client_order_prefix = client_order_prefix
        self.indexes = {i.symbol: i for i in indexes}
        self.rules = {m.asset: m for m in markets}
        self.collaterals = {c.asset: c for c in collaterals}
        for index in self.indexes.values():
            self.collaterals.setdefault(index.collateral, Collateral(index.collateral))
            for c in index.constituents:
                market = self.rules.get(c.asset)
                if market is None or market.quote != index.collateral:
                    raise ValueError(f"index {index.symbol}: {c.asset} needs a market quoted "
                                     f"in {index.collateral}")
        problems = setting_problems(self.params, {a: c.decimals
                                                  for a, c in self.collaterals.items()}, {})
        if problems:
            raise ValueError(problems[0])
        self.books: dict[str, OrderBook] = {}
        self.ledger = CollateralLedger()
        self.inventory = Inventory()
        self.orders: dict[int, IndexOrder] = {}
        self.batches: dict[int, Batch] = {}
        self.asset_orders: dict[int, AssetOrder] = {}
        self.last_served: dict[str, int] = {}
        """Per index, the last batch that engaged an order of it: indexes take turns."""
        self._order_ids: dict[tuple[str, str], int] = {}
        self._open: dict[int, IndexOrder] = {}
        self.deposit_ids: set[str] = set()
        self.custody = Custody()
        self.fee_assets: dict[str, FeeAsset] = {}
        self._fundings: set[str] = set()
        self._assets_by_symbol = {m.symbol: m.asset for m in self.rules.values()}
        self._transactions = 0
        self._sequence = 0

    # --- the one entry point ---------------------------------------------------------------

    def apply(self, command: Input) -> ev.Transaction:
        """Apply one input; state is updated before the returned events are delivered."""
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"not an engine input: {command!r}")
        try:
            with localcontext(CONTEXT):
                events = handler(self, command)
                if self.custody.withdrawals:
                    events += custody.follow_up(self)
        except Exception as error:  # one input must not stop the writer
            # Handlers check before they change anything, so this is a defect; the journal
            # keeps the input with this event, and replay raises and refuses it the same way.
            events = [ev.InputRefused(f"the engine failed on this input: "
                                      f"{type(error).__name__}: {error}")]
        self._transactions += 1
        envelopes = []
        for event in events:
            self._sequence += 1
            envelopes.append(ev.Envelope(self._sequence, command.ts, event))
        return ev.Transaction(self._transactions, command.ts, command, tuple(envelopes))

    # --- queries ---------------------------------------------------------------------------

    @property
    def transactions_applied(self) -> int:
        """The number of the last transaction; the journal holds them all."""
        return self._transactions

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event."""
        return self._sequence

    def order(self, account: str, client_order_id: str) -> IndexOrder | None:
        order_id = self._order_ids.get((account, client_order_id))
        return None if order_id is None else self.orders[order_id]

    def order_names(self) -> list[tuple[tuple[str, str], int]]:
        """((account, client id), order id) for every id that names an order: the order's own
        and each accepted change's."""
        return list(self._order_ids.items())

    def open_orders(self) -> list[IndexOrder]:
        return list(self._open.values())

    def inflight_notional(self) -> Decimal:
        return sum((o.notional for o in self.asset_orders.values()
                    if not self.batches[o.batch_id].settled), ZERO)

    def markets(self) -> dict[str, Market]:
        return {a: Market(self.rules[a], book) for a, book in self.books.items()}

    # --- collateral ------------------------------------------------------------------------

    def _deposit(self, fact: DepositConfirmed) -> Events:
        refusal = self.deposit_refusal(fact.deposit_id, fact.asset, fact.amount)
        if refusal is not None:
            return [ev.InputIgnored(refusal)]
        self.deposit_ids.add(fact.deposit_id)
        self.custody.wallets.setdefault(fact.account, fact.wallet or fact.account)
        return [self.credit(fact.account, fact.asset, fact.amount, fact.deposit_id)]

    def deposit_refusal(self, deposit_id: str, asset: str, amount: Decimal) -> str | None:
        if deposit_id in self.deposit_ids:
            return f"deposit {deposit_id} already credited"
        collateral = self.collaterals.get(asset)
        if collateral is None:
            return f"deposit {deposit_id}: {asset} is no collateral"
        refusal = amount_refusal(amount, collateral.decimals, asset, RejectReason)
        return None if refusal is None else f"deposit {deposit_id}: {refusal.text}"

    def credit(self, account: str, asset: str, amount: Decimal,
               deposit_id: str) -> ev.CollateralDeposited:
        self.ledger.credit(account, asset, amount)
        return ev.CollateralDeposited(account, asset, amount, deposit_id,
                                      self.ledger.balance(account, asset))

    # --- index orders ----------------------------------------------------------------------

    def _submit(self, cmd: SubmitIndexOrder) -> Events:
        refusal = self._new_order_refusal(cmd)
        if refusal:
            return [ev.IndexOrderRejected(cmd.account, cmd.client_order_id,
                                          RejectReason(refusal.reason), refusal.text)]
        index = self.indexes[cmd.index]
        order = IndexOrder(
            id=len(self.orders) + 1, account=cmd.account, client_order_id=cmd.client_order_id,
            index=index.symbol, collateral_asset=index.collateral, collateral=cmd.collateral,
            wallet=cmd.wallet or self.custody.wallets.get(cmd.account, cmd.account),
            accepted_ts=cmd.ts, max_price=cmd.max_price, expire_at=cmd.expire_at,
        )
        self.orders[order.id] = self._open[order.id] = order
        self._order_ids[(cmd.account, cmd.client_order_id)] = order.id
        self.ledger.reserve(order.account, order.collateral_asset, order.collateral)
        return [
            ev.IndexOrderAccepted(order.id, order.account, order.client_order_id, order.index,
                                  order.collateral, order.snapshot()),
            ev.CollateralReserved(order.account, order.collateral_asset, order.collateral,
                                  order.id, self.balance_of(order)),
        ]

    def _new_order_refusal(self, cmd: SubmitIndexOrder) -> Refusal | None:
        reason = RejectReason
        if (cmd.account, cmd.client_order_id) in self._order_ids:
            return Refusal(reason.DUPLICATE_ORDER_ID,
                           f"order id {cmd.client_order_id} is already used by this account")
        index = self.indexes.get(cmd.index)
        if index is None:
            return Refusal(reason.UNKNOWN_INDEX, f"unknown index {cmd.index}; known: "
                           + ", ".join(sorted(self.indexes)))
        if cmd.side is not Side.BUY:
            return Refusal(reason.UNSUPPORTED_SIDE, "only buy orders are supported")
        if cmd.currency is not None and cmd.currency != index.collateral:
            return Refusal(reason.WRONG_CURRENCY,
                           f"{index.symbol} is bought with {index.collateral}, not {cmd.currency}")
        decimals = self.collaterals[index.collateral].decimals
        refusal = amount_refusal(cmd.collateral, decimals, index.collateral, reason)
        if refusal:
            return refusal
        refusal = self._minimum_refusal(index, cmd.collateral, reason)
        if refusal:
            return refusal
        if cmd.max_price is not None and (amount_problem(cmd.max_price) or cmd.max_price <= 0):
            problem = amount_problem(cmd.max_price) or f"must be > 0, got {cmd.max_price}"
            return Refusal(reason.INVALID_PRICE, f"maximum price {problem}")
        if cmd.expire_at is not None and cmd.expire_at <= cmd.ts:
            return Refusal(reason.ALREADY_EXPIRED, "expiry time is not in the future")
        bound = self.custody.bound_wallet(cmd.account)
        if cmd.wallet is not None and bound is not None and cmd.wallet.lower() != bound.lower():
            return Refusal(reason.WRONG_WALLET, f"the vault charges and mints to this account's "
                           f"wallet {bound}; leave WalletAddress out or give that one")
        doubt = self.custody.in_doubt(cmd.account)
        if doubt is not None:
            fact_id, gone = doubt
            return Refusal(reason.ACCOUNT_IN_DOUBT, (
                f"the {gone.kind.replace('_', ' ')} {fact_id} of {plain(gone.amount)} "
                f"{gone.asset} left the chain in a reorganisation; this account's orders wait "
                "until it is mined again or an operator resolves it"))
        available = self.ledger.balance(cmd.account, index.collateral).available
        if cmd.collateral > available:
            reading = ("; the service has just started and is still reading the vault's "
                       "deposits up to the chain's head: send it again in a moment"
                       if self.custody.reading else "")
            return Refusal(reason.INSUFFICIENT_COLLATERAL,
                           f"{cmd.collateral} {index.collateral} wanted, {available} available"
                           + reading)
        return None

    def _minimum_refusal(self, index: Index, collateral: Decimal,
                         reason: type[RejectReason | CancelRejectReason]) -> Refusal | None:
        """An order must be able to buy the index's smallest tradable quantity on its own at
        today's books and exchange filters, so that it never waits for company it may not
        get; without a book for every asset only ``min_order_collateral`` applies."""
        asset, least = index.collateral, self.params.min_order_collateral
        if collateral < least:
            return Refusal(reason.BELOW_MINIMUM, f"the minimum order is {plain(least)} {asset}")
        decimals = self.collaterals[asset].decimals
        cost = smallest_buy_cost(index, self.markets(), self.params, min_fill_value(decimals))
        if cost is None:
            return None
        if not within_caps(cost, self.params):
            return Refusal(reason.NOT_TRADABLE, (
                f"{index.symbol} cannot be bought at today's prices within the caps: its "
                f"smallest tradable quantity costs {plain(ceil_decimals(cost, decimals))} "
                f"{asset}, more than one order may engage in a batch "
                f"({plain(one_order_cap(self.params))} {asset} with the fee reserve)"))
        if collateral >= cost:
            return None
        return Refusal(reason.BELOW_MINIMUM, (
            f"the smallest {index.symbol} order at today's prices is "
            f"{plain(ceil_decimals(cost, decimals))} {asset}: less cannot buy the index's "
            "smallest tradable quantity (the exchange's minimum quantities and notionals) "
            "with the fee reserve"))

    def _cancel(self, cmd: CancelIndexOrder) -> Events:
        order = self._changeable(cmd.account, cmd.client_order_id, cmd.request_id)
        if isinstance(order, Refusal):
            return [self._cancel_rejected(cmd.account, cmd.client_order_id, order,
                                          cmd.request_id)]
        self._register_request(order, cmd.request_id)
        return self.end_order(order, OrderStatus.CANCELED, cmd.request_id,
                               "canceled at the user's request")

    def _expire(self, cmd: ExpireIndexOrder) -> Events:
        order = self._changeable(cmd.account, cmd.client_order_id)
        if isinstance(order, Refusal):
            return [self._cancel_rejected(cmd.account, cmd.client_order_id, order)]
        return self.end_order(order, OrderStatus.EXPIRED,
                               reason=f"expired: {cmd.reason or 'ended by the operator'}")

    def end_order(self, order: IndexOrder, status: OrderStatus, request_id: str = "",
                   reason: str = "") -> Events:
        if order.state is OrderState.READY:
            return self.complete(order, status, request_id, reason)
        order.end_when_settled(status, request_id, reason)
        return [ev.IndexOrderEndPending(order.id, status, order.snapshot(), request_id)]

    def _changeable(self, account: str, client_order_id: str,
                    request_id: str = "") -> IndexOrder | Refusal:
        """The order, if it can still be cancelled, reduced or expired; else why not."""
        if request_id and (account, request_id) in self._order_ids:
            return Refusal(CancelRejectReason.DUPLICATE_REQUEST_ID,
                           f"request id {request_id} is already used by this account")
        return changeable(self.order(account, client_order_id), client_order_id)

    def _register_request(self, order: IndexOrder, request_id: str) -> None:
        """An accepted request's id names the order from now on, and is used up."""
        if request_id:
            self._order_ids[(order.account, request_id)] = order.id

    def _cancel_rejected(self, account: str, client_order_id: str, refusal: Refusal,
                         request_id: str = "") -> ev.CancelRejected:
        order = self.order(account, client_order_id)
        return ev.CancelRejected(account, client_order_id, CancelRejectReason(refusal.reason),
                                 refusal.text, None if order is None else order.snapshot(),
                                 request_id)

    def balance_of(self, order: IndexOrder) -> Balance:
        return self.ledger.balance(order.account, order.collateral_asset)

    def _reduce(self, cmd: ReduceIndexOrder) -> Events:
        order = self._changeable(cmd.account, cmd.client_order_id, cmd.request_id)
        if not isinstance(order, Refusal):
            order = self.reduce_refusal(order, cmd.collateral) or order
        if isinstance(order, Refusal):
            return [self._cancel_rejected(cmd.account, cmd.client_order_id, order,
                                          cmd.request_id)]
        self._register_request(order, cmd.request_id)
        if cmd.request_id:
            order.latest_request_id = cmd.request_id
        return self.reduce(order, cmd.collateral, cmd.request_id)

    def reduce(self, order: IndexOrder, collateral: Decimal, request_id: str = "",
               reason: str = "") -> Events:
        """Lower the order's total to ``collateral`` (``reduce_refusal`` allows it)."""
        released = order.collateral - collateral
        order.collateral = collateral
        self.ledger.release(order.account, order.collateral_asset, released)
        events: Events = [
            ev.IndexOrderReduced(order.id, order.collateral, released, order.snapshot(),
                                 request_id, reason),
            ev.CollateralReleased(order.account, order.collateral_asset, released, order.id,
                                  self.balance_of(order)),
        ]
        if order.batch_id is None:
            events += settlement.complete_if_done(self, order, {})
        return events

    def reduce_refusal(self, order: IndexOrder, collateral: Decimal) -> Refusal | None:
        decimals = self.collaterals[order.collateral_asset].decimals
        refusal = (amount_refusal(collateral, decimals, order.collateral_asset,
                                  CancelRejectReason)
                   or reduction_refusal(order, collateral,
                                        order.spent + self._engaged_budget(order)))
        if refusal or order.filled_units:
            return refusal
        # Without fills, the order must still be one that could be bought on its own.
        return self._minimum_refusal(self.indexes[order.index], collateral, CancelRejectReason)

    def _engaged_budget(self, order: IndexOrder) -> Decimal:
        """The most the order's batch in flight may still charge it."""
        if order.batch_id is None:
            return ZERO
        batch = self.batches[order.batch_id]
        at_limits = batch.engagements[order.id] * batch.index_prices[order.index]
        return min(order.remaining, at_limits * (1 + self.params.fee_reserve))

    def complete(self, order: IndexOrder, status: OrderStatus, request_id: str = "",
                  reason: str = "") -> Events:
        """Close the order: release every unspent unit, ask for its mint once."""
        order.close(status)
        del self._open[order.id]
        self.ledger.release(order.account, order.collateral_asset, order.released)
        events: Events = [ev.IndexOrderCompleted(order.id, status, order.filled_units,
                                                 order.spent, order.released, order.snapshot(),
                                                 request_id, reason)]
        if order.released:
            events.append(ev.CollateralReleased(order.account, order.collateral_asset,
                                                order.released, order.id, self.balance_of(order)))
        return events + minting.requested(self, order)

    # --- quotes ----------------------------------------------------------------------------

    def _quote(self, cmd: RequestQuote) -> Events:
        index = self.indexes.get(cmd.index)
        if index is None:
            return [ev.QuoteRejected(cmd.quote_id, cmd.index, f"unknown index {cmd.index}")]
        decimals = self.collaterals[index.collateral].decimals
        refusal = amount_refusal(cmd.collateral, decimals, index.collateral, RejectReason)
        if refusal:
            return [ev.QuoteRejected(cmd.quote_id, cmd.index, refusal.text)]
        free = {a: self.inventory.free_quantity(a) for a in index.assets}
        priced = quote(index, cmd.collateral, self.markets(), free, self.params)
        if priced is None:
            return [ev.QuoteRejected(cmd.quote_id, cmd.index,
                                     f"no ask price for every asset of {cmd.index}")]
        price, units = priced
        return [ev.QuoteIssued(cmd.quote_id, cmd.index, cmd.collateral, price, units)]

    # --- batches ---------------------------------------------------------------------------

    def _plan(self, cmd: PlanBatch) -> Events:
        # Prices move: a filled order may have been left unable to buy a step since it settled.
        events: Events = []
        prices: settlement.IndexPrices = {}
        for filled in [o for o in self._open.values() if o.is_ready and o.filled_units]:
            events += settlement.complete_if_done(self, filled, prices)
        ready = [o for o in self._open.values() if o.is_ready]
        plan = self._choose(ready)
        batch = None if isinstance(plan, Unplanned) else self._start(plan, cmd.ts, events)
        # What the plan did not take, and cannot be bought alone, waits for company so long.
        events += settlement.bound_waits(self, [o for o in ready if o.is_ready], cmd.ts)
        if batch is None:
            assert isinstance(plan, Unplanned)
            waiting = sum(1 for o in ready if o.is_ready)
            return [*events, ev.BatchNotPlanned(waiting, plan.buyable, plan.reason)]
        return events + settlement.settle_if_done(self, batch)

    def _choose(self, ready: list[IndexOrder]) -> BatchPlan | Unplanned:
        """The next batch of the ready orders (``planning.choose_batch``); changes nothing."""
        candidates = [Candidate(o.id, self.indexes[o.index], o.remaining, o.max_price)
                      for o in ready]
        assets = {a for symbol in {o.index for o in ready} for a in self.indexes[symbol].assets}
        free = {a: self.inventory.free_quantity(a) for a in assets}
        room = self.params.max_inflight_notional - self.inflight_notional()
        smallest = {a: min_fill_value(self.collaterals[a].decimals)
                    for a in {o.collateral_asset for o in ready}}
        return choose_batch(candidates, self.markets(), free, self.params, room, smallest,
                            self.last_served)

    def _start(self, plan: BatchPlan, ts: int, events: Events) -> Batch:
        """Engage the plan's orders and hold its inventory in a new batch; ask for its asset
        orders (appended to ``events``)."""
        batch = Batch(len(self.batches) + 1, ts, {e.order_id: e.units for e in plan.engagements},
                      dict(plan.index_prices), dict(plan.inventory_used))
        self.batches[batch.id] = batch
        self.last_served.update(dict.fromkeys(plan.index_prices, batch.id))
        for order_id in batch.engagements:
            self.orders[order_id].engage(batch.id)
        for asset, quantity in plan.inventory_used.items():
            self.inventory.hold(batch.id, asset, quantity)
        events.append(ev.BatchPlanned(batch.id, plan.engagements,
                                      tuple(sorted(plan.index_prices.items())),
                                      tuple(sorted(plan.inventory_used.items()))))
        for planned in plan.asset_orders:
            number = len(self.asset_orders) + 1
            order = AssetOrder(number, f"{self.client_order_prefix}-{number}", batch.id,
                               planned.asset, planned.symbol, Side.BUY, planned.price,
                               planned.quantity)
            self.asset_orders[order.id] = order
            batch.asset_order_ids.append(order.id)
            events.append(order.requested())
        return batch

    def _book(self, fact: BookUpdated) -> Events:
        asset = self._assets_by_symbol.get(fact.book.symbol)
        if asset is None:
            return [ev.InputIgnored(f"book for unknown symbol {fact.book.symbol}")]
        if not fact.book.is_well_formed():
            return [ev.InputIgnored(f"book {fact.book.symbol}: levels must be positive, below "
                                    f"{MAX_AMOUNT:.0E} and sorted best first")]
        self.books[asset] = fact.book
        return []

    def _accepted(self, fact: AssetOrderAccepted) -> Events:
        order = self.asset_orders.get(fact.asset_order_id)
        if order is None:
            return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
        order.exchange_order_id = fact.exchange_order_id
        return []

    def _filled(self, fact: AssetOrderFilled) -> Events:
        order = self.asset_orders.get(fact.asset_order_id)
        if order is None:
            return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
        lid = lot_id(order.symbol, fact.trade_id)
        if self.inventory.lot(lid) is not None:
            return [ev.InputIgnored(f"trade {lid} already recorded")]
        if not (_sane(fact.price) and _sane(fact.quantity) and _sane(fact.commission, ZERO)) \
                or (fact.commission_asset == order.asset and fact.commission > fact.quantity):
            return [ev.InputIgnored(f"trade {lid}: price, quantity or commission out of range")]
        lot = self._lot(order, fact, lid)
        order.filled += fact.quantity
        self.inventory.open(lot)
        events: Events = [ev.LotOpened(lot.id, lot.asset, order.id, order.batch_id, lot.price,
                                       lot.quantity, lot.fee)]
        if fact.commission and fact.commission_asset not in (order.asset, self.rules[
                order.asset].quote):
            events.append(self._debit_commission(lot, fact))
        batch = self.batches[order.batch_id]
        if batch.settled:  # a trade reported after its batch settled becomes free inventory
            self.inventory.settle(batch.id, ())
            return events
        return events + settlement.settle_if_done(self, batch)

    def _lot(self, order: AssetOrder, fact: AssetOrderFilled, lid: str) -> Lot:
        """A fill as a lot: an asset commission reduces the quantity, any is valued in quote."""
        quantity, fee = fact.quantity, fact.commission
        if fact.commission_asset == order.asset:
            quantity, fee = fact.quantity - fact.commission, fact.commission * fact.price
        elif fact.commission_asset != self.rules[order.asset].quote:
            fee = self._commission_value(fact, self.rules[order.asset].quote) or ZERO
        return Lot(lid, order.asset, order.symbol, fact.trade_id, order.id, order.batch_id,
                   fact.price, quantity, fee, fact.ts)

    def _commission_value(self, fact: AssetOrderFilled, quote: str) -> Decimal | None:
        """A third-asset commission at that asset's best ask in ``quote``, if a book says."""
        rules, book = self.rules.get(fact.commission_asset), self.books.get(
            fact.commission_asset)
        if rules is None or rules.quote != quote or book is None or book.best_ask is None:
            return None
        return fact.commission * book.best_ask

    def _debit_commission(self, lot: Lot, fact: AssetOrderFilled) -> ev.CommissionDebited:
        value = self._commission_value(fact, self.rules[lot.asset].quote)
        held = self.fee_assets.setdefault(fact.commission_asset, FeeAsset())
        held.paid += fact.commission
        if value is None:
            held.unvalued += fact.commission
        return ev.CommissionDebited(lot.id, fact.commission_asset, fact.commission, value,
                                    held.balance)

    def _fund_fee_asset(self, fact: FeeAssetFunded) -> Events:
        if fact.funding_id in self._fundings:
            return [ev.InputIgnored(f"fee asset funding {fact.funding_id} already credited")]
        if not _sane(fact.quantity):
            return [ev.InputIgnored(f"fee asset funding {fact.funding_id}: quantity out of "
                                    "range")]
        self._fundings.add(fact.funding_id)
        held = self.fee_assets.setdefault(fact.asset, FeeAsset())
        held.funded += fact.quantity
        return [ev.FeeAssetCredited(fact.funding_id, fact.asset, fact.quantity, held.balance)]

    def _ended(self, fact: AssetOrderEnded) -> Events:
        order = self.asset_orders.get(fact.asset_order_id)
        if order is None:
            return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
        if order.outcome is not None:
            return [ev.InputIgnored(f"asset order {order.id} already {order.outcome.value}")]
        if not _sane(fact.executed_quantity, ZERO):
            return [ev.InputIgnored(f"asset order {order.id}: executed quantity out of range")]
        order.outcome, order.executed, order.reason = (
            fact.outcome, fact.executed_quantity, fact.reason)
        events: Events = [ev.AssetOrderClosed(order.id, fact.outcome, fact.executed_quantity,
                                              fact.reason)]
        return events + settlement.settle_if_done(self, self.batches[order.batch_id])

    # --- mints and time --------------------------------------------------------------------

    def is_due(self, now: int) -> bool:
        """Whether time ``now`` brings something (``next_due``): a ``ClockTicked`` that brings
        nothing changes nothing."""
        due = self.next_due()
        return due is not None and due <= now

    def next_due(self) -> int | None:
        """The earliest time that brings an order's expiry, the end of a remainder's wait or
        a mint's retry; None while nothing waits for time."""
        times = [t for o in self._open.values() for t in (
            o.expire_at if o.state is not OrderState.ENDING else None,
            o.waits_until if o.is_ready else None) if t is not None]
        times += [t for o in minting.failed_mints(self) if (t := o.mint_retry_at) is not None]
        return min(times, default=None)

    def _expiring(self, now: int) -> list[IndexOrder]:
        return [o for o in self._open.values() if o.expire_at is not None
                and o.expire_at <= now and o.state is not OrderState.ENDING]

    def _waited(self, now: int) -> list[IndexOrder]:
        return [o for o in self._open.values() if o.is_ready and o.waits_until is not None
                and o.waits_until <= now]

    def _tick(self, fact: ClockTicked) -> Events:
        events: Events = []
        for order in self._expiring(fact.ts):
            events += self.end_order(order, OrderStatus.EXPIRED,
                                      reason="expired: its expiry time passed")
        events += settlement.bound_waits(self, self._waited(fact.ts), fact.ts)
        return events + minting.retries_due(self, fact.ts)


# Handlers by input type, on the class rather than each engine, so that an engine's state is
# plain data (it pickles into a snapshot).
_HANDLERS: dict[type[Any], Callable[[Engine, Any], Events]] = {
    SubmitIndexOrder: Engine._submit,
    CancelIndexOrder: Engine._cancel,
    ReduceIndexOrder: Engine._reduce,
    ExpireIndexOrder: Engine._expire,
    RequestQuote: Engine._quote,
    PlanBatch: Engine._plan,
    DepositConfirmed: Engine._deposit,
    BindWallet: custody.bind_wallet,
    VaultDepositConfirmed: custody.deposit_confirmed,
    WithdrawalRequested: custody.withdrawal_requested,
    WithdrawalPaid: custody.withdrawal_paid,
    VaultFactVanished: custody.fact_vanished,
    VaultReadingStarted: custody.reading_started,
    VaultReadThrough: custody.read_through,
    ResolveVanishedFact: custody.resolve_vanished,
    FeeAssetFunded: Engine._fund_fee_asset,
    BookUpdated: Engine._book,
    AssetOrderAccepted: Engine._accepted,
    AssetOrderFilled: Engine._filled,
    AssetOrderEnded: Engine._ended,
    MintConfirmed: minting.confirmed,
    SettlementMoved: minting.moved,
    MintFailed: minting.failed,
    ClockTicked: Engine._tick,
}


def _sane(value: Decimal, low: Decimal | None = None) -> bool:
    """Finite, below the amount bound, and above zero (or at least ``low``)."""
    if not value.is_finite() or value >= MAX_AMOUNT:
        return False
    return value >= low if low is not None else value > 0
