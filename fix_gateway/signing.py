"""An order's signature, checked before the order reaches the engine.

A NewOrderSingle carries what the account's wallet signed (EIP-712, ``solver/signed_orders.py``):
CashOrderQty(152) the most collateral, Price(44) the most per index unit fees included
(OrdType 2), ExpireTime(126) the deadline (whole seconds; a fraction is dropped), MaxFeeBps
the fee bound and OrderSignature the signature; ClOrdID(11) is the order's name. The gateway
recovers the signer and compares it with the wallet bound to the session's account; a bad,
missing or expired signature is refused with a Text saying what to fix.

eth-account, which recovers the signer, takes 0.6 s to import: it is imported with the first
signature checked, unless the chain adapter, which loads web3 on a thread at the service's
start, has brought it in by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from fix_gateway.tags import CL_ORD_ID, MAX_FEE_BPS, ORDER_SIGNATURE, SYMBOL
from fix_gateway.wire import Received
from solver.core.signed_terms import BPS, SignedTerms
from solver.signed_orders import Domain, signed_order, signer

_HEX_SIGNATURE_LENGTH = 2 + 2 * 65


@dataclass(frozen=True, slots=True)
class OrderSigning:
    """What a signature is checked against: the vault's domain, each index's token and its
    collateral's decimals, each account's wallet; ``required``: an order without a signature
    is refused."""

    domain: Domain
    tokens: Mapping[str, str]
    """index symbol -> its token's address"""
    decimals: Mapping[str, int]
    """index symbol -> the decimals of the collateral it is bought with"""
    wallets: Mapping[str, str]
    """account -> the wallet bound to it"""
    required: bool = True


def signed_terms(msg: Received, account: str, signing: OrderSigning, cash: Decimal,
                 limit: Decimal | None, expire_at_ms: int | None) -> SignedTerms | str:
    """The terms the message's signature covers, or why they cannot be taken. The index is one
    of ``signing.tokens`` (the caller refuses another as an unknown symbol)."""
    text = msg.get(ORDER_SIGNATURE) or ""
    field = f"OrderSignature({ORDER_SIGNATURE})"
    if len(text) != _HEX_SIGNATURE_LENGTH or not text.startswith("0x"):
        return f"{field} must be 0x and the 65-byte signature in hex"
    try:
        signature = bytes.fromhex(text[2:])
    except ValueError:
        return f"{field} must be 0x and the 65-byte signature in hex"
    fee_bps = msg.get(MAX_FEE_BPS)
    if fee_bps is None or not fee_bps.isdigit() or int(fee_bps) > BPS:
        return f"MaxFeeBps({MAX_FEE_BPS}), the fee bound signed, must be 0 to {BPS}"
    if limit is None:
        return "a signed order is a limit order: OrdType(40)=2 with Price(44), the most " \
               "collateral per index unit fees included, as signed"
    if expire_at_ms is None:
        return "a signed order needs its deadline: TimeInForce(59)=6 with ExpireTime(126)"
    wallet = signing.wallets.get(account)
    index = msg.get(SYMBOL) or ""
    if wallet is None:
        return f"no wallet is bound to account {account}: an operator binds one first"
    terms = SignedTerms(wallet, msg.get(CL_ORD_ID) or "", cash, limit, int(fee_bps),
                        expire_at_ms // 1000, "0x" + signature.hex())
    order = signed_order(terms, signing.tokens[index], signing.decimals[index])
    if order is None:
        return (f"CashOrderQty(152) and Price(44) have at most "
                f"{signing.decimals[index]} decimals, as signed in the collateral's units")
    found = signer(order, signing.domain, signature)
    if found is None or found.lower() != wallet.lower():
        return (f"{field} is not {wallet}'s signature of this order (EIP-712 Order in the "
                f"vault {signing.domain.vault}'s domain, chain {signing.domain.chain_id}: "
                "docs/fix-gateway.md gives each field's source)")
    return terms
