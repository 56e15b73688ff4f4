"""One exception tree, grouped by what the caller should do.

Every error the project raises on purpose derives from `CogmoraError`, and
the class right under it says what the caller does with it::

    CogmoraError
    ├── RetryableError            retry: leave the document as it is, try again later
    │   ├── FeedDead              (worker venues) drop the connection and open it again
    │   │   └── TokenRejected     (worker, KuCoin) fetch a new token first
    │   ├── CandleError           (worker) the exchange's candles could not be used
    │   └── StaleWrite            (store) a batch's precondition failed: read again, decide anew
    │       └── DocumentMissing   (store) a batch missed a document: redo it as a transaction
    ├── InvalidInput              reject the input with a stable reason, change nothing else
    │   ├── Rejected              a document or order: `reason` (one of `Reason`) is recorded
    │   ├── FrameError            (worker venues) a frame; `reason` is the metric label
    │   ├── ApiError              (API) answered with its HTTP status and `code`
    │   ├── CursorMissing         (store) a page after a document that does not exist
    │   └── ScrapeError           (automation) a symbol's page; the message is the reason
    └── HaltError                 stop and alert a human: an invariant does not hold
        └── ContractViolation     what would be written is not what was checked

`InvalidInput = RejectedInput`. The classes outside this module keep their
names and modules (except-clauses keep working) and only take their base
from here; `CursorMissing` is also a `LookupError` and `ContractViolation`
an `AssertionError`, as they were.
"""

from __future__ import annotations


class CogmoraError(Exception):
    """Base of every error the project raises on purpose."""


class RetryableError(CogmoraError):
    """A transient condition: leave the document as it is and try again later."""


class InvalidInput(CogmoraError):
    """The input cannot be used: reject it with a stable reason and change nothing else."""


#: The same group under the name of what the caller does.
RejectedInput = InvalidInput


class HaltError(CogmoraError):
    """An invariant does not hold: stop what is running and alert a human."""


class ContractViolation(HaltError, AssertionError):
    """A document about to be written differs from what was checked (a bug, never input)."""


class Rejected(InvalidInput):
    """The input is invalid: record `reason` on the document and change nothing else."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


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
    # The AI agent's proposals (`risk.check_proposal`), recorded in `aiPlans` `dropped`.
    #: Not a market of `markets.py` (the HTTP API answers the same code).
    UNSUPPORTED_SYMBOL = "unsupported_symbol"
    MISSING_STOP_LOSS = "missing_stop_loss"
    LEVERAGE_ABOVE_CAP = "leverage_above_cap"
    AMOUNT_ABOVE_CAP = "amount_above_cap"
    #: No market price of the order's venue, or one older than `maxQuoteAgeSeconds`.
    NO_FRESH_PRICE = "no_fresh_price"
    TARGET_FAR_FROM_MARKET = "target_far_from_market"
    #: The loss at the stop-loss, from the entry the market allows, is above the budget.
    OVER_RISK_BUDGET = "over_risk_budget"
    # Per-user limits of `config/limits` (DESIGN.md §2).
    #: The user's other active triggers already reach `maxActiveTriggers`.
    TOO_MANY_TRIGGERS = "too_many_triggers"
    #: Opening would pass `maxOpenPositions`.
    TOO_MANY_POSITIONS = "too_many_positions"
    #: The watchlist has more than `maxWatchlistSymbols` symbols (the rest are not scraped).
    TOO_MANY_SYMBOLS = "too_many_symbols"
    #: The AI agent ran `maxAiRunsPerDay` times today (UTC).
    TOO_MANY_AI_RUNS = "too_many_ai_runs"
    #: `proposePlan` was called `maxProposePlanPerMinute` times this minute.
    TOO_MANY_REQUESTS = "too_many_requests"
    #: The venue does not list the symbol (the worker asked it): never subscribed.
    UNLISTED_SYMBOL = "unlisted_symbol"
