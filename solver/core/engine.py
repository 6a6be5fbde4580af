"""The engine: applies one input at a time to the solver's state and returns what it caused.

Single writer, no I/O, no clock: time comes in on each input and ids are counters in the
state, so replaying the same inputs gives the same state and the same events. The engine
only dispatches: each input's handler (``intake``, ``batching``, ``exchange_facts``,
``vault``, ``minting``, ``schedule``) takes the state (``state.py``, plain data in one place)
and returns its events; what any handler may do to an order is ``actions.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, localcontext
from typing import Any

from solver.core import batching, exchange_facts, intake, minting, schedule, vault
from solver.core import events as ev
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
    MintRefused,
    OrderCancelledOnChain,
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
from solver.core.fitting import Market
from solver.core.inventory import Inventory
from solver.core.ledger import CollateralLedger
from solver.core.market import MarketRules, OrderBook
from solver.core.model import Collateral, Index
from solver.core.money import CONTEXT
from solver.core.orders import IndexOrder
from solver.core.params import SolverParams
from solver.core.state import Events, State


class Engine:
    """The solver's state and the only way to change it: ``apply``."""

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
        self.state = State.of(indexes, markets, params, collaterals, client_order_prefix)
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
                events = handler(self.state, command)
                if self.state.custody.withdrawals:
                    events += vault.follow_up(self.state)
        except Exception as error:  # one input must not stop the writer
            # Handlers check before they change anything, so this is a defect; the journal
            # keeps the input with this event, and replay raises and refuses it the same way.
            events = [ev.InputFailed(f"the engine failed on this input: "
                                      f"{type(error).__name__}: {error}")]
        self._transactions += 1
        envelopes = []
        for event in events:
            self._sequence += 1
            envelopes.append(ev.Envelope(self._sequence, command.ts, event))
        return ev.Transaction(self._transactions, command.ts, command, tuple(envelopes))

    # --- counters --------------------------------------------------------------------------

    @property
    def transactions_applied(self) -> int:
        """The number of the last transaction; the journal holds them all."""
        return self._transactions

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event."""
        return self._sequence

    # --- time ------------------------------------------------------------------------------

    def is_due(self, now: int) -> bool:
        """Whether time ``now`` brings something: a ``ClockTicked`` that brings nothing
        changes nothing."""
        return schedule.is_due(self.state, now)

    def next_due(self) -> int | None:
        """The earliest time that brings an order's expiry, the end of a remainder's wait or
        a mint's retry; None while nothing waits for time."""
        return schedule.next_due(self.state)

    # --- the state, read (adapters learn from events; tests and reports read it) -----------

    @property
    def indexes(self) -> dict[str, Index]:
        return self.state.indexes

    @property
    def rules(self) -> dict[str, MarketRules]:
        return self.state.rules

    @property
    def params(self) -> SolverParams:
        return self.state.params

    @property
    def collaterals(self) -> dict[str, Collateral]:
        return self.state.collaterals

    @property
    def client_order_prefix(self) -> str:
        return self.state.client_order_prefix

    @property
    def books(self) -> dict[str, OrderBook]:
        return self.state.books

    @property
    def ledger(self) -> CollateralLedger:
        return self.state.ledger

    @property
    def inventory(self) -> Inventory:
        return self.state.inventory

    @property
    def orders(self) -> dict[int, IndexOrder]:
        return self.state.orders

    @property
    def batches(self) -> dict[int, Batch]:
        return self.state.batches

    @property
    def asset_orders(self) -> dict[int, AssetOrder]:
        return self.state.asset_orders

    @property
    def last_served(self) -> dict[str, int]:
        return self.state.last_served

    @property
    def deposit_ids(self) -> set[str]:
        return self.state.deposit_ids

    @property
    def custody(self) -> Custody:
        return self.state.custody

    @property
    def fee_assets(self) -> dict[str, FeeAsset]:
        return self.state.fee_assets

    def order(self, account: str, client_order_id: str) -> IndexOrder | None:
        return self.state.order(account, client_order_id)

    def order_names(self) -> list[tuple[tuple[str, str], int]]:
        return self.state.order_names()

    def open_orders(self) -> list[IndexOrder]:
        return self.state.open_orders()

    def inflight_notional(self) -> Decimal:
        return self.state.inflight_notional()

    def markets(self) -> dict[str, Market]:
        return self.state.markets()


# Handlers by input type, apart from any engine, so that an engine's state is plain data (it
# pickles into a snapshot).
_HANDLERS: dict[type[Any], Callable[[State, Any], Events]] = {
    SubmitIndexOrder: intake.submit,
    CancelIndexOrder: intake.cancel,
    ReduceIndexOrder: intake.reduce_order,
    ExpireIndexOrder: intake.expire,
    RequestQuote: intake.quote_index,
    PlanBatch: batching.plan,
    DepositConfirmed: vault.deposit,
    BindWallet: vault.bind_wallet,
    VaultDepositConfirmed: vault.deposit_confirmed,
    WithdrawalRequested: vault.withdrawal_requested,
    WithdrawalPaid: vault.withdrawal_paid,
    OrderCancelledOnChain: vault.order_cancelled,
    VaultFactVanished: vault.fact_vanished,
    VaultReadingStarted: vault.reading_started,
    VaultReadThrough: vault.read_through,
    ResolveVanishedFact: vault.resolve_vanished,
    FeeAssetFunded: exchange_facts.fee_asset_funded,
    BookUpdated: exchange_facts.book_updated,
    AssetOrderAccepted: exchange_facts.accepted,
    AssetOrderFilled: exchange_facts.filled,
    AssetOrderEnded: exchange_facts.ended,
    MintConfirmed: minting.confirmed,
    SettlementMoved: minting.moved,
    MintFailed: minting.failed,
    MintRefused: minting.refused,
    ClockTicked: schedule.tick,
}
