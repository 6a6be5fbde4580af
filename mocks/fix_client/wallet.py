"""The user's wallet signing an order, written from the documentation (docs/fix-gateway.md,
"Signed orders"; docs/chain.md, the type) rather than imported from the solver, as a
counterparty's client would: a second implementation, so a mismatch between the two shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount


@dataclass(frozen=True, slots=True)
class Vault:
    """Whose domain an order is signed in: the chain, the vault, and the index tokens
    (symbol -> address) with the collateral's decimals (``chain deploy --out``'s file has
    them all but the decimals)."""

    chain_id: int
    address: str
    tokens: dict[str, str]
    decimals: int = 6


@dataclass(frozen=True, slots=True)
class SignedFields:
    """The NewOrderSingle fields a signed order carries besides its size and symbol."""

    price: Decimal
    expire_time: str
    max_fee_bps: int
    signature: str


class Wallet:
    def __init__(self, private_key: str, vault: Vault) -> None:
        self.account: LocalAccount = Account.from_key(private_key)
        self.vault = vault

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign(self, cl_ord_id: str, symbol: str, cash: Decimal, limit: Decimal,
             deadline: datetime, max_fee_bps: int) -> SignedFields:
        """Sign at most ``cash`` of collateral for ``symbol`` at no more than ``limit`` per
        unit, fees (at most ``max_fee_bps``) included, until ``deadline`` (whole seconds)."""
        scale = Decimal(10) ** self.vault.decimals
        deadline_s = int(deadline.timestamp())
        message = {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"},
                                 {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"},
                                 {"name": "verifyingContract", "type": "address"}],
                "Order": [{"name": "user", "type": "address"},
                          {"name": "token", "type": "address"},
                          {"name": "maxCollateral", "type": "uint256"},
                          {"name": "limitPrice", "type": "uint256"},
                          {"name": "maxFeeBps", "type": "uint256"},
                          {"name": "deadline", "type": "uint256"},
                          {"name": "clOrdId", "type": "string"}],
            },
            "primaryType": "Order",
            "domain": {"name": "IndexSolverVault", "version": "1",
                       "chainId": self.vault.chain_id,
                       "verifyingContract": self.vault.address},
            "message": {"user": self.address, "token": self.vault.tokens[symbol],
                        "maxCollateral": int(cash * scale), "limitPrice": int(limit * scale),
                        "maxFeeBps": max_fee_bps, "deadline": deadline_s,
                        "clOrdId": cl_ord_id},
        }
        signed = self.account.sign_typed_data(full_message=message)
        moment = datetime.fromtimestamp(deadline_s, UTC)
        return SignedFields(limit, moment.strftime("%Y%m%d-%H:%M:%S"), max_fee_bps,
                            "0x" + bytes(signed.signature).hex())
