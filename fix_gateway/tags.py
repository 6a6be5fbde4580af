"""Our user-defined FIX tags (20000-39999), as declared in ``spec/FIX44-gw.xml``."""

from __future__ import annotations

from typing import NamedTuple


class UserField(NamedTuple):
    number: int
    name: str
    type: str
    messages: tuple[str, ...]
    """The messages it may appear in."""


MINT_TX_HASH = 20001
MINT_QTY = 20002
CHAIN_ID = 20003
WALLET_ADDRESS = 20004
DEPOSIT_TX_HASH = 20005
LEAVES_CASH_QTY = 20010
CUM_CASH_QTY = 20011
MANAGEMENT_FEE = 20012
EXCHANGE_FEE = 20013
EVENT_SEQ_NUM = 20020
"""The journal sequence number of the event a report tells of; per session it only grows."""

_ER, _BA, _AY = "ExecutionReport", "CollateralReport", "CollateralAssignment"
USER_FIELDS = (
    UserField(MINT_TX_HASH, "MintTxHash", "STRING", (_ER,)),
    UserField(MINT_QTY, "MintQty", "QTY", (_ER,)),
    UserField(CHAIN_ID, "ChainID", "INT", (_ER, _BA, _AY)),
    UserField(WALLET_ADDRESS, "WalletAddress", "STRING", ("NewOrderSingle", _ER, _BA, _AY)),
    UserField(DEPOSIT_TX_HASH, "DepositTxHash", "STRING", (_BA, _AY)),
    UserField(LEAVES_CASH_QTY, "LeavesCashQty", "QTY", (_ER,)),
    UserField(CUM_CASH_QTY, "CumCashQty", "QTY", (_ER,)),
    UserField(MANAGEMENT_FEE, "ManagementFee", "AMT", (_ER,)),
    UserField(EXCHANGE_FEE, "ExchangeFee", "AMT", (_ER,)),
    UserField(EVENT_SEQ_NUM, "EventSeqNum", "SEQNUM", (_ER, "OrderCancelReject", _BA)),
)
