"""The order a user signs (EIP-712, in the vault's domain), as the vault checks it.

The same type serves the three that need it: the user's wallet signs (``sign``), the gateway
checks who signed before the order reaches the engine (``signer``), and the settler hands the
order (``signed_order``: the engine's ``SignedTerms`` in the tokens' units) and its signature
to the vault's ``settle_batch``, which checks them again on-chain (``as_call``). Amounts here
are integers in the tokens' smallest units; ``docs/chain.md`` gives the type and
``docs/fix-gateway.md`` the FIX fields each comes from.

eth-account and eth-utils take 0.6 s to import: they are imported when a signature is first
made or checked, so that nothing imports them only to start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from solver.core.money import smallest_units
from solver.core.signed_terms import SignedTerms

DOMAIN_NAME = "IndexSolverVault"
DOMAIN_VERSION = "1"
MAX_CL_ORD_ID = 64
"""The longest name a signed order may have (the vault's ``String[64]``)."""

ORDER_FIELDS = [
    {"name": "user", "type": "address"},
    {"name": "token", "type": "address"},
    {"name": "maxCollateral", "type": "uint256"},
    {"name": "limitPrice", "type": "uint256"},
    {"name": "maxFeeBps", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
    {"name": "clOrdId", "type": "string"},
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass(frozen=True, slots=True)
class Domain:
    """The vault the signature is for: a signature for another vault or chain is not valid
    here."""

    chain_id: int
    vault: str


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """What the user signed: at most ``max_collateral`` (collateral's smallest units, fees
    included) for units of ``token`` at no more than ``limit_price`` smallest collateral
    units per whole index unit, fees at most ``max_fee_bps`` of each charge, until
    ``deadline`` (Unix seconds). ``cl_ord_id``: the order's first ClOrdID."""

    user: str
    token: str
    max_collateral: int
    limit_price: int
    max_fee_bps: int
    deadline: int
    cl_ord_id: str

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The EIP-712 message, as a wallet's ``eth_signTypedData_v4`` takes it."""
        from eth_utils.address import to_checksum_address

        return {
            "types": {"EIP712Domain": DOMAIN_FIELDS, "Order": ORDER_FIELDS},
            "primaryType": "Order",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION,
                       "chainId": domain.chain_id,
                       "verifyingContract": to_checksum_address(domain.vault)},
            "message": {"user": to_checksum_address(self.user),
                        "token": to_checksum_address(self.token),
                        "maxCollateral": self.max_collateral, "limitPrice": self.limit_price,
                        "maxFeeBps": self.max_fee_bps, "deadline": self.deadline,
                        "clOrdId": self.cl_ord_id},
        }

    def as_call(self) -> tuple[str, str, int, int, int, int, str]:
        """The vault's ``Order`` struct, as web3 encodes it."""
        from eth_utils.address import to_checksum_address

        return (to_checksum_address(self.user), to_checksum_address(self.token),
                self.max_collateral, self.limit_price, self.max_fee_bps, self.deadline,
                self.cl_ord_id)


def sign(order: SignedOrder, domain: Domain, private_key: str) -> bytes:
    """The 65-byte signature (r, s, v) of ``order`` by ``private_key``."""
    from eth_account import Account

    signed = Account.sign_typed_data(private_key, full_message=order.typed_data(domain))
    return bytes(signed.signature)


def signer(order: SignedOrder, domain: Domain, signature: bytes) -> str | None:
    """The address that signed ``order``, or None if ``signature`` is not a signature the
    vault accepts (65 bytes, v 27 or 28, s in the lower half of the curve order)."""
    if len(signature) != 65 or signature[64] not in (27, 28) \
            or int.from_bytes(signature[32:64], "big") > HALF_CURVE_ORDER:
        return None
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    try:
        message = encode_typed_data(full_message=order.typed_data(domain))
        return str(Account.recover_message(message, signature=signature))
    except (ValueError, TypeError):
        return None


HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def signed_order(terms: SignedTerms, token: str, decimals: int) -> SignedOrder | None:
    """The message the wallet signed for ``terms`` (amounts in the collateral's smallest
    units, of ``decimals`` decimals), or None if an amount has more decimals than that."""
    most, limit = smallest_units(terms.most, decimals), smallest_units(terms.limit, decimals)
    if most is None or limit is None:
        return None
    return SignedOrder(terms.wallet, token, most, limit, terms.max_fee_bps, terms.deadline_s,
                       terms.name)


def signed_by(terms: SignedTerms, private_key: str, token: str, decimals: int,
              domain: Domain) -> SignedTerms:
    """``terms`` with their wallet's signature (the key's), as a client sends them: for the
    services and tests that hold a wallet's key."""
    order = signed_order(terms, token, decimals)
    if order is None:
        raise ValueError(f"{terms.most} or {terms.limit} has more than {decimals} decimals")
    return replace(terms, signature="0x" + sign(order, domain, private_key).hex())
