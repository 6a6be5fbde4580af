"""The chain adapter on the embedded chain (py-evm through eth-tester) and on anvil: the
watcher turns the vault's events into the engine's facts once confirmed, the settler charges
and mints each order exactly once. The engine, its journal and the bus are the real ones."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import Web3RPCError

from chain.deploy import contract, deploy_local, transact
from chain.deployment import ChainDeployment
from chain.finality import Confirmations
from chain.keys import signed_order_id
from chain.ledger_side import LedgerSide
from chain.mints import Mint, MintsWaiting
from chain.reconciler import VaultReconciler
from chain.settler import UNSIGNED, Settler, SettleSettings
from chain.watcher import VaultWatcher, WatchSettings
from solver.core import events as ev
from solver.core.bus import EventBus, TransactionObserver
from solver.core.commands import (
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BindWallet,
    BookUpdated,
    Input,
    MintConfirmed,
    MintFailed,
    MintRefused,
    PlanBatch,
    SubmitIndexOrder,
)
from solver.core.engine import Engine
from solver.core.orders import OrderState, OrderStatus, RejectReason
from solver.core.setup import EngineSetup
from solver.core.signed_terms import SignedTerms
from solver.journal.store import Journal
from solver.service.sequencer import Sequencer
from solver.signed_orders import Domain, signed_by
from tests.support.builders import book, index, params, rules
from tests.support.chains import BACKENDS, Chain, anvil_node, chain
from tests.support.exchange import run

USDC = 10**6
P = TypeVar("P", bound=TransactionObserver)
DELAY_S = 3600


@dataclass
class Stack:
    chain: Chain
    w3: AsyncWeb3[Any]
    deployment: ChainDeployment
    vault: AsyncContract
    usdc: AsyncContract
    token: AsyncContract
    owner: Any
    operator: LocalAccount
    users: list[Any]
    engine: Engine
    journal: Journal
    sequencer: Sequencer
    bus: EventBus
    wallets: dict[str, str] = field(default_factory=dict)
    """account -> its wallet"""
    keys: dict[str, str] = field(default_factory=dict)
    """wallet -> its key: every order is signed"""
    now: int = 0
    transactions: list[ev.Transaction] = field(default_factory=list)

    def clock(self) -> int:
        self.now += 1
        return self.now

    def submit(self, command: Input) -> None:
        self.transactions.append(self.sequencer.apply(command))
        self.sequencer.flush()

    def engine_transactions(self) -> list[ev.Transaction]:
        return self.transactions

    def bind(self, account: str, wallet: str, key: str) -> None:
        self.wallets[account], self.keys[wallet] = wallet, key
        self.submit(BindWallet(self.clock(), wallet, account))

    def terms(self, account: str, name: str, most: str = "1000",
              limit: str = "1010") -> SignedTerms:
        """What ``account``'s wallet signs for an order of SY2 named ``name``: ``most``
        collateral at ``limit`` a unit, fees 50 bps at most, for a day."""
        wallet = self.wallets[account]
        terms = SignedTerms(wallet, name, D(most), D(limit), 50, int(time.time()) + 86_400, "")
        return signed_by(terms, self.keys[wallet], self.deployment.index_tokens["SY2"], 6,
                         Domain(self.deployment.chain_id, self.deployment.vault))

    async def settled_block(self, mint: ev.MintRequested) -> int:
        """The block the vault records the order settled in (0: not settled)."""
        order = self.engine.orders[mint.order_id]
        _, block, _ = await self.vault.functions.order_state(
            signed_order_id(order.wallet, order.client_order_id)).call()
        return int(block)

    def watcher(self, confirmations: Confirmations = 2) -> VaultWatcher:
        watcher = VaultWatcher(self.w3, self.vault, "USDC", 6, self.journal, self.submit,
                               self.clock, self.deployment.start_block,
                               WatchSettings(confirmations=confirmations, max_blocks=3))
        self.bus.observe(watcher)
        return watcher

    def settler(self, operator: LocalAccount | None = None,
                settings: SettleSettings | None = None) -> Settler:
        settings = settings or SettleSettings(confirmations=0)
        settler = Settler(self.w3, self.vault, self.deployment, operator or self.operator,
                          self.journal, self.submit, self.clock, "test", 6,
                          self.following(MintsWaiting()), settings)
        settler.attach(self.bus)
        return settler

    def following(self, projection: P) -> P:
        """``projection`` fed the journal so far, then following the bus."""
        past = EventBus()
        past.observe(projection)
        for transaction in self.journal.transactions():
            past.publish(transaction)
        self.bus.observe(projection)
        return projection

    async def mine(self, blocks: int) -> None:
        await self.chain.mine(blocks)

    async def deposit(self, user: Any, amount: int) -> None:
        await self.wait(await self.vault.functions.deposit(amount * USDC, 0).transact(
            {"from": user}))

    async def request_withdrawal(self, user: Any, amount: int) -> None:
        await self.wait(await self.vault.functions.request_withdrawal(amount * USDC).transact(
            {"from": user}))

    async def wait(self, tx: Any) -> Any:
        return await self.w3.eth.wait_for_transaction_receipt(tx)

    def balance(self, account: str) -> tuple[D, D, D, D]:
        b = self.engine.ledger.balance(account, "USDC")
        return b.available, b.reserved, b.withdrawing, b.withdrawn


@asynccontextmanager
async def stack(tmp_path: Path, backend: str) -> AsyncIterator[Stack]:
    async with chain(backend) as on, _stack(tmp_path, on) as s:
        yield s


@asynccontextmanager
async def _stack(tmp_path: Path, on: Chain) -> AsyncIterator[Stack]:
    w3 = on.w3
    owner, treasury, *users = (await w3.eth.accounts)[:5]
    deployment, operator = await deploy_local(
        w3, owner, treasury, DELAY_S, {"SY2": "Two assets"})
    vault = contract(w3, "CollateralVault", deployment.vault)
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    token = contract(w3, "IndexToken", deployment.index_tokens["SY2"])
    for user in users:
        await usdc.functions.mint(user, 10**6 * USDC).transact({"from": user})
        await usdc.functions.approve(vault.address, 2**256 - 1).transact({"from": user})
    markets = [rules("A1"), rules("A2")]
    setup = EngineSetup((index(),), tuple(markets), params(), client_order_prefix="test")
    engine = setup.build()
    journal = Journal.create(tmp_path / "journal.db", setup)
    bus = EventBus()
    s = Stack(on, w3, deployment, vault, usdc, token, owner, operator, users, engine, journal,
              Sequencer(engine, bus, journal), bus)
    for account, user in zip(("alice", "bob", "carol"), users, strict=True):
        s.bind(account, user, on.key(user))
    try:
        yield s
    finally:
        journal.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test runs on the embedded chain and on anvil."""
    return str(request.param)


