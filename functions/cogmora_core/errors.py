"""One exception tree, grouped by what the caller should do."""

from __future__ import annotations


class CogmoraError(Exception):
    """Base of every error the project raises on purpose."""


class Rejected(CogmoraError):
    """The input is invalid: record `reason` on the document and change nothing else."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class RetryableError(CogmoraError):
    """A transient condition: leave the document as it is and try again later."""


class Reason:
    """Rejection reasons written to `error` / `details.error` (stable strings)."""

    INVALID_DOCUMENT = "invalid_document"
    INVALID_SYMBOL = "invalid_symbol"
    UNKNOWN_SYMBOL_TYPE = "unknown_symbol_type"
    INVALID_VENUE = "invalid_venue"
    INVALID_ACTION = "invalid_action"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_LEVERAGE = "invalid_leverage"
    INVALID_CONDITION = "invalid_condition"
    INVALID_TARGET_PRICE = "invalid_target_price"
    INVALID_STOP_LOSS = "invalid_stop_loss"
    INVALID_TAKE_PROFIT = "invalid_take_profit"
    INVALID_PRICE = "invalid_price"
    INVALID_SIZE = "invalid_size"
    INVALID_POSITION_TYPE = "invalid_position_type"
    INVALID_STATUS = "invalid_status"
    INVALID_CLOSE_REQUEST = "invalid_close_request"
    INVALID_TRAILING_STOP = "invalid_trailing_stop"
    INVALID_OCO = "invalid_oco"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INVALID_BALANCE = "invalid_balance"
    #: The numbers are out of what exact arithmetic can hold (an overflow, a size
    #: beyond the precision): nothing is computed, nothing is debited.
    OUT_OF_RANGE = "out_of_range"
