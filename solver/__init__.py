"""The index-order solver: collateral in, index tokens out.

The public API is the pure core (``solver.core``): build an ``Engine`` from indexes, market
rules and ``SolverParams``, feed it inputs (commands from users, facts from outside), and read
the events of each ``Transaction`` it returns. Everything here is importable from ``solver``::

    from solver import Engine, SolverParams, SubmitIndexOrder, IndexOrderFilled

The services around the core (journal, runtime, gateway, exchange connector) are in their own
packages; ``docs/architecture.md`` maps them.
"""

from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    BookUpdated,
    CancelIndexOrder,
    ClockTicked,
    DepositConfirmed,
    ExpireIndexOrder,
    FeeAssetFunded,
    Input,
    MintConfirmed,
    MintFailed,
    PlanBatch,
    ReduceIndexOrder,
    RequestQuote,
    SubmitIndexOrder,
)
from solver.core.engine import Engine
from solver.core.events import (
    AssetOrderRequested,
    BatchPlanned,
    BatchSettled,
    CollateralDeposited,
    CollateralReleased,
    CollateralReserved,
    CollateralSpent,
    Envelope,
    Event,
    IndexOrderAccepted,
    IndexOrderCompleted,
    IndexOrderFilled,
    IndexOrderMinted,
    IndexOrderRejected,
    LotOpened,
    MintRequested,
    QuoteIssued,
    Transaction,
)
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Collateral, Constituent, Index
from solver.core.orders import OrderStatus
from solver.core.params import SolverParams
from solver.core.setup import EngineSetup

__all__ = [
    "AssetOrderAccepted", "AssetOrderEnded", "AssetOrderFilled", "AssetOrderOutcome",
    "AssetOrderRequested", "BatchPlanned", "BatchSettled", "BookUpdated", "CancelIndexOrder",
    "ClockTicked", "Collateral", "CollateralDeposited", "CollateralReleased",
    "CollateralReserved", "CollateralSpent", "Constituent", "DepositConfirmed", "Engine",
    "EngineSetup", "Envelope", "Event", "ExpireIndexOrder", "FeeAssetFunded", "Index",
    "IndexOrderAccepted", "IndexOrderCompleted", "IndexOrderFilled", "IndexOrderMinted",
    "IndexOrderRejected", "Input", "Level", "LotOpened", "MarketRules", "MintConfirmed",
    "MintFailed", "MintRequested", "OrderBook", "OrderStatus", "PlanBatch", "QuoteIssued",
    "ReduceIndexOrder", "RequestQuote", "SolverParams", "SubmitIndexOrder", "Transaction",
]