def within(timeout_s: float, scenario: Callable[[], Any]) -> None:
    run(scenario(), timeout_s)


# --- the watcher ---------------------------------------------------------------------------


def test_a_deposit_is_credited_once_it_has_its_confirmations_and_once_only(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=2)
            alice = s.users[0]
            await s.deposit(alice, 1000)
            assert await watcher.poll() == 0  # not confirmed yet
            assert s.balance("alice") == (0, 0, 0, 0)
            await s.mine(2)
            assert await watcher.poll() == 1
            assert s.balance("alice") == (D(1000), 0, 0, 0)
            again = s.watcher(confirmations=2)  # a restart: the cursor is in the journal
            assert again.cursor == watcher.cursor
            await s.mine(5)
            assert await again.poll() == 0
            assert s.balance("alice") == (D(1000), 0, 0, 0)
    within(60, scenario)


def test_with_finalized_confirmations_a_deposit_is_credited_once_its_block_is_final(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations="finalized")
            await s.deposit(s.users[0], 1000)
            block = await s.w3.eth.block_number
            await s.mine(1)
            await watcher.poll()
            final = (await s.w3.eth.get_block("finalized"))["number"]
            assert s.balance("alice")[0] == (D(1000) if final >= block else 0)
            for _ in range(20):  # anvil finalizes 64 blocks back, eth-tester at once
                if (await s.w3.eth.get_block("finalized"))["number"] >= block:
                    break
                await s.mine(8)
            await watcher.poll()
            assert s.balance("alice")[0] == D(1000)
    within(60, scenario)


