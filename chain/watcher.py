"""The vault's events as the engine's facts: deposits, withdrawal requests and payouts, and the
cancellations of signed orders, once each is confirmed (``confirmations`` blocks on top, or the
node's finalized block).

The watcher reads logs in bounded block ranges from a cursor kept in the journal (public RPCs
refuse unbounded ranges, and eth-tester slows down with them). The cursor is saved only once
the facts of its range are journaled, so a crash re-reads a range at worst: the engine ignores
a fact it has applied. Each fact's id is its transaction's hash and its ordinal among the
vault's events in that transaction, ``0x<hash>:<ordinal>``: the same however often it is read,
and after a reorganisation mines the transaction again at another position in a block.

Nothing is missed: the vault numbers deposits 0, 1, 2, ... with no gaps, so a range whose
deposits do not continue the count is read again (from the range before, if the gap opens
it). For the range that ends at the confirmed head, the vault's ``deposit_count`` at that block
must equal the ids read too; older blocks' state is not asked for, since nodes keep recent
state only (a full node about 128 blocks).

Reorganisations deeper than the confirmations: the cursor keeps the last block of each range
read and its hash (its checkpoints) and the facts read, back to the node's finalized block
(and at least ``keep_blocks``). Before each poll the newest checkpoint's hash is checked; if
it changed, the watcher rewinds to the newest checkpoint still on the chain and reads again.
A fact read before the fork that is not read again by the time the watcher is back where it
was has vanished: it is submitted as ``VaultFactVanished`` (the engine puts the account in
doubt) and logged as an error. A cancellation is not followed so: the engine has ended the
order, which the user asked for, whether or not the call is mined again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, localcontext
from typing import Any

import structlog
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound

from chain.finality import Confirmations, confirmed_head, finalized_block
from chain.records import Records
from solver.core.commands import (
    Input,
    OrderCancelledOnChain,
    VaultDepositConfirmed,
    VaultFact,
    VaultFactVanished,
    WithdrawalPaid,
    WithdrawalRequested,
)
from solver.core.events import Transaction
from solver.core.money import CONTEXT, smallest_units

log = structlog.get_logger(__name__)

KINDS = {"Deposited": VaultFact.DEPOSIT, "WithdrawalRequested": VaultFact.WITHDRAWAL_REQUEST,
         "Withdrawn": VaultFact.PAYOUT}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last block of a range read, its hash, and the next deposit id after it."""

    block: int
    hash: str
    next_deposit_id: int


@dataclass(frozen=True, slots=True)
class ReadFact:
    """A fact submitted, kept while its block could still leave the chain."""

    block: int
    fact_id: str
    kind: VaultFact
    wallet: str
    amount: str
    """exact, as a decimal string"""


