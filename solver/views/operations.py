"""What an operator asks of the running service, kept from the events: orders by status,
batches in flight, since when plans have found no batch and why, when the exchange and the
chain last told the engine something, deposits held for wallets no account has, and every
account's collateral.

A bus observer. Unlike the position store it does nothing per transaction beyond its own
counts: the immutable ``OperationsView`` is made when asked for (an operator's request, a
scrape), which is always between two transactions, since the bus publishes a transaction
without yielding to the loop those requests run on. At start it is fed the journal's
transactions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar

from solver.core import commands as cmd
from solver.core import events as ev
from solver.core.ledger import Balance
from solver.core.money import ZERO
from solver.core.orders import OrderSnapshot

EXCHANGE_FACTS = (cmd.AssetOrderAccepted, cmd.AssetOrderFilled, cmd.AssetOrderEnded,
                  cmd.FeeAssetFunded)
BALANCE_EVENTS = (ev.CollateralDeposited, ev.CollateralReserved, ev.CollateralSpent,
                  ev.CollateralReleased, ev.CollateralSetAside, ev.CollateralGivenBack,
                  ev.CollateralWithdrawn, ev.CollateralRefunded)
CHAIN_FACTS = (cmd.VaultDepositConfirmed, cmd.WithdrawalRequested, cmd.WithdrawalPaid,
               cmd.OrderCancelledOnChain, cmd.MintConfirmed, cmd.MintFailed,
               cmd.VaultFactVanished, cmd.SettlementMoved)


@dataclass(frozen=True, slots=True)
class Held:
    wallet: str
    asset: str
    amount: Decimal
    deposit_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotPlanned:
    """Plans have found no batch since ``since`` (ms): the last one's orders waiting, those of
    them that could be bought alone, and why none was planned."""

    since: int
    waiting: int
    buyable: int
    reason: str


@dataclass(frozen=True, slots=True)
class OperationsView:
    transaction: int
    """The last transaction this view includes."""
    orders: Mapping[str, int] = field(default_factory=dict)
    """Orders by status (``open``, ``filled``, ...); ``ending``: open, a cancel or expiry
    waiting for its batch."""
    batches_in_flight: tuple[int, ...] = ()
    last_exchange_ts: int | None = None
    """When the engine last applied a fact from the exchange's execution (ms)."""
    exchange_silent_since: int | None = None
    """While batches are in flight: since when the exchange has said nothing (its last fact,
    or the first of those batches, whichever is later; ms). None with none in flight."""
    last_chain_ts: int | None = None
    """When the engine last applied a fact from the chain (ms)."""
    held: tuple[Held, ...] = ()
    """What wallets no account has deposited, until they withdraw it or become an account's
    (which credits it)."""
    balances: Mapping[tuple[str, str], Balance] = field(default_factory=dict)
    """Per (account, asset)."""
    not_planned: NotPlanned | None = None
    """None while the last plan found a batch, or no order is open."""
    vanished: Mapping[str, ev.AccountInDoubt] = field(default_factory=dict)
    """fact id -> a vault event applied and then taken off the chain by a deep
    reorganisation, until it is mined again or an operator resolves it."""


class OperationsStore:
    NAME: ClassVar[str] = "operations"
    """What it is checkpointed under with the engine's snapshots (``Runtime.resume``)."""

    def __init__(self) -> None:
        self._view = OperationsView(0)
        self._transaction = 0
        self._status: dict[int, str] = {}
        self._counts: Counter[str] = Counter()
        self._batches: set[int] = set()
        self._held: dict[tuple[str, str], Held] = {}
        self._balances: dict[tuple[str, str], Balance] = {}
        self._last_exchange: int | None = None
        self._in_flight_since: int | None = None
        self._last_chain: int | None = None
        self._not_planned: NotPlanned | None = None
        self._vanished: dict[str, ev.AccountInDoubt] = {}

    def view(self) -> OperationsView:
        """The state as of the last completed transaction."""
        if self._view.transaction != self._transaction:
            self._view = OperationsView(
                self._transaction, MappingProxyType(dict(sorted((+self._counts).items()))),
                tuple(sorted(self._batches)), self._last_exchange, self._silent_since(),
                self._last_chain,
                tuple(h for h in self._held.values() if h.amount),
                MappingProxyType(dict(self._balances)),
                self._not_planned if self._counts["open"] else None,
                MappingProxyType(dict(self._vanished)))
        return self._view

    def _silent_since(self) -> int | None:
        if not self._batches or self._in_flight_since is None:
            return None
        return max(self._in_flight_since, self._last_exchange or self._in_flight_since)

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        if isinstance(transaction.input, EXCHANGE_FACTS):
            self._last_exchange = transaction.input.ts
        elif isinstance(transaction.input, CHAIN_FACTS):
            self._last_chain = transaction.input.ts
        for envelope in transaction.events:
            self._follow(envelope.event, envelope.ts)
        self._transaction = transaction.number

    def _follow(self, event: ev.Event, ts: int) -> None:
        order: OrderSnapshot | None = getattr(event, "order", None)
        if order is not None:
            self._count(order)
        if isinstance(event, BALANCE_EVENTS):
            self._balances[(event.account, event.asset)] = event.balance
        match event:
            case ev.BatchPlanned():
                if not self._batches:
                    self._in_flight_since = ts
                self._batches.add(event.batch_id)
                self._not_planned = None
            case ev.BatchNotPlanned() if event.waiting:
                since = self._not_planned.since if self._not_planned else ts
                self._not_planned = NotPlanned(since, event.waiting, event.buyable,
                                               event.reason)
            case ev.BatchNotPlanned():
                self._not_planned = None
            case ev.BatchSettled():
                self._batches.discard(event.batch_id)
            case ev.DepositHeld():
                self._hold(event.wallet, event.asset, event.amount, event.deposit_id)
            case ev.HeldDepositsWithdrawn():
                self._hold(event.wallet, event.asset, -event.amount)
            case ev.AccountInDoubt():
                self._vanished[event.fact_id] = event
            case ev.VanishedFactReappeared():
                self._vanished.pop(event.fact_id, None)
            case ev.VanishedFactResolved():
                gone = self._vanished.pop(event.fact_id, None)
                if gone is not None and gone.account is None:
                    sign = -1 if gone.kind is cmd.VaultFact.DEPOSIT else 1
                    self._hold(gone.wallet, gone.asset, sign * gone.amount)
            case ev.WalletBound():  # what the wallet deposited is credited to the account
                self._held = {k: h for k, h in self._held.items()
                              if k[0] != event.wallet.lower()}

    def _hold(self, wallet: str, asset: str, amount: Decimal, deposit_id: str = "") -> None:
        key = (wallet.lower(), asset)
        held = self._held.get(key, Held(wallet, asset, ZERO, ()))
        self._held[key] = Held(held.wallet, asset, held.amount + amount,
                               held.deposit_ids + ((deposit_id,) if deposit_id else ()))

    def _count(self, order: OrderSnapshot) -> None:
        status = "ending" if order.is_open and order.ending is not None else order.status.value
        before = self._status.get(order.order_id)
        if before != status:
            if before is not None:
                self._counts[before] -= 1
            self._counts[status] += 1
            self._status[order.order_id] = status
