"""Mints are settlements: the vault charges the order's collateral and mints its units in one
transaction, exactly once per order key.

For each ``MintRequested`` (and ``MintRetryRequested``) the settler:

1. asks the vault whether the order's key is settled already (a crash or a retry after the
   transaction went through): if so, it reports that transaction;
2. otherwise builds the settlement (a refusal the node predicts, such as "not operator" or a
   balance too low, is a ``MintFailed`` saying so, and nothing is sent), takes a nonce and
   writes the job (order key, nonce, transaction hashes) to the journal **before** sending;
   the job keeps that nonce for its whole life, so at most one of its transactions can ever be
   mined, and a second settlement of the key would revert anyway;
3. polls for the receipt; a transaction not mined in time is replaced (same nonce, fees raised
   by an eighth, which public nodes require) and the new hash recorded before it is sent;
4. once the receipt is in, the worker is free for the next job, and the confirmations are
   followed apart: once confirmed (``confirmations`` blocks on top, or finalized) and the
   receipt's block still on the chain, ``MintConfirmed`` is reported; a block that left the
   chain sends the job back to the workers (step 1 first). A revert or an exhausted
   replacement budget reports ``MintFailed`` with the reason (the engine retries later, and
   step 1 comes first).

Up to ``in_flight`` jobs are sent and mined at once, so that on a chain with blocks every few
seconds several settlements share a block; they sign and send one at a time, so the nonces
reach the node in order. Waiting for confirmations holds no worker: the rate is bound by
what a block takes, not by ``in_flight / ((1 + confirmations) x block time)``.

A restart resumes every job the journal holds: the orders whose mint the journal shows asked
for and not confirmed are asked again at start (``attach``), and step 1 and the recorded nonce
make that safe.
``WithdrawalReleaseRequested`` sends the vault's ``release``: it reverts once the user has been
paid, so sending it again is harmless.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, cast

import structlog
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound
from web3.types import Nonce

from chain.deploy import ChainDeployment
from chain.finality import Confirmations, confirmed_head, finalized_block
from chain.keys import order_key
from chain.mints import Mint, MintsWaiting
from chain.reconciler import Unapplied
from chain.records import Records
from chain.watcher import to_units
from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import Input, MintConfirmed, MintFailed, SettlementMoved

log = structlog.get_logger(__name__)

INDEX_TOKEN_DECIMALS = 18


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
    gas_limit: int = 300_000
    """A settlement uses about 100,000; only the gas used is paid. Estimating instead costs a
    node several executions of the call per settlement."""
    in_flight: int = 8
    """Jobs worked on at once, each with its own nonce: one at a time, a chain with blocks
    every few seconds would settle one order per block."""
    final_poll_s: float = 2.0
    """How often the settlements reported are checked to be still on the chain, until
    final."""
    keep_blocks: int = 256
    """Blocks back from the head a settlement reported is checked, at least (and down to the
    finalized block)."""


class Charged(Protocol):
    """What a settlement charges and mints, and for whom (an order's snapshot, or a
    settlement reported)."""

    @property
    def wallet(self) -> str: ...
    @property
    def index(self) -> str: ...
    @property
    def spent(self) -> Decimal: ...
    @property
    def fees(self) -> Decimal: ...
    @property
    def client_order_id(self) -> str: ...


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

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Decimal) else v
                           for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, saved: str) -> Reported:
        data = json.loads(saved)
        for name in ("spent", "fees", "units"):
            data[name] = Decimal(data[name])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Mined:
    """A settlement's successful receipt, not confirmed yet."""

    receipt: Any