def test_deposits_made_while_the_service_was_down_are_found_at_start(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            await s.deposit(s.users[0], 100)
            await s.deposit(s.users[1], 200)
            await s.deposit(s.users[0], 300)
            await s.mine(2)
            watcher = s.watcher()  # ranges of 3 blocks: several queries
            assert await watcher.poll() == 3
            assert (s.balance("alice")[0], s.balance("bob")[0]) == (D(400), D(200))
            assert watcher.cursor.next_deposit_id == 3
    within(60, scenario)


def test_a_deposit_that_vanishes_before_its_confirmations_is_never_credited(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=2)
            before = await s.chain.mark()
            await s.deposit(s.users[0], 1000)
            assert await watcher.poll() == 0
            await s.chain.undo(before)  # the block with the deposit is gone
            await s.mine(4)
            assert await watcher.poll() == 0
            assert s.balance("alice") == (0, 0, 0, 0)
            assert await s.vault.functions.deposit_count().call() == 0
    within(60, scenario)


def test_catching_up_reads_to_the_confirmed_head_and_waits_for_the_journal(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            for n in range(4):
                await s.deposit(s.users[n % 2], 100)
            await s.mine(2)
            watcher = s.watcher(confirmations=2)
            head = await s.w3.eth.block_number
            assert await watcher.catch_up() == head - 2
            assert watcher.journaled_through() == head - 2
            assert (s.balance("alice")[0], s.balance("bob")[0]) == (D(200), D(200))
    within(60, scenario)


def test_a_range_whose_deposits_skip_an_id_is_read_again(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            await s.deposit(s.users[0], 100)
            await s.deposit(s.users[0], 200)
            read = watcher._logs

            async def losing_one(start: int, end: int) -> list[Any]:
                return [e for e in await read(start, end) if not (
                    e["event"] == "Deposited" and e["args"]["deposit_id"] == 0)]

            watcher._logs = losing_one  # type: ignore[method-assign]
            start = watcher.cursor
            assert await watcher.poll() == 0  # the node lost a log: nothing is skipped
            assert watcher.cursor.next_deposit_id == start.next_deposit_id
            watcher._logs = read  # type: ignore[method-assign]
            assert await watcher.poll() == 2
            assert s.balance("alice")[0] == D(300)
    within(60, scenario)


def test_a_withdrawal_is_set_aside_released_by_the_operator_and_paid(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            alice = s.users[0]
            await s.deposit(alice, 1000)
            await watcher.poll()
            await s.request_withdrawal(alice, 400)
            before = await s.usdc.functions.balanceOf(alice).call()
            await watcher.poll()
            assert s.balance("alice") == (D(600), 0, D(400), 0)
            work = settler._work.get_nowait()  # WithdrawalReleaseRequested
            assert isinstance(work, ev.WithdrawalReleaseRequested)
            await settler.release(work)
            await watcher.poll()
            assert s.balance("alice") == (D(600), 0, 0, D(400))
            assert await s.usdc.functions.balanceOf(alice).call() == before + 400 * USDC
            assert await s.vault.functions.balances(alice).call() == 600 * USDC
    within(60, scenario)


def test_a_request_raised_before_the_release_is_mined_is_not_paid_early(
        tmp_path: Path, backend: str) -> None:
    """The user asks for 500, and raises it to 1,500 before the solver's release is mined:
    the release pays the 500 the solver set aside, the other 1,000 waits for the vault's
    delay, and the solver sets it aside in turn (before, the release paid 1,500 at once)."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            alice = s.users[0]
            await s.deposit(alice, 2000)
            await watcher.poll()
            await s.request_withdrawal(alice, 500)
            await watcher.poll()
            work = settler._work.get_nowait()
            assert isinstance(work, ev.WithdrawalReleaseRequested) and work.amount == D(500)
            await s.request_withdrawal(alice, 1500)
            before = await s.usdc.functions.balanceOf(alice).call()
            await settler.release(work)  # sent after the raise, mined after it
            await s.mine(1)
            assert await s.usdc.functions.balanceOf(alice).call() == before + 500 * USDC
            assert await s.vault.functions.withdrawal_requested(alice).call() == 1000 * USDC
            await watcher.poll()
            available, _, withdrawing, withdrawn = s.balance("alice")
            assert withdrawn == D(500) and available + withdrawing == D(1500)
    within(60, scenario)


# --- the settler ---------------------------------------------------------------------------


def filled_order(s: Stack, account: str = "alice", collateral: str = "1000",
                 client_id: str = "o1", signed: bool = True) -> ev.MintRequested:
    """An order of SY2 (8 A1 at 100 + 1 A2 at 200 per unit), signed by the account's wallet,
    filled in one batch."""
    mints: list[ev.MintRequested] = []
    s.bus.subscribe(ev.MintRequested, lambda e: mints.append(e.event))
    s.submit(BookUpdated(s.clock(), book("A1", ("100", "1000"))))
    s.submit(BookUpdated(s.clock(), book("A2", ("200", "1000"))))
    s.submit(SubmitIndexOrder(s.clock(), account, client_id, "SY2", D(collateral),
                              signed=s.terms(account, client_id, most=collateral)
                              if signed else None))
    s.submit(PlanBatch(s.clock()))
    requests = [o for o in s.engine.asset_orders.values() if not o.is_done]
    for n, r in enumerate(requests):
        s.submit(AssetOrderFilled(s.clock(), r.id, f"{client_id}-t{n}", r.price, r.quantity,
                                  D(0), "USDC"))
        s.submit(AssetOrderEnded(s.clock(), r.id, AssetOrderOutcome.FILLED, r.quantity))
    [mint] = mints
    return mint


async def funded(s: Stack, watcher: VaultWatcher, account_index: int, amount: int) -> None:
    await s.deposit(s.users[account_index], amount)
    await watcher.poll()


def test_a_filled_order_is_charged_and_minted_in_one_transaction_exactly_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            alice = s.users[0]
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)
            order = s.engine.orders[mint.order_id]
            confirmed = await settler.settle(Mint(mint.order_id, 1, mint.units))
            assert confirmed.tx_hash.startswith("0x") and len(confirmed.tx_hash) == 66
            receipt = await s.w3.eth.get_transaction_receipt(confirmed.tx_hash)  # type: ignore[arg-type]
            assert confirmed.block == receipt["blockNumber"]
            assert await s.token.functions.balanceOf(alice).call() == int(mint.units * 10**18)
            assert await s.vault.functions.balances(alice).call() == int(
                (D(1500) - order.spent) * USDC)
            nonce = await s.w3.eth.get_transaction_count(s.operator.address)
            again = await settler.settle(Mint(mint.order_id, 2, mint.units))  # a retry
            assert again.tx_hash == confirmed.tx_hash  # found on-chain, nothing sent
            assert await s.w3.eth.get_transaction_count(s.operator.address) == nonce
            assert await s.token.functions.totalSupply().call() == int(mint.units * 10**18)
    within(60, scenario)


def test_an_unsigned_order_fails_its_mint_with_the_reason_and_nothing_is_sent(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s, signed=False)
            failed = await settler.settle(Mint(mint.order_id, 1, mint.units))
            assert isinstance(failed, MintFailed) and failed.reason == UNSIGNED
            assert await s.w3.eth.get_transaction_count(s.operator.address) == 0
            assert await s.token.functions.totalSupply().call() == 0
    within(60, scenario)


def test_a_settler_killed_after_recording_its_job_resumes_it_and_settles_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, first = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)

            async def killed(raw: Any) -> Any:
                raise SystemExit("killed between recording the job and sending")

            s.w3.eth.send_raw_transaction = killed  # type: ignore[method-assign]
            with suppress(SystemExit):
                await first.settle(Mint(mint.order_id, 1, mint.units))
            del s.w3.eth.send_raw_transaction  # the instance attribute: back to the real one
            job = s.journal.record(f"settlement:{mint.order_id}")
            assert job is not None and '"txs": ["' in job
            second = s.settler()  # its start: the journal shows the mint asked, not confirmed
            assert second._asked.get_nowait() == Mint(mint.order_id, 1, mint.units)
            confirmed = await second.settle(Mint(mint.order_id, 1, mint.units))
            assert confirmed.tx_hash.startswith("0x")
            s.submit(confirmed)
            assert s.settler()._asked.empty()  # minted: nothing to ask again
            assert await s.w3.eth.get_transaction_count(s.operator.address) == 1
            assert await s.token.functions.totalSupply().call() == int(mint.units * 10**18)
    within(60, scenario)


def test_a_stuck_settlement_is_replaced_with_higher_fees_and_mined_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            settler = s.settler(settings=SettleSettings(confirmations=0, receipt_timeout_s=0.3))
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)
            await s.chain.automine(False)
            settling = asyncio.create_task(settler.settle(Mint(mint.order_id, 1, mint.units)))
            while '", "' not in (s.journal.record(f"settlement:{mint.order_id}") or ""):
                await asyncio.sleep(0.05)  # until a replacement is recorded
            await s.chain.automine(True)
            await s.mine(1)
            confirmed = await settling
            assert confirmed.tx_hash.startswith("0x")
            assert await s.token.functions.totalSupply().call() == int(mint.units * 10**18)
            assert await s.w3.eth.get_transaction_count(s.operator.address) == 1
    within(60, scenario)


def test_settlements_in_flight_together_take_a_nonce_each_and_reconcile(
        tmp_path: Path, backend: str) -> None:
    """Four jobs of one mint each are worked on at once, each with its own nonce; on anvil
    all are sent before any is mined (automine off; the embedded chain takes no transaction
    beyond the account's mined nonce, so there each is mined as it is sent). Each order is
    settled once, and each reconciliation agrees: the settlements mined that the engine has
    not applied yet are taken into account."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            settler = s.settler(settings=SettleSettings(confirmations=0, batch_size=1))
            reconciler = VaultReconciler(s.w3, s.vault, "USDC", 6, {"alice": s.users[0]},
                                         watcher.journaled_through,
                                         s.following(LedgerSide()), settler.unapplied)
            reconciler.attach(s.bus)
            settler.after_confirmed = reconciler.after_settlement
            await funded(s, watcher, 0, 5000)
            held = backend == "anvil"
            await s.chain.automine(not held)
            working = asyncio.create_task(settler.run())
            mints = [filled_order(s, client_id=f"o{n}") for n in range(4)]
            operator = s.operator.address
            await counted(lambda: _sent(s, mints), len(mints))
            nonces = {(await s.w3.eth.get_transaction(_sent_tx(s, m)))["nonce"] for m in mints}
            assert nonces == {0, 1, 2, 3}
            if held:
                assert await s.w3.eth.get_transaction_count(operator) == 0  # none mined yet
                await s.chain.automine(True)
                await s.mine(1)
            await counted(lambda: _minted(s), len(mints))
            await counted(lambda: _idle(settler), 1)  # every reconciliation done
            working.cancel()
            assert await s.w3.eth.get_transaction_count(operator) == 4
            assert await s.token.functions.totalSupply().call() == sum(
                int(m.units * 10**18) for m in mints)
            assert reconciler.disagreements == []
            assert reconciler.checks["alice"].agrees
    within(60, scenario)


def test_a_worker_is_free_once_its_settlement_is_mined_and_confirmations_follow_apart(
        tmp_path: Path, backend: str) -> None:
    """One worker, one order a job, confirmations 2, blocks mined only by transactions: every
    settlement is sent and mined while the ones before wait for their confirmations (a worker
    that waited would wait for ever: no block comes without a transaction)."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            settler = s.settler(settings=SettleSettings(confirmations=2, poll_s=0.01,
                                                        in_flight=1, batch_size=1))
            await funded(s, watcher, 0, 5000)
            working = asyncio.create_task(settler.run())
            mints = [filled_order(s, client_id=f"o{n}") for n in range(3)]

            async def settled() -> int:
                return sum([await s.settled_block(m) != 0 for m in mints])

            await counted(settled, len(mints))
            assert await _minted(s) < len(mints)  # the last has no block on top yet
            await s.mine(2)
            await counted(lambda: _minted(s), len(mints))
            await counted(lambda: _idle(settler), 1)
            working.cancel()
    within(60, scenario)


async def counted(count: Callable[[], Awaitable[int]], wanted: int,
                  timeout_s: float = 30) -> None:
    """Wait until ``count()`` reaches ``wanted``."""
    async with asyncio.timeout(timeout_s):
        while await count() < wanted:
            await asyncio.sleep(0.02)


async def _sent(s: Stack, mints: list[ev.MintRequested]) -> int:
    """The settlements recorded with a transaction (recorded before it is sent), or settled."""
    return sum(_sent_tx(s, m) is not None for m in mints)


def _sent_tx(s: Stack, mint: ev.MintRequested) -> Any:
    """The mint's settlement transaction as the settler recorded it: its job's last while it
    works on it, the one reported once confirmed."""
    job = s.journal.record(f"settlement:{mint.order_id}")
    if job is not None and json.loads(job)["txs"]:
        return "0x" + json.loads(job)["txs"][-1]
    settled = s.journal.record(f"settled:{mint.order_id}")
    return None if settled is None else json.loads(settled)["tx"]


async def _minted(s: Stack) -> int:
    return sum(1 for o in s.engine.orders.values() if o.mint_tx)


async def _idle(settler: Settler) -> int:
    return int(settler.idle)


def test_a_send_that_never_reached_the_node_leaves_no_gap_in_the_nonces(
        tmp_path: Path, backend: str) -> None:
    """The first settlement's send fails before the node has it: its nonce goes to the next
    job, which is mined at once (no gap holds it back), and the first one's retry finds its
    recorded nonce taken and settles with a new one, once."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 3000)
            first, second = (filled_order(s, client_id=f"o{n}") for n in range(2))

            async def lost(raw: Any) -> Any:
                raise ConnectionError("the node went away before it had the transaction")

            s.w3.eth.send_raw_transaction = lost  # type: ignore[method-assign]
            with pytest.raises(ConnectionError):
                await settler.settle(Mint(first.order_id, 1, first.units))
            del s.w3.eth.send_raw_transaction  # the instance attribute: back to the real one
            confirmed = await settler.settle(Mint(second.order_id, 1, second.units))
            assert isinstance(confirmed, MintConfirmed)
            tx = await s.w3.eth.get_transaction(confirmed.tx_hash)  # type: ignore[arg-type]
            assert tx["nonce"] == 0  # the lost send's nonce, taken again
            again = await settler.settle(Mint(first.order_id, 2, first.units))
            assert isinstance(again, MintConfirmed)
            assert await s.w3.eth.get_transaction_count(s.operator.address) == 2
            assert await s.token.functions.totalSupply().call() == int(
                (first.units + second.units) * 10**18)
    within(60, scenario)


def test_a_wrong_operator_key_fails_the_mint_with_the_vaults_reason_and_sends_nothing(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            stranger = Account.create()
            await s.wait(await s.w3.eth.send_transaction(
                {"from": s.owner, "to": stranger.address, "value": 10**18}))
            settler = s.settler(operator=stranger)
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)
            failed = await settler.settle(Mint(mint.order_id, 1, mint.units))
            assert "not operator" in getattr(failed, "reason", "")
            assert await s.w3.eth.get_transaction_count(stranger.address) == 0
            assert await s.token.functions.totalSupply().call() == 0
    within(60, scenario)


def test_a_node_away_fails_the_attempt_and_the_retry_settles_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)
            reports: list[Input] = []
            settler.submit = reports.append

            async def away(*args: Any) -> Any:
                raise ConnectionError("the node is away")

            s.w3.eth.get_transaction_count = away  # type: ignore[method-assign]
            running = asyncio.create_task(settler.run())
            while not reports:
                await asyncio.sleep(0.01)
            [failed] = reports
            assert isinstance(failed, MintFailed) and "could not be reached" in failed.reason
            del s.w3.eth.get_transaction_count  # back
            confirmed = await settler.settle(Mint(mint.order_id, 2, mint.units))
            running.cancel()
            assert isinstance(confirmed, MintConfirmed)
            assert await s.token.functions.totalSupply().call() == int(mint.units * 10**18)
    within(60, scenario)


def test_the_reconciler_counts_deposits_not_yet_journaled_and_reports_a_disagreement(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=2), s.settler()
            ledger_side = s.following(LedgerSide())
            reconciler = VaultReconciler(s.w3, s.vault, "USDC", 6, {"alice": s.users[0]},
                                         watcher.journaled_through, ledger_side)
            reconciler.attach(s.bus)
            settler.after_confirmed = reconciler.after_settlement
            await s.deposit(s.users[0], 1500)
            await s.mine(2)
            await watcher.poll()
            mint = filled_order(s)
            order = s.engine.orders[mint.order_id]
            s.submit(await settler.settle(Mint(mint.order_id, 1, mint.units)))
            await s.deposit(s.users[0], 70)  # in the vault, below the confirmations
            check = await reconciler.after_settlement(mint.order_id, "alice")
            assert check is not None and check.agrees
            assert check.ledger == D(1500) - order.spent
            ledger_side.credited["alice", "USDC"] += D(1)  # the ledger off by one
            check = await reconciler.check("alice")
            assert check is not None and not check.agrees
            assert reconciler.disagreements == [check]
    within(60, scenario)


def test_a_settlement_sent_after_the_ledger_was_read_is_no_disagreement(
        tmp_path: Path, backend: str) -> None:
    """The reconciler takes the ledger's side and the settlements not applied at one moment,
    then asks the node: a settlement not sent yet at that moment but mined by then is counted,
    since every order waiting for its mint is (not only those with a job)."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 1500)
            mint = filled_order(s)
            taken = settler.unapplied("alice")  # the moment the reconciler reads the ledger
            reconciler = VaultReconciler(s.w3, s.vault, "USDC", 6, {"alice": s.users[0]},
                                         watcher.journaled_through, s.following(LedgerSide()),
                                         lambda _: taken)
            confirmed = await settler.settle(Mint(mint.order_id, 1, mint.units))
            assert isinstance(confirmed, MintConfirmed)  # mined, not applied by the engine yet
            check = await reconciler.check("alice")
            assert check is not None and check.agrees, check
            s.submit(confirmed)  # minted while a check waits on the node: the settler forgets it
            [pending] = taken
            assert await pending.settled_by(await s.w3.eth.block_number)
    within(60, scenario)


def test_a_settlement_reorganised_after_its_confirmations_is_sent_again_and_restated(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, settler = s.watcher(confirmations=0), s.settler()
            await funded(s, watcher, 0, 1500)
            before = await s.chain.mark()
            mint = filled_order(s)
            confirmed = await settler.settle(Mint(mint.order_id, 1, mint.units))
            s.submit(confirmed)
            assert isinstance(confirmed, MintConfirmed)
            [kept] = settler.reported()
            assert kept.tx == confirmed.tx_hash
            await s.chain.undo(before)  # the settlement's block leaves the chain
            await s.mine(3)
            assert await s.settled_block(mint) == 0
            await settler.check_reported()
            [moved] = events_of(s, ev.IndexOrderMintRestated)
            assert moved.previous_tx == confirmed.tx_hash != moved.tx_hash
            order = s.engine.orders[mint.order_id]
            assert order.mint_tx == moved.tx_hash
            assert await s.settled_block(mint) != 0
            assert await s.token.functions.balanceOf(s.users[0]).call() == int(mint.units * 10**18)
            await settler.check_reported()  # nothing more to do
            assert len(events_of(s, ev.IndexOrderMintRestated)) == 1
    within(60, scenario)


def test_a_user_leaves_after_the_delay_while_the_vault_is_paused(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            alice = s.users[0]
            await s.deposit(alice, 1000)
            await watcher.poll()
            s.submit(SubmitIndexOrder(s.clock(), "alice", "o1", "SY2", D(600)))  # no book: waits
            await s.request_withdrawal(alice, 700)
            await watcher.poll()
            # 400 available set aside at once, and the waiting order gives the other 300
            assert s.balance("alice") == (0, D(300), D(700), 0)
            order = s.engine.order("alice", "o1")
            assert order is not None and order.collateral == D(300)
            # nobody releases it early (no settler here), and the vault is paused: the user
            # still leaves after the delay
            await s.wait(await s.vault.functions.pause().transact({"from": s.owner}))
            await s.chain.advance(DELAY_S + 1)
            await s.wait(await s.vault.functions.withdraw().transact({"from": alice}))
            await watcher.poll()
            assert s.balance("alice") == (0, D(300), 0, D(700))
            assert not [e for t in s.engine_transactions() for e in t.events
                        if isinstance(e.event, ev.VaultOverpaid)]
            assert await s.vault.functions.balances(alice).call() == 300 * USDC
    within(60, scenario)


# --- reorganisations deeper than the confirmations ----------------------------------------------


def events_of(s: Stack, kind: type[ev.Event]) -> list[Any]:
    return [e.event for t in s.engine_transactions() for e in t.events
            if isinstance(e.event, kind)]


def test_a_credited_deposit_a_deep_reorganisation_removes_is_an_alarm_and_nothing_stalls(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=2)
            alice = s.users[0]
            await s.deposit(alice, 500)
            await s.mine(2)
            assert await watcher.poll() == 1
            before = await s.chain.mark()
            await s.deposit(alice, 1000)
            await s.mine(3)
            assert await watcher.poll() == 1
            assert s.balance("alice")[0] == D(1500)
            await s.chain.undo(before)  # four blocks deep: past the confirmations
            await s.mine(5)
            await watcher.poll()
            [doubt] = events_of(s, ev.AccountInDoubt)
            assert (doubt.account, doubt.amount, doubt.kind) == ("alice", D(1000), "deposit")
            s.submit(SubmitIndexOrder(s.clock(), "alice", "o1", "SY2", D(100)))
            [refused] = events_of(s, ev.IndexOrderRejected)
            assert refused.reason is RejectReason.ACCOUNT_IN_DOUBT
            # the next deposit takes the vanished one's id in the vault: credited, not skipped
            await s.deposit(s.users[1], 200)
            await s.mine(2)
            await watcher.poll()
            assert s.balance("bob")[0] == D(200)
            assert watcher.cursor.next_deposit_id == 2
            # a restart remembers nothing in doubt twice
            assert s.watcher(confirmations=2).cursor == watcher.cursor
    within(60, scenario)


def test_a_payout_mined_again_at_another_position_is_applied_once(
        tmp_path: Path, backend: str) -> None:
    """Fact ids are the transaction and the ordinal among the vault's events in it: a log
    index would change when the payout is mined again after another transaction."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            alice, bob = s.users[:2]
            await s.deposit(alice, 1000)
            await s.request_withdrawal(alice, 400)
            await watcher.poll()
            before = await s.chain.mark()
            release = s.operator.sign_transaction(
                await s.vault.functions.release(alice, 400 * USDC).build_transaction(
                    {"from": s.operator.address, "gas": 300_000,
                     "nonce": await s.w3.eth.get_transaction_count(s.operator.address)}))
            await s.chain.automine(False)
            await s.vault.functions.deposit(10 * USDC, 0).transact({"from": bob})
            await s.w3.eth.send_raw_transaction(release.raw_transaction)
            await s.mine(1)  # bob's deposit, then the payout, in one block
            await s.chain.automine(True)
            await watcher.poll()
            assert s.balance("alice") == (D(600), 0, 0, D(400))
            await s.chain.undo(before)
            await s.mine(1)
            await s.wait(await s.w3.eth.send_raw_transaction(release.raw_transaction))
            await s.mine(2)
            await watcher.poll()
            assert s.balance("alice") == (D(600), 0, 0, D(400))  # paid once, as the vault
            assert await s.vault.functions.balances(alice).call() == 600 * USDC
            [doubt] = events_of(s, ev.AccountInDoubt)  # bob's deposit was not mined again
            assert (doubt.account, doubt.amount) == ("bob", D(10))
    within(60, scenario)


def test_a_watcher_far_behind_a_node_with_recent_state_only_catches_up(tmp_path: Path) -> None:
    """anvil keeping 16 states answers no ``deposit_count`` 200 blocks back: the watcher finds
    gaps from the logs' ids and asks the vault's count near the head only."""
    async def scenario() -> None:
        async with anvil_node("--prune-history", "16") as node, _stack(tmp_path, node) as s:
            await s.deposit(s.users[0], 100)
            await s.deposit(s.users[1], 200)
            await s.mine(200)
            with pytest.raises(Web3RPCError, match="BlockOutOfRange"):  # it cannot, so far back
                await s.vault.functions.deposit_count().call(
                    block_identifier=await s.w3.eth.block_number - 150)
            watcher = s.watcher(confirmations=2)
            await watcher.poll()
            assert (s.balance("alice")[0], s.balance("bob")[0]) == (D(100), D(200))
            assert watcher.cursor.next_block == await s.w3.eth.block_number - 1
    within(120, scenario)


# --- signed orders, many to a transaction ------------------------------------------------


async def signer_of(s: Stack, account: str, deposit: int) -> LocalAccount:
    """A wallet whose key the test holds, funded, bound to ``account`` (one the stack has not
    bound) and with ``deposit`` USDC in the vault (credited once the watcher reads it)."""
    wallet: LocalAccount = Account.create()
    await s.wait(await s.w3.eth.send_transaction(
        {"from": s.owner, "to": wallet.address, "value": 10**18}))
    await transact(s.w3, wallet, s.usdc.functions.mint(wallet.address, deposit * USDC))
    await transact(s.w3, wallet, s.usdc.functions.approve(s.vault.address, 2**256 - 1))
    await transact(s.w3, wallet, s.vault.functions.deposit(deposit * USDC, 0))
    s.bind(account, wallet.address, wallet.key.to_0x_hex())
    return wallet


def test_signed_orders_settle_many_to_a_transaction_each_once(
        tmp_path: Path, backend: str) -> None:
    """Three users' signed orders: one job, one transaction, each order charged and minted
    once as its wallet signed; the vault's record of each says what was charged."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=0)
            wallets = [await signer_of(s, a, 1500) for a in ("dave", "erin", "frank")]
            await watcher.poll()
            settler = s.settler(settings=SettleSettings(confirmations=0, gather_s=0.5))
            working = asyncio.create_task(settler.run())
            sent_before = await s.w3.eth.get_transaction_count(s.operator.address)
            mints = [filled_order(s, account, client_id=f"o{n}")
                     for n, account in enumerate(("dave", "erin", "frank"))]
            await counted(lambda: _minted(s), 3)
            working.cancel()
            txs = {s.engine.orders[m.order_id].mint_tx for m in mints}
            assert len(txs) == 1  # one transaction for the three
            assert await s.w3.eth.get_transaction_count(s.operator.address) == sent_before + 1
            for mint, wallet in zip(mints, wallets, strict=True):
                order = s.engine.orders[mint.order_id]
                filled, block, _ = await s.vault.functions.order_state(
                    signed_order_id(wallet.address, order.client_order_id)).call()
                assert filled == int(order.spent * USDC) and block > 0
                assert await s.token.functions.balanceOf(wallet.address).call() == int(
                    mint.units * 10**18)
    within(90, scenario)


async def signed_and_filled(s: Stack, *accounts: str,
                            ) -> list[tuple[LocalAccount, ev.MintRequested]]:
    """Per account, a wallet with 1,500 USDC credited and an order (``<account>-1``) it
    signed, filled: its mint asked for."""
    watcher = s.watcher(confirmations=0)
    wallets = [await signer_of(s, account, 1500) for account in accounts]
    await watcher.poll()
    return [(wallet, filled_order(s, account, client_id=f"{account}-1"))
            for account, wallet in zip(accounts, wallets, strict=True)]


def test_a_signed_order_the_vault_skips_for_good_is_refused_alone_and_given_back(
        tmp_path: Path, backend: str) -> None:
    """Erin cancels her order on-chain and the grace passes before it is settled: the vault
    skips it ("cancelled"), Dave's settles in the same transaction. A cancellation holds for
    every attempt: Erin's mint is refused for good, her collateral is hers again and the
    units go back to the house."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            (_, dave_order), (erin, erin_order) = await signed_and_filled(s, "dave", "erin")
            orders = [dave_order, erin_order]
            await transact(s.w3, erin, s.vault.functions.cancel_order("erin-1"))
            grace = await s.vault.functions.withdrawal_grace().call()
            await s.chain.advance(grace + 1)
            settler = s.settler()
            outcomes = await settler.settle_all([Mint(m.order_id, 1, m.units) for m in orders])
            by_order = {o.order_id: o for o in outcomes}
            assert isinstance(by_order[orders[0].order_id], MintConfirmed)
            refused = by_order[orders[1].order_id]
            assert isinstance(refused, MintRefused) and refused.reason.endswith("cancelled")
            assert await s.token.functions.balanceOf(erin.address).call() == 0
            for outcome in outcomes:
                s.submit(outcome)
            order = s.engine.orders[erin_order.order_id]
            assert order.state is OrderState.MINT_REFUSED
            assert s.balance("erin")[:2] == (D(1500), 0)  # as in the vault: nothing charged
            assert await s.vault.functions.balances(erin.address).call() == 1500 * USDC
    within(90, scenario)


def test_a_signed_job_killed_before_its_send_is_resumed_with_its_nonce_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            mints = [mint for _, mint in await signed_and_filled(s, "dave", "erin")]
            asked = [Mint(m.order_id, 1, m.units) for m in mints]
            sent_before = await s.w3.eth.get_transaction_count(s.operator.address)

            async def killed(raw: Any) -> Any:
                raise SystemExit("killed between recording the job and sending")

            s.w3.eth.send_raw_transaction = killed  # type: ignore[method-assign]
            with suppress(SystemExit):
                await s.settler().settle_all(asked)
            del s.w3.eth.send_raw_transaction
            [job] = s.journal.records("settlement:").values()
            assert sorted(json.loads(job)["orders"]) == [m.order_id for m in mints]
            second = s.settler()  # its start: the job and both mints come back
            outcomes = await second.settle_all([second._asked.get_nowait()])
            assert sorted(o.order_id for o in outcomes
                          if isinstance(o, MintConfirmed)) == [m.order_id for m in mints]
            assert await s.w3.eth.get_transaction_count(
                s.operator.address) == sent_before + 1
    within(90, scenario)


def test_an_order_its_wallet_cancels_on_chain_is_ended_by_the_engine_once(
        tmp_path: Path, backend: str) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher = s.watcher(confirmations=1)
            dave = await signer_of(s, "dave", 1500)
            await s.mine(1)
            await watcher.poll()
            s.submit(SubmitIndexOrder(s.clock(), "dave", "dave-1", "SY2", D(1000),
                                      signed=s.terms("dave", "dave-1")))  # no book: it waits
            await transact(s.w3, dave, s.vault.functions.cancel_order("dave-1"))
            await watcher.poll()
            order = s.engine.order("dave", "dave-1")
            assert order is not None and order.status is OrderStatus.OPEN  # not confirmed yet
            await s.mine(1)
            await watcher.poll()
            assert order.status is OrderStatus.CANCELED
            [ended] = events_of(s, ev.IndexOrderCompleted)
            assert ended.reason == "canceled on-chain by its wallet"
            assert s.balance("dave")[:2] == (D(1500), 0)
    within(60, scenario)


def test_a_cancel_named_with_bytes_that_are_not_text_stops_no_deposit(
        tmp_path: Path, backend: str) -> None:
    """The vault takes any bytes as the name to cancel: a log whose name is not UTF-8 is
    skipped, and the deposits after it are credited (it failed every read before)."""
    async def scenario() -> None:
        async with stack(tmp_path, backend) as s:
            watcher, alice = s.watcher(confirmations=0), s.users[0]
            selector = HexBytes(s.vault.encode_abi("cancel_order", ["x"]))[:4]
            name = encode(["bytes"], [b"\xff\xfe\x00\x01 not text"])  # a string's layout
            await s.wait(await s.w3.eth.send_transaction(
                {"from": alice, "to": s.vault.address, "data": selector + name}))
            await s.deposit(alice, 100)
            await watcher.poll()
            assert s.balance("alice")[0] == D(100)
    within(60, scenario)
