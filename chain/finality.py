"""When a block counts as final: ``confirmations`` blocks on top of it, or the node's own
``finalized`` block (a proof-of-stake chain's finality, answered by anvil and the embedded
chain too)."""

from __future__ import annotations

from typing import Any, Literal

from web3 import AsyncWeb3

FINALIZED: Literal["finalized"] = "finalized"

Confirmations = int | Literal["finalized"]


async def confirmed_head(w3: AsyncWeb3[Any], confirmations: Confirmations,
                         head: int | None = None) -> int:
    """The newest block that counts as final (-1: none yet)."""
    if not isinstance(confirmations, int):
        return int((await w3.eth.get_block(FINALIZED))["number"])
    if head is None:
        head = await w3.eth.block_number
    return head - confirmations


async def finalized_block(w3: AsyncWeb3[Any]) -> int | None:
    """The node's finalized block, or None if it does not say."""
    try:
        return int((await w3.eth.get_block(FINALIZED))["number"])
    except Exception:  # a node without the tag: the caller keeps a fixed window instead
        return None
