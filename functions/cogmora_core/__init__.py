"""Cogmora trading core: the one copy of the trading rules.

Pure and standard-library only. It takes facts in (a tick, a position, an
order) and returns decisions out (a fill, a settlement, a rejection). The
Cloud Functions and the worker both import it; it lives inside `functions/`
so that `firebase deploy` uploads it, and the worker image copies it.
"""

from cogmora_core.config import TradingConfig
from cogmora_core.errors import (
    CogmoraError,
    HaltError,
    InvalidInput,
    Rejected,
    RetryableError,
)
from cogmora_core.model import (
    Action,
    CloseReason,
    Condition,
    OpenedPosition,
    OrderRequest,
    PositionState,
    PositionType,
    Settlement,
    SymbolType,
    Tick,
)

__all__ = [
    "Action",
    "CloseReason",
    "CogmoraError",
    "Condition",
    "HaltError",
    "InvalidInput",
    "OpenedPosition",
    "OrderRequest",
    "PositionState",
    "PositionType",
    "Rejected",
    "RetryableError",
    "Settlement",
    "SymbolType",
    "Tick",
    "TradingConfig",
]
