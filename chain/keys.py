"""Settlement keys, computed off-chain exactly as ``CollateralVault.order_key`` computes them."""

from __future__ import annotations

from eth_abi.abi import encode
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak


def order_key(chain_id: int, vault: ChecksumAddress, order_uid: bytes) -> bytes:
    """keccak256(abi.encode(chain_id, vault, order_uid)): the chain and the vault are part of the
    key, so one journal order id never collides across deployments or chains. ``order_uid`` is
    the order's unique id in the journal (deployment prefix and order id), at most 256 bytes."""
    if len(order_uid) > 256:
        raise ValueError(f"order uid is {len(order_uid)} bytes; the vault takes at most 256")
    return keccak(encode(["uint256", "address", "bytes"], [chain_id, vault, order_uid]))


def signed_order_id(user: str, cl_ord_id: str) -> bytes:
    """The vault's name of a signed order (``CollateralVault.order_id``):
    keccak256(abi.encode(user, keccak256(cl_ord_id)))."""
    return keccak(encode(["address", "bytes32"], [user, keccak(cl_ord_id.encode())]))