@dataclass(frozen=True, slots=True)
class Cursor:
    next_block: int
    next_deposit_id: int = 0
    checkpoints: tuple[Checkpoint, ...] = ()
    recent: tuple[ReadFact, ...] = ()
    doubtful: tuple[ReadFact, ...] = ()
    """Facts read in blocks a reorganisation replaced, not read again yet."""
    recheck_to: int = -1
    """The last block read before the reorganisation: once read again, the doubtful facts
    have vanished."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, saved: str) -> Cursor:
        data = json.loads(saved)
        if "last_block" in data:  # the cursor before checkpoints: its one block read
            last, digest = data.pop("last_block"), data.pop("last_hash")
            data["checkpoints"] = [] if last is None else [
                {"block": last, "hash": digest, "next_deposit_id": data["next_deposit_id"]}]
        return cls(
            data["next_block"], data["next_deposit_id"],
            tuple(Checkpoint(**c) for c in data.get("checkpoints", ())),
            tuple(_read_fact(f) for f in data.get("recent", ())),
            tuple(_read_fact(f) for f in data.get("doubtful", ())),
            data.get("recheck_to", -1))


def _read_fact(data: dict[str, Any]) -> ReadFact:
    return ReadFact(data["block"], data["fact_id"], VaultFact(data["kind"]), data["wallet"],
                    data["amount"])


@dataclass(frozen=True, slots=True)
class WatchSettings:
    confirmations: Confirmations = 2
    max_blocks: int = 500
    """Blocks per log query."""
    poll_s: float = 0.5
    keep_blocks: int = 256
    """Blocks back from the head whose facts are kept to notice them vanish, at least (and
    down to the finalized block)."""


@dataclass(slots=True)
class _Range:
    facts: list[Input] = field(default_factory=list)
    read: list[ReadFact] = field(default_factory=list)
    next_id: int = 0


class VaultWatcher:
    def __init__(self, w3: AsyncWeb3[Any], vault: AsyncContract, asset: str, decimals: int,
                 journal: Records, submit: Callable[[Input], None], clock: Callable[[], int],
                 start_block: int, settings: WatchSettings = WatchSettings()) -> None:
        self.w3, self.vault, self.asset, self.decimals = w3, vault, asset, decimals
        self.journal, self.submit, self.clock = journal, submit, clock
        self.settings = settings
        self._key = f"chain-cursor:{vault.address}"
        saved = journal.record(self._key)
        self.cursor = Cursor.from_json(saved) if saved else Cursor(start_block)
        self.saved = self.cursor
        self._waiting: tuple[Input, Cursor] | None = None
        self._reading = asyncio.Lock()
        self._events = {bytes(HexBytes(getattr(vault.events, name).topic)):
                        getattr(vault.events, name)() for name in (*KINDS, "OrderCancelled")}

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

    async def catch_up(self) -> int:
        """Read up to the confirmed head as it is now, and wait until those facts are
        journaled; that block."""
        target = await confirmed_head(self.w3, self.settings.confirmations)
        while self.saved.next_block <= target:
            async with self._reading:
                await self.poll()
            if self.saved.next_block <= target:
                await asyncio.sleep(0.01)  # the writer journals the last range's facts
        return target

    async def poll_now(self) -> int:
        """Read now, between the rounds of ``run`` (the operator's ``index-solver reconcile``);
        how many facts were submitted."""
        async with self._reading:
            return await self.poll()

    async def poll(self) -> int:
        """Read every confirmed block not read yet; returns how many facts were submitted."""
        if self._waiting is not None:
            return 0  # the last range's facts are not journaled yet
        head = await self.w3.eth.block_number
        safe = await confirmed_head(self.w3, self.settings.confirmations, head)
        await self._check_reorganisation()
        final = await finalized_block(self.w3)
        keep_from = head - self.settings.keep_blocks
        keep_from = keep_from if final is None else min(final, keep_from)
        submitted = 0
        while self.cursor.next_block <= safe and self._waiting is None:
            end = min(self.cursor.next_block + self.settings.max_blocks - 1, safe)
            read = await self._read(self.cursor.next_block, end, end == safe, keep_from)
            if read is None:
                break  # read again next time
            submitted += read
        return submitted

    async def _read(self, start: int, end: int, at_head: bool, keep_from: int) -> int | None:
        """Submit the facts of blocks ``start`` to ``end``; None if they must be read again."""
        found = await self._range(start, end)
        if found is None:
            return None
        if at_head:
            count = await self.vault.functions.deposit_count().call(block_identifier=end)
            if count != found.next_id:
                log.warning("chain deposits missing from the logs: reading the range again",
                            counted=count, read=found.next_id, start=start, end=end)
                return None
        cursor = self._advanced(end, await self._hash(end), found, keep_from)
        self.cursor = cursor
        if not found.facts:
            self._save(cursor)
            return 0
        self._waiting = (found.facts[-1], cursor)  # before submitting: a writer may journal at once
        for fact in found.facts:
            self.submit(fact)
        return len(found.facts)

    async def _range(self, start: int, end: int) -> _Range | None:
        """The facts of blocks ``start`` to ``end``, deposits continuing the count."""
        found = _Range(next_id=self.cursor.next_deposit_id)
        for entry in await self._logs(start, end):
            if entry["event"] == "Deposited":
                deposit_id = int(entry["args"]["deposit_id"])
                if deposit_id < found.next_id:
                    continue  # read before: the engine has it
                if deposit_id > found.next_id:
                    self._gap(found.next_id, deposit_id, start, end)
                    return None
                found.next_id += 1
            fact, read = self._fact(entry)
            found.facts.append(fact)
            if read is not None:
                found.read.append(read)
        return found

    def _gap(self, expected: int, got: int, start: int, end: int) -> None:
        """Deposit ids skip: read again from the range before (a deposit missing at the end
        of the last range shows as a gap at this one's start); each gap goes one range
        further back."""
        checkpoints = self.cursor.checkpoints
        back = len(checkpoints) > 1
        log.warning("chain deposit ids skip: reading again", expected=expected, got=got,
                    start=start, end=end, from_block=checkpoints[-2].block + 1 if back
                    else start)
        if back:
            self.cursor = replace(self.cursor, next_block=checkpoints[-2].block + 1,
                                  next_deposit_id=checkpoints[-2].next_deposit_id,
                                  checkpoints=checkpoints[:-1])

    def _advanced(self, end: int, digest: str, found: _Range, keep_from: int) -> Cursor:
        """The cursor past ``end``; the facts read again are no longer in doubt, and those
        still in doubt once the watcher is back where it was have vanished."""
        cursor, ids = self.cursor, {r.fact_id for r in found.read}
        doubtful = tuple(d for d in cursor.doubtful if d.fact_id not in ids)
        recheck_to = cursor.recheck_to
        if recheck_to >= 0 and end >= recheck_to:
            for gone in doubtful:
                log.error("chain fact vanished in a reorganisation deeper than the "
                          "confirmations", fact_id=gone.fact_id, kind=gone.kind,
                          wallet=gone.wallet, amount=gone.amount, block=gone.block)
                found.facts.append(VaultFactVanished(self.clock(), gone.fact_id, gone.kind,
                                                     gone.wallet, self.asset,
                                                     Decimal(gone.amount)))
            doubtful, recheck_to = (), -1
        known = {r.fact_id for r in cursor.recent} - ids
        recent = tuple(r for r in cursor.recent if r.fact_id in known) + tuple(found.read)
        checkpoints = (*cursor.checkpoints, Checkpoint(end, digest, found.next_id))
        anchor = max((i for i, c in enumerate(checkpoints) if c.block <= keep_from), default=0)
        return Cursor(end + 1, found.next_id, checkpoints[anchor:],
                      tuple(r for r in recent if r.block > keep_from), doubtful, recheck_to)

    async def _logs(self, start: int, end: int) -> list[Any]:
        """The vault's facts in blocks ``start`` to ``end``, in chain order, each with its
        ordinal among the vault's events in its transaction."""
        raw = await self.w3.eth.get_logs({"address": self.vault.address, "fromBlock": start,
                                          "toBlock": end})
        ordinals: dict[bytes, int] = {}
        found = []
        for entry in sorted(raw, key=lambda e: (e["blockNumber"], e["logIndex"])):
            tx = bytes(entry["transactionHash"])
            ordinal = ordinals.get(tx, 0)
            ordinals[tx] = ordinal + 1
            event = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
            if event is None:
                continue
            try:
                found.append({**event.process_log(entry), "ordinal": ordinal})
            except UnicodeDecodeError:
                # the vault takes any bytes as a name to cancel; one that is not text names
                # no order, and must not stop the reading of every deposit after it
                log.warning("chain event with a name that is not UTF-8 skipped",
                            tx="0x" + bytes(entry["transactionHash"]).hex())
        return found

    async def _check_reorganisation(self) -> None:
        """Rewind to the newest checkpoint still on the chain, if the newest is not."""
        cursor = self.cursor
        if not cursor.checkpoints or await self._on_chain(cursor.checkpoints[-1]):
            return
        kept = list(cursor.checkpoints[:-1])
        while kept and not await self._on_chain(kept[-1]):
            kept.pop()
        if not kept:
            log.critical("chain reorganised below every block kept: reading from the oldest",
                         oldest=cursor.checkpoints[0].block)
            kept = [cursor.checkpoints[0]]
        fork = kept[-1]
        doubtful = cursor.doubtful + tuple(r for r in cursor.recent if r.block > fork.block)
        log.error("chain reorganised deeper than the confirmations: reading again",
                  last_read=cursor.checkpoints[-1].block, from_block=fork.block + 1,
                  facts_in_doubt=len(doubtful))
        self.cursor = Cursor(fork.block + 1, fork.next_deposit_id, tuple(kept),
                             tuple(r for r in cursor.recent if r.block <= fork.block),
                             doubtful, max(cursor.recheck_to, cursor.checkpoints[-1].block))

    async def _on_chain(self, checkpoint: Checkpoint) -> bool:
        try:
            return await self._hash(checkpoint.block) == checkpoint.hash
        except BlockNotFound:
            return False

    async def _hash(self, block: int) -> str:
        return bytes((await self.w3.eth.get_block(block))["hash"]).hex()

    def _fact(self, entry: Any) -> tuple[Input, ReadFact | None]:
        """The log as the engine's fact, and as the watcher remembers it (money moved only)."""
        args, name, ts = entry["args"], entry["event"], self.clock()
        fact_id = f"0x{bytes(entry['transactionHash']).hex()}:{entry['ordinal']}"
        if name == "OrderCancelled":
            return OrderCancelledOnChain(ts, fact_id, args["user"], args["cl_ord_id"],
                                         int(args["effective_at"])), None
        amount = from_units(int(args["amount"]), self.decimals)
        read = ReadFact(int(entry["blockNumber"]), fact_id, KINDS[name], args["user"],
                        str(amount))
        if name == "Deposited":
            return VaultDepositConfirmed(ts, fact_id, args["user"], self.asset, amount), read
        if name == "WithdrawalRequested":
            return WithdrawalRequested(ts, fact_id, args["user"], self.asset, amount), read
        return WithdrawalPaid(ts, fact_id, args["user"], self.asset, amount), read

    def journaled_through(self) -> int:
        """The last block whose facts are all journaled."""
        return self.saved.next_block - 1

    def _save(self, cursor: Cursor) -> None:
        self.journal.save_record(self._key, cursor.to_json())
        self.saved = cursor


def from_units(amount: int, decimals: int) -> Decimal:
    """A token's integer amount as a Decimal, exactly."""
    with localcontext(CONTEXT):
        return Decimal(amount).scaleb(-decimals)


def to_units(amount: Decimal, decimals: int) -> int:
    """A Decimal on the token's grid as its integer amount; off the grid is an error."""
    units = smallest_units(amount, decimals)
    if units is None:
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return units