@dataclass(slots=True)
class Job:
    order_id: int
    key: str
    nonce: int | None = None
    """Taken just before the first transaction is signed, and kept (recorded with it)."""
    txs: list[str] = field(default_factory=list)


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
        """Called (order id, account) once a confirmed settlement is reported, before its
        worker takes the next job: the reconciliation."""
        self._work: asyncio.Queue[Mint | ev.WithdrawalReleaseRequested] = asyncio.Queue()
        self._active = 0
        self._settling: set[int] = set()
        self._held: set[int] = set()
        """The nonces of the jobs alive (their transactions may be queued behind a gap, where
        the node's pending count does not see them)."""
        self._sending = asyncio.Lock()
        self._following: set[asyncio.Task[None]] = set()
        """The settlements mined whose confirmations are being waited for, apart from the
        workers: a worker is free as soon as its receipt arrives."""

    # --- what to do, from the bus ---------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Take up the mints waiting (those the journal left are asked again: a restart
        resumes every job), then follow ``bus``."""
        for mint in self.mints.waiting.values():
            self._work.put_nowait(mint)
            job = self._job(mint.order_id)
            if job is not None and job.nonce is not None:  # a job resumed holds its nonce
                self._held.add(job.nonce)
        bus.subscribe(ev.MintRequested, self._mint)
        bus.subscribe(ev.MintRetryRequested, self._retry)
        bus.subscribe(ev.WithdrawalReleaseRequested, self._release)

    def _mint(self, envelope: ev.Envelope[ev.MintRequested]) -> None:
        event = envelope.event
        self._work.put_nowait(Mint(event.order_id, 1, event.units))

    def _retry(self, envelope: ev.Envelope[ev.MintRetryRequested]) -> None:
        event = envelope.event
        self._work.put_nowait(Mint(event.order_id, event.attempt, event.units))

    def _release(self, envelope: ev.Envelope[ev.WithdrawalReleaseRequested]) -> None:
        self._work.put_nowait(envelope.event)

    # --- doing it ----------------------------------------------------------------------------

    async def run(self) -> None:
        """``in_flight`` jobs at once, until cancelled."""
        try:
            await asyncio.gather(self._keep_until_final(),
                                 *(self._worker() for _ in range(self.settings.in_flight)))
        finally:
            for task in list(self._following):
                task.cancel()

    async def _worker(self) -> None:
        while True:
            work = await self._work.get()
            self._active += 1
            try:
                await self._do(work)
            except Exception:  # the node may be away: the engine's retry comes back to it
                log.exception("chain job failed", work=repr(work))
                if isinstance(work, Mint):
                    self._settling.discard(work.order_id)
                    self.submit(MintFailed(self.clock(), work.order_id, work.attempt,
                                           "the chain could not be reached"))
            finally:
                self._active -= 1

    async def _do(self, work: Mint | ev.WithdrawalReleaseRequested) -> None:
        if not isinstance(work, Mint):
            await self.release(work)
        elif work.order_id not in self.mints.orders or work.order_id in self._settling:
            log.warning("mint asked for an order minted or being settled", work=repr(work))
        else:
            self._settling.add(work.order_id)
            account = self.mints.orders[work.order_id].account
            outcome = await self._until_mined(work)
            if isinstance(outcome, Mined):  # the worker is free: confirmations followed apart
                task = asyncio.create_task(self._follow(work, outcome, account))
                self._following.add(task)
                task.add_done_callback(self._following.discard)
                return
            self._settling.discard(work.order_id)
            await self._report(outcome, account)

    async def _follow(self, mint: Mint, mined: Mined, account: str) -> None:
        """Report the settlement once confirmed; if its block left the chain first, the job
        goes back to the workers (which ask the vault again)."""
        confirmed: MintConfirmed | MintFailed | None
        try:
            confirmed = await self._confirm(mint, mined)
        except Exception:  # the node away: the engine's retry asks the vault again
            log.exception("chain confirmation failed", order_id=mint.order_id)
            confirmed = MintFailed(self.clock(), mint.order_id, mint.attempt,
                                   "the chain could not be reached")
        self._settling.discard(mint.order_id)
        if confirmed is None:
            self._work.put_nowait(mint)
            return
        await self._report(confirmed, account)

    async def _report(self, outcome: MintConfirmed | MintFailed, account: str) -> None:
        self.submit(outcome)
        if isinstance(outcome, MintConfirmed) and self.after_confirmed is not None:
            await self.after_confirmed(outcome.order_id, account)

    @property
    def idle(self) -> bool:
        """Nothing being settled, confirmed or released, and nothing waiting to be."""
        return not self._active and self._work.empty() and not self._following

    def unapplied(self, account: str) -> list[Unapplied]:
        """``account``'s settlements the engine has not applied yet, sent or about to be:
        any sent may be mined by the time the node is asked (the reconciliation takes those
        off the vault's side, as the deposits the watcher has not journaled yet)."""
        return [Unapplied(self.key(o.order_id), o.spent, partial(self.sent, o.order_id))
                for o in list(self.mints.orders.values()) if o.account == account]

    def sent(self, order_id: int) -> bool:
        """Whether the order's settlement may have reached the node: its job is recorded
        before each send, and its record kept once confirmed."""
        return (self._job(order_id) is not None
                or self.journal.record(f"settled:{order_id}") is not None)

    async def settle(self, mint: Mint) -> MintConfirmed | MintFailed:
        """Settle ``mint`` and wait for its confirmations (what a worker does in two parts)."""
        while True:
            outcome = await self._until_mined(mint)
            if not isinstance(outcome, Mined):
                return outcome
            confirmed = await self._confirm(mint, outcome)
            if confirmed is not None:
                return confirmed
            # its block left the chain: ask the vault again

    async def _until_mined(self, mint: Mint) -> Mined | MintConfirmed | MintFailed:
        try:
            return await self._mine(mint)
        finally:  # whatever became of it, the job's nonce is no longer held
            job = self._job(mint.order_id)
            if job is not None and job.nonce is not None:
                self._held.discard(job.nonce)

    async def _mine(self, mint: Mint) -> Mined | MintConfirmed | MintFailed:
        """The settlement mined; or the transaction that settled it already; or why not."""
        order = self.mints.orders[mint.order_id]
        key = self.key(mint.order_id)
        done = await self._settled_by(key)
        if done is not None:
            tx, block = done
            if block is not None:
                await self._keep(mint, tx, block)
            return MintConfirmed(self.clock(), mint.order_id, tx, block)
        job = self._job(mint.order_id)
        if job is not None and job.nonce is not None:
            self._held.add(job.nonce)
        if job is None:
            refusal = await self._refusal(order, key, mint.units)
            if refusal is not None:
                return MintFailed(self.clock(), mint.order_id, mint.attempt, refusal)
            job = Job(mint.order_id, key.hex())
        receipt = await self._send_until_mined(job, order, key, mint.units)
        if receipt is None:
            return MintFailed(self.clock(), mint.order_id, mint.attempt,
                              "the settlement was not mined in time")
        if receipt["status"] != 1:
            self.journal.forget_record(f"settlement:{job.order_id}")  # a retry starts anew
            return MintFailed(self.clock(), mint.order_id, mint.attempt,
                              "the vault reverted the settlement")
        return Mined(receipt)

    async def _confirm(self, mint: Mint, mined: Mined) -> MintConfirmed | None:
        """``MintConfirmed`` once the receipt's block is confirmed and still on the chain;
        None if it left the chain."""
        receipt = mined.receipt
        if not await self._confirmed(receipt):
            log.warning("chain settlement reorganised away before its confirmations",
                        order_id=mint.order_id, block=receipt["blockNumber"])
            return None
        tx_hash, block = "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])
        log.info("chain settlement confirmed", order_id=mint.order_id, tx=tx_hash, block=block)
        await self._keep(mint, tx_hash, block)
        return MintConfirmed(self.clock(), mint.order_id, tx_hash, block)

    # --- until final -----------------------------------------------------------------------

    async def _keep(self, mint: Mint, tx: str, block: int) -> None:
        """Keep the settlement reported until its block is final; its job is done."""
        order = self.mints.orders[mint.order_id]
        reported = Reported(mint.order_id, order.account, order.wallet, order.index,
                            order.spent, order.fees, order.client_order_id, mint.units, tx,
                            block, await self._block_hash(block) or "")
        self.journal.save_record(f"settled:{mint.order_id}", reported.to_json())
        self.journal.forget_record(f"settlement:{mint.order_id}")

    def reported(self) -> list[Reported]:
        """The settlements reported whose blocks are not final yet."""
        return [Reported.from_json(v) for v in self.journal.records("settled:").values()]

    async def _keep_until_final(self) -> None:
        while True:
            await asyncio.sleep(self.settings.final_poll_s)
            try:
                await self.check_reported()
            except Exception:  # the node away: next round
                log.exception("chain check of the settlements reported failed")

    async def check_reported(self) -> None:
        """Forget the settlements reported whose blocks are final; send again any that left
        the chain (its key makes that safe) and report where it is now."""
        head = await self.w3.eth.block_number
        final = await finalized_block(self.w3)
        keep_from = head - self.settings.keep_blocks
        keep_from = keep_from if final is None else min(final, keep_from)
        reported = sorted(self.reported(), key=lambda r: r.block)
        # blocks chain by hash: the newest one still there means every older one is too
        moved = bool(reported) and await self._block_hash(reported[-1].block) != reported[-1].hash
        hashes: dict[int, str | None] = {}
        for settlement in reported:
            if moved and settlement.block not in hashes:
                hashes[settlement.block] = await self._block_hash(settlement.block)
            if not moved or hashes[settlement.block] == settlement.hash:
                if settlement.block <= keep_from:
                    self.journal.forget_record(f"settled:{settlement.order_id}")
                continue
            await self._settle_again(settlement)

    async def _settle_again(self, reported: Reported) -> None:
        key = self.key(reported.order_id)
        done = await self._settled_by(key)
        if done is None:
            log.error("chain settlement reported confirmed left the chain: sending it again",
                      order_id=reported.order_id, tx=reported.tx, block=reported.block)
            receipt = await self._send_until_mined(Job(reported.order_id, key.hex()), reported,
                                                   key, reported.units)
            if receipt is None or receipt["status"] != 1 or not await self._confirmed(receipt):
                log.error("chain settlement sent again not confirmed: next round",
                          order_id=reported.order_id)
                return
            done = "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])
        tx, block = done
        if block is None:
            return
        moved = replace(reported, tx=tx, block=block, hash=await self._block_hash(block) or "")
        self.journal.save_record(f"settled:{reported.order_id}", moved.to_json())
        self.journal.forget_record(f"settlement:{reported.order_id}")
        if tx != reported.tx:
            log.warning("chain settlement moved to another transaction",
                        order_id=reported.order_id, previous=reported.tx, tx=tx, block=block)
            self.submit(SettlementMoved(self.clock(), reported.order_id, tx, block))

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

    # --- steps ---------------------------------------------------------------------------

    async def _settled_by(self, key: bytes) -> tuple[str, int | None] | None:
        """The transaction that settled ``key`` and its block, if one did: the vault records
        the block, so one log query of one block finds it."""
        block = int(await self.vault.functions.settled(key).call())
        if not block:
            return None
        logs = await self.vault.events.OrderSettled().get_logs(
            from_block=block, to_block=block, argument_filters={"order_key": key})
        if not logs:
            return "settled", None
        return "0x" + bytes(logs[-1]["transactionHash"]).hex(), block

    async def _refusal(self, order: Charged, key: bytes, units: Decimal) -> str | None:
        """Why the vault would refuse the settlement now (the node runs it once), if it
        would."""
        try:
            await self._call(order, key, units).call({"from": self.operator.address})
        except refusals() as refused:
            return f"the vault refuses the settlement: {refused}"
        return None

    def _call(self, order: Charged, key: bytes, units: Decimal) -> Any:
        return self.vault.functions.settle(
            key, order.wallet, self.deployment.index_tokens[order.index],
            to_units(order.spent, self.collateral_decimals),
            to_units(units, INDEX_TOKEN_DECIMALS),
            to_units(order.fees, self.collateral_decimals), order.client_order_id)

    async def _send_until_mined(self, job: Job, order: Charged, key: bytes,
                                units: Decimal) -> Any:
        """The receipt of the job's transaction, sent (again, fees raised) until one is mined
        or the replacements run out; None then."""
        receipt = await self._any_receipt(job)
        for attempt in range(self.settings.replacements + 1):
            if receipt is not None:
                return receipt
            tx = await self._call(order, key, units).build_transaction(
                {"from": self.operator.address, "gas": self.settings.gas_limit})
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
                            order_id=job.order_id, nonce=job.nonce, error=str(error))
                self._held.discard(job.nonce)
                job.nonce, job.txs = None, []
                self._save(job)
                continue
            receipt = await self._wait_receipt(job)
        return receipt

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

    def _job(self, order_id: int) -> Job | None:
        saved = self.journal.record(f"settlement:{order_id}")
        return Job(**json.loads(saved)) if saved else None

    def _save(self, job: Job) -> None:
        self.journal.save_record(f"settlement:{job.order_id}", json.dumps(asdict(job)))
