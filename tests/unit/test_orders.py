"""The index order's life: one transition table, and a defect (a trigger its state does not
allow) raises instead of corrupting the order."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from solver.core.orders import (
    TRANSITIONS,
    IndexOrder,
    InvalidTransition,
    MintStatus,
    OrderState,
    OrderStatus,
    Trigger,
)


def order() -> IndexOrder:
    return IndexOrder(1, "alice", "o1", "SY2", "USDC", D(1000), "0xa11ce", 0)


def test_an_order_goes_from_ready_to_minted_through_its_triggers() -> None:
    o = order()
    o.engage(7)
    assert (o.state, o.batch_id, o.is_open, o.is_ready) == (OrderState.ENGAGED, 7, True, False)
    o.settle()
    assert (o.state, o.batch_id, o.is_ready) == (OrderState.READY, None, True)
    o.engage(8)
    o.end_when_settled(OrderStatus.CANCELED, "c1", "canceled at the user's request")
    assert (o.state, o.ending, o.is_open) == (OrderState.ENDING, OrderStatus.CANCELED, True)
    o.spent = D(400)
    o.close(OrderStatus.CANCELED)
    assert (o.state, o.status, o.released, o.ending, o.batch_id, o.is_open) == (
        OrderState.CLOSED, OrderStatus.CANCELED, D(600), None, None, False)
    o.request_mint()
    assert (o.mint_status, o.mint_attempts) == (MintStatus.REQUESTED, 1)
    o.mint_failed(retry_at=5000)
    assert (o.mint_status, o.mint_retry_at) == (MintStatus.RETRY_WAIT, 5000)
    o.retry_mint()
    assert (o.mint_status, o.mint_attempts, o.mint_retry_at) == (MintStatus.REQUESTED, 2, None)
    o.minted("0xabc", D("0.4"))
    assert (o.state, o.mint_tx, o.minted_units) == (OrderState.MINTED, "0xabc", D("0.4"))


@pytest.mark.parametrize(("state", "trigger"), [
    (state, trigger) for state in OrderState for trigger in Trigger
    if (state, trigger) not in TRANSITIONS])
def test_a_trigger_the_state_does_not_allow_raises_and_changes_nothing(
        state: OrderState, trigger: Trigger) -> None:
    o = order()
    o.state = state
    with pytest.raises(InvalidTransition, match=f"{trigger.value} when {state.value}"):
        o.move(trigger)
    assert o.state is state


def test_every_state_is_reached_and_only_a_mint_done_or_refused_is_final() -> None:
    reached = {OrderState.READY} | set(TRANSITIONS.values())
    assert reached == set(OrderState)
    final = {s for s in OrderState if not any(f == s for f, _ in TRANSITIONS)}
    assert final == {OrderState.MINTED, OrderState.MINT_REFUSED}
    assert not any(f == OrderState.CLOSED and t != Trigger.REQUEST_MINT for f, t in TRANSITIONS)
