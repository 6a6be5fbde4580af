"""The ledger and the vault, checked against each other after every confirmed settlement.

What the vault holds for a user is what they deposited, less what they took back, less what
settlements charged. The reconciler keeps the ledger's side from the events (deposits credited,
payouts, orders minted, each with its amounts) and reads the vault's at the node's latest
block. Deposits and payouts the watcher has not journaled yet (in blocks after the last one it
did, below its confirmations) are read from the vault's logs and taken off, and the
settlements mined that the engine has not applied yet (several are in flight at once) are
added back, so the two sides describe the same moment. A difference is logged as an error,
counted, and kept for the operator's status (``disagreements``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import structlog
from prometheus_client import Counter
from web3 import AsyncWeb3
from web3.contract import AsyncContract

from chain.ledger_side import LedgerSide
from chain.watcher import from_units
from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.money import ZERO
from solver.plumbing.metrics import RECONCILIATION_SECONDS

log = structlog.get_logger(__name__)

WAIT_FOR_WRITER_S = 5.0
MISMATCHES = Counter("solver_reconciliation_mismatches_total",
                     "Checks where the vault and the ledger disagreed")


class Unapplied(NamedTuple):
    """A settlement of the account's the engine has not applied: what it charges, whether it
    has been sent by now (only a settlement sent may be mined, so the vault is asked about
    those alone), and whether the vault had settled it by a block."""

    charge: Decimal
    sent: Callable[[], bool]
    settled_by: Callable[[int], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Check:
    account: str
    block: int
    vault: Decimal
    ledger: Decimal

    @property
    def agrees(self) -> bool:
        return self.vault == self.ledger


class VaultReconciler:
    def __init__(self, w3: AsyncWeb3[Any], vault: AsyncContract, asset: str, decimals: int,
                 wallets: Mapping[str, str], journaled_through: Callable[[], int],
                 ledger_side: LedgerSide,
                 unapplied: Callable[[str], list[Unapplied]] = lambda _: []
                 ) -> None:
        """``ledger_side``: the ledger's side from the events, already following the bus;
        ``unapplied``: the settlements of an account sent and not yet applied by the engine
        (order key, charge)."""
        self.w3, self.vault, self.asset, self.decimals = w3, vault, asset, decimals
        self.wallets = dict(wallets)
        self.journaled_through, self.unapplied = journaled_through, unapplied
        self.ledger_side = ledger_side
        self.checks: dict[str, Check] = {}
        """The last check per account."""
        self.disagreements: list[Check] = []
        self._seen = asyncio.Event()

    def attach(self, bus: EventBus) -> None:
        """Wake the checks waiting for a settlement to be applied."""
        bus.subscribe(ev.IndexOrderMinted, lambda _: self._seen.set())

    async def after_settlement(self, order_id: int, account: str) -> Check | None:
        """Once the writer has applied the settlement, check the account."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_WRITER_S
        while order_id not in self.ledger_side.minted and loop.time() < deadline:
            self._seen.clear()
            try:
                await asyncio.wait_for(self._seen.wait(), deadline - loop.time())
            except TimeoutError:
                break
        if order_id not in self.ledger_side.minted:
            log.warning("chain reconciliation skipped: the settlement is not applied yet",
                        order_id=order_id)
            return None
        return await self.check(account)

    async def check_all(self) -> list[Check]:
        """Check every account that has a wallet (the operator's ``index-solver reconcile``)."""
        return [c for account in sorted(self.wallets) if (c := await self.check(account))]

    async def check(self, account: str) -> Check | None:
        wallet = self.wallets.get(account)
        if wallet is None:
            return None
        with RECONCILIATION_SECONDS.labels("chain").time():
            return await self._check(account, wallet)

    async def _check(self, account: str, wallet: str) -> Check:
        # The ledger's side and what it does not include yet, taken at one moment.
        ledger = self.ledger_side.held(account, self.asset)
        after = self.journaled_through() + 1
        unapplied = self.unapplied(account)
        latest = await self.w3.eth.block_number
        held = from_units(await self.vault.functions.balances(wallet).call(
            block_identifier=latest), self.decimals)
        in_transit = ZERO
        if after <= latest:
            for name, sign in (("Deposited", 1), ("Withdrawn", -1)):
                for entry in await getattr(self.vault.events, name)().get_logs(
                        from_block=after, to_block=latest, argument_filters={"user": wallet}):
                    in_transit += sign * from_units(int(entry["args"]["amount"]),
                                                    self.decimals)
        for pending in unapplied:  # sent by now, after ``latest``: all that can be mined by it
            if pending.sent() and await pending.settled_by(latest):
                in_transit -= pending.charge
        check = Check(account, latest, held - in_transit, ledger)
        self.checks[account] = check
        if not check.agrees:
            MISMATCHES.inc()
            self.disagreements.append(check)
            log.error("chain vault and ledger disagree", account=account, wallet=wallet,
                      block=latest, vault=str(check.vault), ledger=str(check.ledger))
        return check
