"""The vault's events as the engine's facts: deposits, withdrawal requests and payouts, once
each has ``confirmations`` blocks on top of it.

The watcher reads logs in bounded block ranges from a cursor kept in the journal (public RPCs
refuse unbounded ranges, and eth-tester slows down with them). The cursor is saved only once
the facts of its range are journaled, so a crash re-reads a range at worst: the engine ignores
a fact it has applied (each carries its log's id: transaction hash and log index).

Nothing is missed: the vault numbers deposits 0, 1, 2, ... with no gaps, so a range whose
deposits do not continue the count, or end short of the vault's ``deposit_count`` at the
range's last block, is read again. A reorganisation deeper than ``confirmations`` (the hash
of the last block read has changed) is logged as an error and the blocks since are read again;
a deposit that vanished before its confirmations was never credited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal, localcontext
from typing import Any

import structlog
from web3 import AsyncWeb3
from web3.contract import AsyncContract

from chain.records import Records
from solver.core.commands import (
    Input,
    VaultDepositConfirmed,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.events import Transaction
from solver.core.money import CONTEXT

log = structlog.get_logger(__name__)

EVENTS = ("Deposited", "WithdrawalRequested", "Withdrawn")


@dataclass(frozen=True, slots=True)
class Cursor:
    next_block: int
    next_deposit_id: int = 0
    last_block: int | None = None
    last_hash: str | None = None
    """The last block read and its hash, to notice a reorganisation below the confirmations."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    confirmations: int = 2
    max_blocks: int = 500
    """Blocks per log query."""
    poll_s: float = 0.5


class VaultWatcher:
    def __init__(self, w3: AsyncWeb3[Any], vault: AsyncContract, asset: str, decimals: int,
                 journal: Records, submit: Callable[[Input], None], clock: Callable[[], int],
                 start_block: int, settings: WatchSettings = WatchSettings()) -> None:
        self.w3, self.vault, self.asset, self.decimals = w3, vault, asset, decimals
        self.journal, self.submit, self.clock = journal, submit, clock
        self.settings = settings
        self._key = f"chain-cursor:{vault.address}"
        saved = journal.record(self._key)
        self.cursor = Cursor(**json.loads(saved)) if saved else Cursor(start_block)
        self.saved = self.cursor
        self._waiting: tuple[Input, Cursor] | None = None
        self._reading = asyncio.Lock()

    # --- the bus tells when a range's facts are journaled ----------------------------------

    def transaction_began(self, transaction: Transaction) -> None:
        pass

    def transaction_ended(self, transaction: Transaction) -> None:
        if self._waiting is not None and transaction.input is self._waiting[0]:
            self._save(self._waiting[1])
            self._waiting = None

    # --- reading ------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                async with self._reading:
                    await self.poll()
            except Exception:  # the node may be away: read again on the next round
                log.exception("chain poll failed", vault=self.vault.address)
            await asyncio.sleep(self.settings.poll_s)

    async def poll_now(self) -> int:
        """Read now, between the rounds of ``run`` (the operator's ``index-solver reconcile``);
        how many facts were submitted."""
        async with self._reading:
            return await self.poll()

    async def poll(self) -> int:
        """Read every confirmed block not read yet; returns how many facts were submitted."""
        if self._waiting is not None:
            return 0  # the last range's facts are not journaled yet
        safe = await self.w3.eth.block_number - self.settings.confirmations
        await self._check_reorganisation()
        submitted = 0
        while self.cursor.next_block <= safe and self._waiting is None:
            end = min(self.cursor.next_block + self.settings.max_blocks - 1, safe)
            read = await self._read(self.cursor.next_block, end)
            if read is None:
                break  # read that range again next time
            submitted += read
        return submitted

    async def _read(self, start: int, end: int) -> int | None:
        """Submit the facts of blocks ``start`` to ``end``; None if they must be read again."""
        logs = sorted(await self._logs(start, end),
                      key=lambda e: (e["blockNumber"], e["logIndex"]))
        facts, next_id = [], self.cursor.next_deposit_id
        for entry in logs:
            if entry["event"] == "Deposited":
                deposit_id = int(entry["args"]["deposit_id"])
                if deposit_id < next_id:
                    continue  # read before: the engine has it
                if deposit_id > next_id:
                    log.warning("chain deposit ids skip: reading the range again",
                                expected=next_id, got=deposit_id, start=start, end=end)
                    return None
                next_id += 1
            facts.append(self._fact(entry))
        count = await self.vault.functions.deposit_count().call(block_identifier=end)
        if count != next_id:
            log.warning("chain deposits missing from the logs: reading the range again",
                        counted=count, read=next_id, start=start, end=end)
            return None
        block = await self.w3.eth.get_block(end)
        cursor = Cursor(end + 1, next_id, end, bytes(block["hash"]).hex())
        self.cursor = cursor
        if not facts:
            self._save(cursor)
            return 0
        self._waiting = (facts[-1], cursor)  # before submitting: a writer may journal at once
        for fact in facts:
            self.submit(fact)
        return len(facts)

    async def _logs(self, start: int, end: int) -> list[Any]:
        found: list[Any] = []
        for name in EVENTS:
            found += await getattr(self.vault.events, name)().get_logs(from_block=start,
                                                                      to_block=end)
        return found

    async def _check_reorganisation(self) -> None:
        cursor = self.cursor
        if cursor.last_block is None:
            return
        block = await self.w3.eth.get_block(cursor.last_block)
        if bytes(block["hash"]).hex() == cursor.last_hash:
            return
        back = max(cursor.last_block - self.settings.confirmations, 0)
        log.error("chain reorganised below the confirmations: reading again",
                  block=cursor.last_block, from_block=back)
        self.cursor = replace(cursor, next_block=back, last_block=None, last_hash=None)

    def _fact(self, entry: Any) -> Input:
        """The log as the engine's fact; its id (``0x<transaction hash>:<log index>``) is
        unique on the chain, so a log read twice is applied once."""
        args, name, ts = entry["args"], entry["event"], self.clock()
        amount = from_units(int(args["amount"]), self.decimals)
        log_id = f"0x{bytes(entry['transactionHash']).hex()}:{entry['logIndex']}"
        if name == "Deposited":
            return VaultDepositConfirmed(ts, log_id, args["user"], self.asset, amount)
        if name == "WithdrawalRequested":
            return WithdrawalRequested(ts, log_id, args["user"], self.asset, amount)
        return WithdrawalPaid(ts, log_id, args["user"], self.asset, amount)

    def journaled_through(self) -> int:
        """The last block whose facts are all journaled."""
        return self.saved.next_block - 1

    def _save(self, cursor: Cursor) -> None:
        self.journal.save_record(self._key, json.dumps(asdict(cursor)))
        self.saved = cursor


def from_units(amount: int, decimals: int) -> Decimal:
    """A token's integer amount as a Decimal, exactly."""
    with localcontext(CONTEXT):
        return Decimal(amount).scaleb(-decimals)


def to_units(amount: Decimal, decimals: int) -> int:
    """A Decimal on the token's grid as its integer amount; off the grid is an error."""
    with localcontext(CONTEXT):
        scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(scaled)
