"""Mints are settlements: the vault charges the order's collateral and mints its units in one
transaction, exactly once per order.

Each order settles as its user's wallet signed it (``MintsWaiting.terms``), with others in
one transaction: the vault's ``settle_batch`` checks each against its signature, and settles
nothing else (an order without terms fails its mint with that reason; a service on a chain
takes signed orders only). The unit of work is a job: one transaction's orders, its nonce and
the hashes of its transactions. For each job the settler:

1. gathers it once a worker is free: the orders whose mints were asked for (``MintRequested``,
   ``MintRetryRequested``) meanwhile share it, up to ``batch_size``, and a lone one waits at
   most ``gather_s`` for company, so the jobs grow with the load; a retry of an order asks the
   vault first whether it is settled already, and reports that transaction if so;
2. takes a nonce and writes the job to the journal **before** sending; the job keeps that nonce
   and its orders for its whole life, so at most one of its transactions is ever mined, and
   the vault settles each order once whatever is sent (a fill applies only if what was
   charged against the order is still what the settlement says: nothing, as each order
   settles once);
3. polls for the receipt; a transaction not mined in time is replaced (same nonce, fees raised
   by an eighth, which public nodes require) and the new hash recorded before it is sent;
4. with the receipt the worker is free for the next job: each order the vault settled
   (``OrderSettled``) is followed to its confirmations apart, each it skipped
   (``SettlementSkipped``) is a ``MintFailed`` with the vault's reason, or ``MintRefused``
   when the reason holds for every attempt (``FOR_GOOD``: the deadline passed, cancelled,
   ...); "already settled" is looked up and reported as settled; a reverted or unmined job
   fails its orders (the engine retries; an unmined job is resumed with its nonce). Once
   confirmed (``confirmations`` blocks on top, or finalized) and its block still on the
   chain, ``MintConfirmed`` is reported; a block that left the chain sends the orders back to
   be settled again.

Up to ``in_flight`` jobs are sent and mined at once; they sign and send one at a time, so the
nonces reach the node in order. A restart resumes every job the journal holds (its
transactions' receipts first, then the same nonce), and the orders whose mint the journal shows
asked for and not confirmed are asked again (``attach``).

Settlements reported are kept (``settled:<order id>``) until their blocks are final: one that
leaves the chain is sent again and, if it lands elsewhere, ``SettlementMoved`` is reported.
``WithdrawalReleaseRequested`` sends the vault's ``release``: it reverts once the user has been
paid, so sending it again is harmless.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any, cast

import structlog
from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.abi import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
)
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound
from web3.types import BlockIdentifier, Nonce

from chain.deployment import ChainDeployment
from chain.finality import Confirmations, confirmed_head, finalized_block
from chain.keys import order_key, signed_order_id
from chain.mints import Mint, MintsWaiting
from chain.reconciler import Unapplied
from chain.records import Records
from chain.watcher import to_units
from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import (
    Input,
    MintConfirmed,
    MintFailed,
    MintRefused,
    SettlementMoved,
)
from solver.core.signed_terms import SignedTerms
from solver.signed_orders import signed_order

log = structlog.get_logger(__name__)

INDEX_TOKEN_DECIMALS = 18
ALREADY_SETTLED = "already settled"
UNSIGNED = "the order is not signed: the vault settles only what a wallet signed"
FOR_GOOD = frozenset({"expired", "cancelled", "bad signature", "above signed collateral",
                      "price above signed limit", "fees above signed bound",
                      "unknown index token", "amount out of range", "zero units or spent",
                      "fees exceed spent"})
"""The vault's reasons that hold for every attempt of a settlement (the order's terms and the
fill do not change): the order's mint is refused for good (``MintRefused``) rather than
retried. "insufficient balance" and "locked for withdrawal" may pass: retried."""
GAS_MARGIN_PERCENT = 120
"""A predicted job's gas limit: what the node's estimate says, and a fifth more (the state may
move before the block: an order skipped at the estimate may settle in it)."""


def refusals() -> tuple[type[Exception], ...]:
    """What a call the contract refuses raises: web3's ContractLogicError, and on the embedded
    chain eth-tester's own TransactionFailed (eth-tester, and py-evm with it, is loaded only
    when that chain is in use: importing it here would cost every start 0.16 s)."""
    tester = sys.modules.get("eth_tester.exceptions")
    failed: type[Exception] | None = getattr(tester, "TransactionFailed", None)
    return (ContractLogicError,) if failed is None else (ContractLogicError, failed)


@dataclass(frozen=True, slots=True)
class SettleSettings:
    confirmations: Confirmations = 2
    receipt_timeout_s: float = 30.0
    poll_s: float = 0.05
    replacements: int = 3
    """Fee-raised replacements of a transaction not mined in time, before giving up."""
    gas_per_order: int = 80_000
    gas_per_job: int = 200_000
    """A job's gas limit at most: ``gas_per_job`` and ``gas_per_order`` for each of its
    orders (an order settles for 48,000 to 71,000 in a batch, whose fixed part is about
    75,000); a new job's is the node's estimate and a fifth
    (``GAS_MARGIN_PERCENT``) when less. Only the gas used is paid, but a block takes
    transactions by their limits: a generous one would keep a batch out of a block it fits
    in. The estimate is the job's prediction too: one execution on the node per job."""
    in_flight: int = 8
    """Jobs worked on at once, each with its own nonce."""
    batch_size: int = 100
    """Signed orders settled in one transaction, at most (the vault takes 128)."""
    gather_s: float = 0.1
    """How long a mint waits for others to share its transaction."""
    final_poll_s: float = 2.0
    """How often the settlements reported are checked to be still on the chain, until
    final."""
    keep_blocks: int = 256
    """Blocks back from the head a settlement reported is checked, at least (and down to the
    finalized block)."""


