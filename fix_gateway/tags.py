"""Every FIX tag the gateway reads or writes, by name: the standard FIX 4.4 ones it uses, and
our user-defined ones (20000-39999), as declared in ``spec/FIX44-gw.xml``."""

from __future__ import annotations

from fix_gateway.dictionary import dictionary_field

# --- FIX 4.4 ------------------------------------------------------------------------------
ACCOUNT = 1
AVG_PX = 6
BUSINESS_REJECT_REASON = 380
BUSINESS_REJECT_REF_ID = 379
CASH_ORDER_QTY = 152
CASH_OUTSTANDING = 901
CL_ORD_ID = 11
COLL_INQUIRY_ID = 909
COLL_INQUIRY_RESULT = 946
COLL_INQUIRY_STATUS = 945
COLL_RPT_ID = 908
COLL_STATUS = 910
CUM_QTY = 14
CURRENCY = 15
CXL_REJ_REASON = 102
CXL_REJ_RESPONSE_TO = 434
EXEC_ID = 17
EXEC_RESTATEMENT_REASON = 378
EXEC_TYPE = 150
EXPIRE_TIME = 126
GROSS_TRADE_AMT = 381
LAST_PX = 31
LAST_QTY = 32
LAST_RPT_REQUESTED = 912
LEAVES_QTY = 151
MASS_STATUS_REQ_ID = 584
MASS_STATUS_REQ_TYPE = 585
MSG_SEQ_NUM = 34
MSG_TYPE = 35
NO_RELATED_SYM = 146
OFFER_PX = 133
OFFER_SIZE = 135
ORDER_ID = 37
ORDER_QTY = 38
ORD_REJ_REASON = 103
ORD_STATUS = 39
ORD_STATUS_REQ_ID = 790
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
PASSWORD = 554
POSS_DUP_FLAG = 43
POSS_RESEND = 97
PRICE = 44
QUANTITY = 53
QUOTE_ID = 117
QUOTE_REQUEST_REJECT_REASON = 658
QUOTE_REQ_ID = 131
REF_MSG_TYPE = 372
REF_SEQ_NUM = 45
SENDER_COMP_ID = 49
SENDING_TIME = 52
SIDE = 54
SYMBOL = 55
TARGET_COMP_ID = 56
TEXT = 58
TIME_IN_FORCE = 59
TOTAL_NET_VALUE = 900
TOT_NUM_REPORTS = 911
TRANSACT_TIME = 60
USERNAME = 553

# --- ours: their numbers come from the data dictionary, the one source ------------------
def _ours(name: str) -> int:
    """The number of our user-defined field ``name`` in ``spec/FIX44-gw.xml``."""
    number = dictionary_field(name)
    if not 20000 <= number <= 39999:
        raise ValueError(f"{name}({number}) is not a user-defined tag (20000-39999)")
    return number


MINT_TX_HASH = _ours("MintTxHash")
MINT_QTY = _ours("MintQty")
CHAIN_ID = _ours("ChainID")
WALLET_ADDRESS = _ours("WalletAddress")
DEPOSIT_TX_HASH = _ours("DepositTxHash")
LEAVES_CASH_QTY = _ours("LeavesCashQty")
CUM_CASH_QTY = _ours("CumCashQty")
MANAGEMENT_FEE = _ours("ManagementFee")
EXCHANGE_FEE = _ours("ExchangeFee")
ORDER_SIGNATURE = _ours("OrderSignature")
"""The wallet's EIP-712 signature of the order, 0x and 65 bytes in hex."""
MAX_FEE_BPS = _ours("MaxFeeBps")
"""The fee bound the wallet signed, in basis points of each charge."""
EVENT_SEQ_NUM = _ours("EventSeqNum")
"""The journal sequence number of the event a report tells of; per session it only grows."""
