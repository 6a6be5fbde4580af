"""Every life in the core moves by its table and refuses any other move loudly: the batch,
the asset order and the withdrawal (the index order's: ``test_orders.py``)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from solver.core.batches import AssetOrder, AssetOrderState, Batch, BatchState
from solver.core.commands import AssetOrderOutcome
from solver.core.custody import Withdrawal, WithdrawalState, WithdrawalTrigger
from solver.core.lifecycle import InvalidTransition
from solver.core.model import Side


def test_a_batch_settles_once() -> None:
    batch = Batch(1, 0, {7: D(1)}, {"SY2": D(1000)}, {})
    assert batch.state is BatchState.IN_FLIGHT and not batch.settled
    batch.settle({7: D(1)}, {"A1": D(100)})
    assert batch.settled and batch.filled_units == {7: D(1)}
    with pytest.raises(InvalidTransition, match="batch 1: settle when settled"):
        batch.settle({}, {})


def test_an_asset_order_ends_once_and_takes_its_acknowledgement_at_any_time() -> None:
    order = AssetOrder(3, "ixs-3", 1, "A1", "A1USDC", Side.BUY, D(100), D(2))
    order.end(AssetOrderOutcome.FILLED, D(2), "")  # an IOC filled before its ack
    order.accept("x-3")  # the ack, late
    assert (order.state, order.exchange_order_id) == (AssetOrderState.ENDED, "x-3")
    assert not order.is_done  # its trades are not recorded yet
    order.filled = D(2)
    assert order.is_done
    with pytest.raises(InvalidTransition, match="asset order 3: end when ended"):
        order.end(AssetOrderOutcome.CANCELED, D(0), "")


def test_a_withdrawal_asks_for_its_release_once_and_ends_once() -> None:
    withdrawal = Withdrawal("w-1", "0xabc", "alice", "USDC", D(300))
    withdrawal.move(WithdrawalTrigger.REQUEST_RELEASE)
    with pytest.raises(InvalidTransition, match="request_release when release_requested"):
        withdrawal.move(WithdrawalTrigger.REQUEST_RELEASE)
    withdrawal.move(WithdrawalTrigger.PAY)
    assert withdrawal.state is WithdrawalState.PAID
    with pytest.raises(InvalidTransition, match="withdrawal w-1: replace when paid"):
        withdrawal.move(WithdrawalTrigger.REPLACE)