@dataclass(frozen=True, slots=True)
class Reported:
    """A settlement reported confirmed, kept (in the journal) until its block is final: if it
    leaves the chain, it is sent again."""

    order_id: int
    account: str
    wallet: str
    index: str
    spent: Decimal
    fees: Decimal
    client_order_id: str
    units: Decimal
    tx: str
    block: int
    hash: str
    signed: SignedTerms

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, saved: str) -> Reported:
        data = json.loads(saved)
        for name in ("spent", "fees", "units"):
            data[name] = Decimal(data[name])
        signed = data.pop("signed")
        signed["most"], signed["limit"] = Decimal(signed["most"]), Decimal(signed["limit"])
        return cls(**data, signed=SignedTerms(**signed))


@dataclass(slots=True)
class Job:
    """One transaction's orders: its nonce, taken just before the first is signed and kept
    (recorded with it), and the hashes of what was sent."""

    number: int
    orders: list[int]
    nonce: int | None = None
    txs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Mined:
    """A job's successful receipt, not confirmed yet, and the orders it settled."""

    job: Job
    receipt: Any
    settled: tuple[Mint, ...]


Outcome = MintConfirmed | MintFailed | MintRefused


class Settler:
    def __init__(self, w3: AsyncWeb3[Any], vault: AsyncContract, deployment: ChainDeployment,
                 operator: LocalAccount, journal: Records, submit: Callable[[Input], None],
                 clock: Callable[[], int], order_prefix: str, collateral_decimals: int,
                 mints: MintsWaiting, settings: SettleSettings = SettleSettings()) -> None:
        """``mints``: what the events asked for, already following the bus."""
        self.w3, self.vault, self.deployment = w3, vault, deployment
        self.operator, self.journal, self.submit, self.clock = operator, journal, submit, clock
        self.order_prefix, self.collateral_decimals = order_prefix, collateral_decimals
        self.mints, self.settings = mints, settings
        self.after_confirmed: Callable[[int, str], Awaitable[object]] | None = None
        """Called (order id, account) once per account of a job whose settlements are
        reported confirmed, before its worker takes the next job: the reconciliation."""
        self._asked: asyncio.Queue[Mint] = asyncio.Queue()
        self._work: asyncio.Queue[list[Mint] | ev.WithdrawalReleaseRequested] = \
            asyncio.Queue()
        self._active = 0
        self._gathering = 0
        self._free = asyncio.Semaphore(settings.in_flight)
        """Workers free for a job: a job is gathered when one is."""
        self._next: list[Mint] = []
        """Mints taken while gathering that start jobs of their own."""
        self._settling: set[int] = set()
        self._jobs: dict[int, Job] = {}
        """The jobs alive, by number (their orders may be sent)."""
        self._job_of: dict[int, int] = {}
        self._moved: set[int] = set()
        """Orders whose settlement left the chain: the vault is asked first."""
        self._held: set[int] = set()
        """The nonces of the jobs alive (their transactions may be queued behind a gap, where
        the node's pending count does not see them)."""
        self._sending = asyncio.Lock()
        self._following: set[asyncio.Task[None]] = set()
        """The jobs mined whose confirmations are being waited for, apart from the workers."""
        events = {e["name"]: e for e in vault.abi if e["type"] == "event"}
        self._topics = {name: event_abi_to_log_topic(events[name])
                        for name in ("OrderSettled", "SettlementSkipped")}
        [batch] = [f for f in vault.abi if f.get("name") == "settle_batch"]
        self._settle_batch = (function_abi_to_4byte_selector(batch),
                              get_abi_input_types(batch))
        self._reported: dict[int, Reported] = {}
        self._by_block: dict[int, set[int]] = {}
        for kept in journal.records("settled:").values():
            self._hold(Reported.from_json(kept))
        for saved in journal.records("settlement:").values():  # resumed: a restart
            job = Job(**json.loads(saved))
            self._remember(job)
            if job.nonce is not None:
                self._held.add(job.nonce)

    # --- what to do, from the bus ---------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Take up the mints waiting (those the journal left are asked again: a restart
        resumes every job the journal holds), then follow ``bus``."""
        for mint in self.mints.waiting.values():
            self._asked.put_nowait(mint)
        bus.subscribe(ev.MintRequested, self._mint)
        bus.subscribe(ev.MintRetryRequested, self._retry)
        bus.subscribe(ev.WithdrawalReleaseRequested, self._release)

    def _mint(self, envelope: ev.Envelope[ev.MintRequested]) -> None:
        event = envelope.event
        self._asked.put_nowait(Mint(event.order_id, 1, event.units))

    def _retry(self, envelope: ev.Envelope[ev.MintRetryRequested]) -> None:
        event = envelope.event
        self._asked.put_nowait(Mint(event.order_id, event.attempt, event.units))

    def _release(self, envelope: ev.Envelope[ev.WithdrawalReleaseRequested]) -> None:
        self._work.put_nowait(envelope.event)

    # --- doing it ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Gather jobs and work on ``in_flight`` of them at once, until cancelled."""
        try:
            await asyncio.gather(self._gather(), self._keep_until_final(),
                                 *(self._worker() for _ in range(self.settings.in_flight)))
        finally:
            for task in list(self._following):
                task.cancel()

    async def _gather(self) -> None:
        """Mints into jobs, each as a worker is free: what waited meanwhile shares one
        transaction (up to ``batch_size`` orders), and a lone mint waits at most ``gather_s``
        for company; an order in a job alive brings its whole job back, alone."""
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()
            first = self._next.pop(0) if self._next else await self._asked.get()
            self._gathering += 1
            try:
                batch = [first]
                deadline = loop.time() + self.settings.gather_s
                while self._joins(first) and len(batch) < self.settings.batch_size:
                    try:
                        mint = self._asked.get_nowait()
                    except asyncio.QueueEmpty:
                        if loop.time() >= deadline:
                            break
                        try:
                            mint = await asyncio.wait_for(self._asked.get(),
                                                          deadline - loop.time())
                        except TimeoutError:
                            break
                    (batch if self._joins(mint) else self._next).append(mint)
                self._work.put_nowait(batch)
            finally:
                self._gathering -= 1

    def _joins(self, mint: Mint) -> bool:
        """Whether the mint may share a new job: not if its order is in one alive."""
        return mint.order_id not in self._job_of

    async def _worker(self) -> None:
        while True:
            work = await self._work.get()
            self._active += 1
            try:
                if isinstance(work, list):
                    await self._settle_job(work)
                else:
                    await self.release(work)
            except Exception:  # the node may be away: the engine's retry comes back to it
                log.exception("chain job failed", work=repr(work))
                if isinstance(work, list):
                    self._fail(work, "the chain could not be reached")
            finally:
                self._active -= 1
                if isinstance(work, list):
                    self._free.release()

    def _fail(self, mints: Iterable[Mint], reason: str) -> None:
        for mint in mints:
            self._settling.discard(mint.order_id)
            self.submit(MintFailed(self.clock(), mint.order_id, mint.attempt, reason))

    async def _settle_job(self, asked: list[Mint]) -> None:
        mints = self._taken(asked)
        if not mints:
            return
        outcomes, mined = await self._until_mined(mints)
        if mined is not None:  # the worker is free: confirmations followed apart
            task = asyncio.create_task(self._follow(mined))
            self._following.add(task)
            task.add_done_callback(self._following.discard)
        for outcome in outcomes:
            self._settling.discard(outcome.order_id)
        await self._report(outcomes)

    def _taken(self, asked: list[Mint]) -> list[Mint]:
        """The mints to work on now: a job alive comes back whole (its other orders as last
        asked for), and an order being settled, or minted, is not taken twice."""
        job = next((self._jobs[self._job_of[m.order_id]] for m in asked
                    if m.order_id in self._job_of), None)
        if job is not None:
            by_id = {m.order_id: m for m in asked}
            asked = [by_id.get(o) or self.mints.waiting.get(o) or Mint(o, 1, self._units(o))
                     for o in job.orders if o in self.mints.orders]
        taken = []
        for mint in asked:
            if mint.order_id not in self.mints.orders or mint.order_id in self._settling:
                log.warning("mint asked for an order minted or being settled", mint=repr(mint))
            else:
                self._settling.add(mint.order_id)
                taken.append(mint)
        return taken

    def _units(self, order_id: int) -> Decimal:
        return self.mints.orders[order_id].filled_units

    async def _follow(self, mined: Mined) -> None:
        """Report the job's settlements once confirmed; if its block left the chain first,
        the orders go back to be settled again (the vault is asked first)."""
        try:
            outcomes = await self._confirm(mined)
        except Exception:  # the node away: the engine's retry asks the vault again
            log.exception("chain confirmation failed", orders=[m.order_id for m in mined.settled])
            outcomes = [MintFailed(self.clock(), m.order_id, m.attempt,
                                   "the chain could not be reached") for m in mined.settled]
        for mint in mined.settled:
            self._settling.discard(mint.order_id)
        self._forget(mined.job)
        if outcomes is None:
            for mint in mined.settled:
                self._moved.add(mint.order_id)
                self._asked.put_nowait(mint)
            return
        await self._report(outcomes)

    async def _report(self, outcomes: list[Outcome]) -> None:
        last_of = {self.mints.orders[o.order_id].account: o.order_id for o in outcomes
                   if isinstance(o, MintConfirmed) and o.order_id in self.mints.orders}
        for outcome in outcomes:
            self.submit(outcome)  # may be applied at once: the order leaves ``mints``
        if self.after_confirmed is not None:
            for account, order_id in last_of.items():
                await self.after_confirmed(order_id, account)

    @property
    def idle(self) -> bool:
        """Nothing being gathered, settled, confirmed or released, and nothing waiting to
        be."""
        return (not self._active and not self._gathering and self._work.empty()
                and self._asked.empty() and not self._next and not self._following)

    def unapplied(self, account: str) -> list[Unapplied]:
        """``account``'s settlements the engine has not applied yet, sent or about to be:
        any sent may be mined by the time the node is asked (the reconciliation takes those
        off the vault's side, as the deposits the watcher has not journaled yet)."""
        return [Unapplied(o.spent, partial(self.sent, o.order_id),
                          partial(self._settled_at, self._vault_id(o.order_id)))
                for o in list(self.mints.orders.values())
                if o.account == account and o.order_id in self.mints.terms]

    def sent(self, order_id: int) -> bool:
        """Whether the order's settlement may have reached the node: its job is recorded
        before each send, and its record kept once confirmed."""
        return order_id in self._job_of or order_id in self._reported

    async def settle(self, mint: Mint) -> Outcome:
        """Settle ``mint`` alone and wait for its confirmations (what the workers do for a
        job, in two parts)."""
        [outcome] = await self.settle_all([mint])
        return outcome

    async def settle_all(self, asked: list[Mint]) -> list[Outcome]:
        """Settle ``asked`` as one job and wait for the confirmations."""
        mints = self._taken(asked)
        try:
            while True:
                outcomes, mined = await self._until_mined(mints)
                if mined is None:
                    return outcomes
                confirmed = await self._confirm(mined)
                self._forget(mined.job)
                if confirmed is not None:
                    return outcomes + confirmed
                mints = list(mined.settled)  # its block left the chain: ask the vault again
                self._moved.update(m.order_id for m in mints)
        finally:
            for mint in mints:
                self._settling.discard(mint.order_id)

    async def _until_mined(self, mints: list[Mint]) -> tuple[list[Outcome], Mined | None]:
        """The outcomes known once the job's receipt is in (or it is given up), and what it
        settled, to be confirmed."""
        outcomes: list[Outcome] = []
        fresh = []
        for mint in mints:  # a retry, or a settlement moved, may be settled already
            if mint.order_id not in self.mints.terms:
                outcomes += self._failed([mint], UNSIGNED)
                continue
            done = None
            if (mint.attempt > 1 or mint.order_id in self._moved) \
                    and mint.order_id not in self._job_of:
                self._moved.discard(mint.order_id)
                done = await self._settled_by(mint.order_id)
            if done is None:
                fresh.append(mint)
            else:
                outcomes.append(await self._already(mint, *done))
        if not fresh:
            return outcomes, None
        job = self._job_for(fresh)
        data = self._calldata(fresh)
        gas = self._gas_bound(len(fresh))
        if not job.txs:  # nothing sent yet: a call the vault refuses as a whole is not sent
            predicted = await self._predicted_gas(data)
            if isinstance(predicted, str):
                return outcomes + self._failed(fresh, predicted), None
            gas = min(gas, predicted * GAS_MARGIN_PERCENT // 100)
        try:
            receipt = await self._send_until_mined(job, data, gas)
        finally:  # whatever became of it, the job's nonce is no longer held
            if job.nonce is not None:
                self._held.discard(job.nonce)
        if receipt is None:  # the job stays: a retry resumes it, with its nonce
            return outcomes + self._failed(fresh, "the settlement was not mined in time"), None
        if receipt["status"] != 1:
            self._forget(job)
            return outcomes + self._failed(fresh, "the vault reverted the settlement"), None
        settled, skipped = self._read(receipt, fresh)
        if not settled:
            self._forget(job)
        for mint, reason in skipped:
            refused = f"the vault refused the settlement: {reason}"
            if reason == ALREADY_SETTLED and (done := await self._settled_by(mint.order_id)):
                outcomes.append(await self._already(mint, *done))
            elif reason in FOR_GOOD:
                log.warning("chain settlement refused for good", order_id=mint.order_id,
                            reason=reason)
                outcomes.append(MintRefused(self.clock(), mint.order_id, mint.attempt, refused))
            else:
                outcomes.append(MintFailed(self.clock(), mint.order_id, mint.attempt, refused))
        return outcomes, (Mined(job, receipt, tuple(settled)) if settled else None)

    def _failed(self, mints: list[Mint], reason: str) -> list[Outcome]:
        return [MintFailed(self.clock(), m.order_id, m.attempt, reason) for m in mints]

    async def _already(self, mint: Mint, tx: str, block: int | None) -> MintConfirmed:
        """The settlement found on-chain, reported (and kept until final if its block is
        known)."""
        if block is not None:
            await self._keep([mint], tx, block)
        return MintConfirmed(self.clock(), mint.order_id, tx, block)

    def _read(self, receipt: Any, mints: list[Mint]) -> tuple[list[Mint], list[tuple[Mint, str]]]:
        """What the job's receipt says of each order: settled, or skipped and why. The order
        key is each event's first indexed topic: only a skip's reason is decoded."""
        by_key = {self.key(m.order_id): m for m in mints}
        settled, skipped = [], []
        for entry in receipt["logs"]:
            topics = entry["topics"]
            if entry["address"] != self.vault.address or len(topics) < 2 \
                    or bytes(topics[1]) not in by_key:
                continue
            mint = by_key[bytes(topics[1])]
            if bytes(topics[0]) == self._topics["OrderSettled"]:
                settled.append(mint)
            elif bytes(topics[0]) == self._topics["SettlementSkipped"]:
                reason = self.vault.events.SettlementSkipped().process_log(entry)["args"]
                skipped.append((mint, str(reason["reason"])))
        return settled, skipped

    async def _confirm(self, mined: Mined) -> list[Outcome] | None:
        """``MintConfirmed`` for each order once the receipt's block is confirmed and still
        on the chain; None if it left the chain."""
        receipt = mined.receipt
        if not await self._confirmed(receipt):
            log.warning("chain settlement reorganised away before its confirmations",
                        orders=[m.order_id for m in mined.settled],
                        block=receipt["blockNumber"])
            return None
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        block = int(receipt["blockNumber"])
        log.info("chain settlements confirmed", orders=len(mined.settled), tx=tx, block=block)
        await self._keep(mined.settled, tx, block)
        return [MintConfirmed(self.clock(), m.order_id, tx, block) for m in mined.settled]

    # --- until final -----------------------------------------------------------------------

    async def _keep(self, mints: Iterable[Mint], tx: str, block: int) -> None:
        """Keep each settlement reported until its block is final."""
        block_hash = await self._block_hash(block) or ""
        kept = [Reported(m.order_id, o.account, o.wallet, o.index, o.spent, o.fees,
                         o.client_order_id, m.units, tx, block, block_hash,
                         self.mints.terms[m.order_id])
                for m in mints if (o := self.mints.orders[m.order_id])]
        self.journal.save_records({f"settled:{r.order_id}": r.to_json() for r in kept})
        for reported in kept:
            self._hold(reported)

    def _hold(self, reported: Reported) -> None:
        """In memory too, by block: the check every ``final_poll_s`` reads no journal."""
        previous = self._reported.pop(reported.order_id, None)
        if previous is not None:
            held = self._by_block[previous.block]
            held.discard(reported.order_id)
            if not held:
                del self._by_block[previous.block]
        self._reported[reported.order_id] = reported
        self._by_block.setdefault(reported.block, set()).add(reported.order_id)

    def reported(self) -> list[Reported]:
        """The settlements reported whose blocks are not final yet."""
        return list(self._reported.values())

    async def _keep_until_final(self) -> None:
        while True:
            await asyncio.sleep(self.settings.final_poll_s)
            try:
                await self.check_reported()
            except Exception:  # the node away: next round
                log.exception("chain check of the settlements reported failed")

    async def check_reported(self) -> None:
        """Forget the settlements reported whose blocks are final; send again any that left
        the chain (the vault settles each order once) and report where it is now."""
        head = await self.w3.eth.block_number
        final = await finalized_block(self.w3)
        keep_from = head - self.settings.keep_blocks
        keep_from = keep_from if final is None else min(final, keep_from)
        blocks = sorted(self._by_block)
        if not blocks:
            return
        # blocks chain by hash: the newest one still there means every older one is too
        newest = self._reported[next(iter(self._by_block[blocks[-1]]))]
        if await self._block_hash(newest.block) != newest.hash:
            for block in blocks:
                settlements = [self._reported[o] for o in sorted(self._by_block.get(block, ()))]
                if settlements and await self._block_hash(block) != settlements[0].hash:
                    for settlement in settlements:
                        await self._settle_again(settlement)
        final_ones = [o for b in blocks if b <= keep_from for o in self._by_block.pop(b, ())]
        for order_id in final_ones:
            del self._reported[order_id]
        self.journal.forget_records(f"settled:{o}" for o in final_ones)

    async def _settle_again(self, reported: Reported) -> None:
        done = await self._settled_by(reported.order_id, reported)
        if done is None:
            log.error("chain settlement reported confirmed left the chain: sending it again",
                      order_id=reported.order_id, tx=reported.tx, block=reported.block)
            done = await self._send_again(reported)
        if done is None:
            return
        tx, block = done
        if block is None:
            return
        moved = replace(reported, tx=tx, block=block, hash=await self._block_hash(block) or "")
        self.journal.save_record(f"settled:{reported.order_id}", moved.to_json())
        self._hold(moved)
        if tx != reported.tx:
            log.warning("chain settlement moved to another transaction",
                        order_id=reported.order_id, previous=reported.tx, tx=tx, block=block)
            self.submit(SettlementMoved(self.clock(), reported.order_id, tx, block))

    async def _send_again(self, reported: Reported) -> tuple[str, int | None] | None:
        """Where the settlement sent again is, once confirmed; None: next round."""
        mint = Mint(reported.order_id, 1, reported.units)
        job = self._job_for([mint])
        try:
            receipt = await self._send_until_mined(job, self._calldata([mint], reported),
                                                   self._gas_bound(1))
        finally:
            if job.nonce is not None:
                self._held.discard(job.nonce)
        if receipt is not None:
            self._forget(job)
        if receipt is None or receipt["status"] != 1 or not await self._confirmed(receipt):
            log.error("chain settlement sent again not confirmed: next round",
                      order_id=reported.order_id)
            return None
        if self._read(receipt, [mint])[0]:
            return "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])
        return await self._settled_by(reported.order_id, reported)  # skipped: settled already?

    async def _block_hash(self, block: int) -> str | None:
        try:
            return "0x" + bytes((await self.w3.eth.get_block(block))["hash"]).hex()
        except BlockNotFound:
            return None

    async def release(self, request: ev.WithdrawalReleaseRequested) -> None:
        # at most what the solver set aside: a request raised since waits for its own clock
        call = self.vault.functions.release(request.wallet,
                                            to_units(request.amount, self.collateral_decimals))
        try:
            tx = await call.build_transaction({"from": self.operator.address})
        except refusals() as refused:
            log.info("chain release not needed", wallet=request.wallet, reason=str(refused))
            return
        async with self._sending:
            tx["nonce"] = nonce = Nonce(await self._nonce())
            signed = self.operator.sign_transaction(cast(dict[str, Any], tx))
            try:
                await self.w3.eth.send_raw_transaction(signed.raw_transaction)
            finally:  # sent, it is below the node's count from now on; if not, it is free
                self._held.discard(nonce)
        log.info("chain release sent", wallet=request.wallet, request_id=request.request_id)

    def key(self, order_id: int) -> bytes:
        return order_key(self.deployment.chain_id, self.vault.address,
                         f"{self.order_prefix}/{order_id}".encode())

    # --- what the vault says -----------------------------------------------------------------

    async def _settled_by(self, order_id: int, order: Reported | None = None,
                          ) -> tuple[str, int | None] | None:
        """The transaction that settled the order and its block, if one did: the vault
        records the block, so one log query of one block finds it."""
        block = await self._settled_block(self._vault_id(order_id, order), "latest")
        if not block:
            return None
        logs = await self.vault.events.OrderSettled().get_logs(
            from_block=block, to_block=block, argument_filters={"order_key": self.key(order_id)})
        if not logs:
            return "settled", None
        return "0x" + bytes(logs[-1]["transactionHash"]).hex(), block

    async def _settled_at(self, vault_id: bytes, block: int) -> bool:
        """Whether the order was settled by ``block`` (asked after it may have been minted
        and forgotten here: the vault's name for it is taken beforehand)."""
        return bool(await self._settled_block(vault_id, block))

    async def _settled_block(self, vault_id: bytes, at: BlockIdentifier) -> int:
        """The block of the order's last fill as of block ``at``; 0 if it had none."""
        _, block, _ = await self.vault.functions.order_state(vault_id).call(
            block_identifier=at)
        return int(block)

    def _vault_id(self, order_id: int, order: Reported | None = None) -> bytes:
        """What the vault names the order by: its wallet and the name it signed."""
        wallet = order.wallet if order is not None else self.mints.orders[order_id].wallet
        terms = order.signed if order is not None else self.mints.terms[order_id]
        return signed_order_id(wallet, terms.name)

    async def _predicted_gas(self, data: HexStr) -> int | str:
        """The gas the call takes now, or why the vault would refuse it as a whole (not the
        operator, paused); an order it would skip does not stop the others."""
        try:
            return int(await self.w3.eth.estimate_gas(
                {"from": self.operator.address, "to": self.vault.address, "data": data}))
        except refusals() as refused:
            return f"the vault refuses the settlement: {refused}"

    def _gas_bound(self, orders: int) -> int:
        return self.settings.gas_per_job + self.settings.gas_per_order * orders

    # --- sending -----------------------------------------------------------------------------

    def _job_for(self, mints: list[Mint]) -> Job:
        """The job alive that holds these orders (resumed), or a new one."""
        number = self._job_of.get(mints[0].order_id)
        if number is not None:
            job = self._jobs[number]
            if job.nonce is not None:
                self._held.add(job.nonce)
            return job
        return Job(min(m.order_id for m in mints), [m.order_id for m in mints])

    def _calldata(self, mints: list[Mint], order: Reported | None = None) -> HexStr:
        """The vault's call settling ``mints``, encoded once for the job's prediction and its
        every send: ``settle_batch`` of their signed orders (with eth-abi: web3's encoder
        normalises every value of every call, 0.1 s for a hundred orders)."""
        selector, types = self._settle_batch
        return HexStr("0x" + (selector + encode(types, [
            [self._settlement(m, order) for m in mints]])).hex())

    def _settlement(self, mint: Mint, order: Reported | None) -> tuple[Any, ...]:
        """One signed order's fill, as the vault's ``Settlement`` struct."""
        charged = order or self.mints.orders[mint.order_id]
        terms = order.signed if order is not None else self.mints.terms[mint.order_id]
        signed = signed_order(terms, self.deployment.index_tokens[charged.index],
                              self.collateral_decimals)
        assert signed is not None, "the gateway took terms off the collateral's grid"
        return (signed.as_call(), bytes(HexBytes(terms.signature)), self.key(mint.order_id), 0,
                to_units(charged.spent, self.collateral_decimals),
                to_units(mint.units, INDEX_TOKEN_DECIMALS),
                to_units(charged.fees, self.collateral_decimals))

    async def _send_until_mined(self, job: Job, data: HexStr, gas: int) -> Any:
        """The receipt of the job's transaction (``data``, with a limit of ``gas``), sent
        (again, fees raised) until one is mined or the replacements run out; None then."""
        receipt = await self._any_receipt(job)
        for attempt in range(self.settings.replacements + 1):
            if receipt is not None:
                return receipt
            tx = await self._transaction(data, gas)
            try:
                await self._sign_and_send(job, tx, attempt)
            except Exception as error:  # web3's RPC error on a node, ValidationError in py-evm
                if "nonce" not in str(error).lower():
                    raise
                receipt = await self._any_receipt(job)
                if receipt is not None:  # its own earlier transaction took the nonce
                    return receipt
                # another transaction took the job's nonce (its own were dropped), or it is
                # ahead of the node's (one before it never arrived): none of the job's
                # transactions can be mined, so a new nonce, from the node's count, is safe
                log.warning("chain nonce refused: settling with a new one",
                            job=job.number, nonce=job.nonce, error=str(error))
                self._held.discard(job.nonce)
                job.nonce, job.txs = None, []
                self._save(job)
                continue
            receipt = await self._wait_receipt(job)
        return receipt

    async def _transaction(self, data: HexStr, gas: int) -> dict[str, Any]:
        """A transaction to the vault with the node's fees as web3 sets them: the tip it
        suggests, and at most twice the base fee on top."""
        tip = await self.w3.eth.max_priority_fee
        base = (await self.w3.eth.get_block("latest")).get("baseFeePerGas", 0)
        return {"from": self.operator.address, "to": self.vault.address, "data": data,
                "gas": gas, "chainId": self.deployment.chain_id, "value": 0,
                "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base) + tip}

    async def _sign_and_send(self, job: Job, tx: Any, attempt: int) -> None:
        """Sign the job's transaction (its nonce taken now if it has none), record it, send
        it. One at a time: nonces reach the node in order (the embedded chain accepts no
        other), while the jobs wait for their receipts together."""
        async with self._sending:
            if job.nonce is None:
                job.nonce = await self._nonce()
            tx["nonce"] = Nonce(job.nonce)
            bump = (9 ** attempt, 8 ** attempt) if job.txs else (1, 1)
            for fee in ("maxFeePerGas", "maxPriorityFeePerGas"):
                if fee in tx:
                    tx[fee] = int(tx[fee]) * bump[0] // bump[1] + 1
            signed = self.operator.sign_transaction(cast(dict[str, Any], tx))
            job.txs.append(bytes(signed.hash).hex())
            self._save(job)  # before sending: a crash now leaves a hash to look for
            await self.w3.eth.send_raw_transaction(signed.raw_transaction)

    async def _wait_receipt(self, job: Job) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.receipt_timeout_s
        while loop.time() < deadline:
            receipt = await self._any_receipt(job)
            if receipt is not None:
                return receipt
            await asyncio.sleep(self.settings.poll_s)
        return None

    async def _any_receipt(self, job: Job) -> Any:
        for tx in job.txs:
            try:
                return await self.w3.eth.get_transaction_receipt(HexBytes(tx))
            except TransactionNotFound:
                continue
        return None

    async def _confirmed(self, receipt: Any) -> bool:
        """Confirmed (``confirmations`` blocks on top, or finalized), and the block still the
        one it was mined in."""
        if self.settings.confirmations == 0:
            return True  # the operator takes the head block as final (the embedded chain)
        while await confirmed_head(self.w3, self.settings.confirmations) < \
                receipt["blockNumber"]:
            await asyncio.sleep(self.settings.poll_s)
        block = await self.w3.eth.get_block(receipt["blockNumber"])
        return bytes(block["hash"]) == bytes(receipt["blockHash"])

    async def _nonce(self) -> int:
        """The lowest nonce from the node's pending count up that no job alive holds."""
        nonce = int(await self.w3.eth.get_transaction_count(self.operator.address, "pending"))
        while nonce in self._held:
            nonce += 1
        self._held.add(nonce)
        return nonce

    def _remember(self, job: Job) -> None:
        self._jobs[job.number] = job
        for order_id in job.orders:
            self._job_of[order_id] = job.number

    def _save(self, job: Job) -> None:
        self._remember(job)
        self.journal.save_record(f"settlement:{job.number}", json.dumps(asdict(job)))

    def _forget(self, job: Job) -> None:
        """The job is done: its transaction is mined (or reverted)."""
        self._jobs.pop(job.number, None)
        for order_id in job.orders:
            if self._job_of.get(order_id) == job.number:
                del self._job_of[order_id]
        self.journal.forget_record(f"settlement:{job.number}")
