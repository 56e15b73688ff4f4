"""What the services did: typed, frozen, past-tense results.

Every settlement, mark and funding service returns one of these instead of a
free-form string. The caller branches on the type (`isinstance(outcome,
ExecutionFilled)`); logs, metrics and reports keep reading the two stable
labels every outcome has, `kind` and `reason`, which are the strings the
services always wrote (dashboards and tests count them):

| outcome | `kind` | `reason` |
|---|---|---|
| `AccountInitialized` | `initialized` | `created` when the user document was created, else empty |
| `ExecutionFilled` | `filled` | empty |
| `PositionSettled` | `settled` | empty |
| `TriggerFired` | `marked` | `trigger` |
| `CloseRequested` | `marked` | the detail (`trailing_stop`), else the reason (`stop_loss`…) |
| `PeakRecorded` | `marked` | `peak` |
| `FundingMarked` | `marked` | the funding event's id |
| `FundingApplied` | `applied` | the amount paid (negative) or received, as written |
| `FundingEventApplied` | `applied` | how many positions paid or received |
| `FundingLeftPending` | `skipped` | `{n} positions failed; left pending` |
| `ExecutionRejected`, `CloseRejected`, … (each `Rejection`) | `rejected` | the `errors.Reason` |
| `InvalidDocument` | `invalid` | the `errors.Reason` (or `already_executed`) |
| `Skipped` | `skipped` | a `Skip` |
| `FundedFirst` | `funded_` + the settlement's kind | the settlement's reason |
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from cogmora_core.model import CloseReason


class Outcome:
    """Base of every service result: a `kind` and a `reason`, both stable strings."""

    __slots__ = ()
    kind: ClassVar[str] = ""

    @property
    def reason(self) -> str:
        """Return the outcome's second label (empty when it has none)."""
        return ""


class Skip(StrEnum):
    """Why a service found nothing to do (the work is done, or not its to do)."""

    NO_USER_DOCUMENT = "no user document"
    ALREADY_INITIALIZED = "already initialized"
    NOT_PENDING = "not pending"
    NOT_A_PRICED_CLOSE = "not a priced close"
    NO_POSITION = "no position"
    NO_TRIGGER = "no trigger"
    NOT_ACTIVE = "not active"
    NOT_CROSSED = "not crossed"
    OTHER_SYMBOL = "other symbol"
    ALREADY_PRICED = "already priced"
    NO_TRAILING_STOP = "no trailing stop"
    NOT_BETTER = "not better"
    ALREADY_MARKED = "already marked"
    NOT_THIS_MARKET = "not this market"
    ALREADY_APPLIED = "already applied"
    NOT_OPEN_AT_FUNDING_TIME = "not open at the funding time"


@dataclass(frozen=True, slots=True)
class Skipped(Outcome):
    """Nothing was written: `why` says what the service found."""

    kind: ClassVar[str] = "skipped"
    why: Skip

    @property
    def reason(self) -> str:
        """Return why, as the stable string."""
        return self.why.value


@dataclass(frozen=True, slots=True)
class AccountInitialized(Outcome):
    """A user got the starting balance (and `createdAt`); `created` the user document too."""

    kind: ClassVar[str] = "initialized"
    created: bool = False

    @property
    def reason(self) -> str:
        """Return `created` when the user document was created."""
        return "created" if self.created else ""


@dataclass(frozen=True, slots=True)
class ExecutionFilled(Outcome):
    """An execution opened its position (same id) and the balance paid for it."""

    kind: ClassVar[str] = "filled"
    position_id: str


@dataclass(frozen=True, slots=True)
class PositionSettled(Outcome):
    """A priced close settled: the balance got `credit`, the position is gone."""

    kind: ClassVar[str] = "settled"
    credit: Decimal


@dataclass(frozen=True, slots=True)
class TriggerFired(Outcome):
    """A trigger's execution was created (and the trigger deleted) at `price`."""

    kind: ClassVar[str] = "marked"
    price: Decimal

    @property
    def reason(self) -> str:
        """Return `trigger`."""
        return "trigger"


@dataclass(frozen=True, slots=True)
class CloseRequested(Outcome):
    """A position was marked `closing` with a close request priced at `price`."""

    kind: ClassVar[str] = "marked"
    close_reason: CloseReason
    price: Decimal
    #: What fired within the reason (`trailing_stop`), when it says more.
    detail: str | None = None

    @property
    def reason(self) -> str:
        """Return the detail when there is one, else the close reason."""
        return self.detail or str(self.close_reason)


@dataclass(frozen=True, slots=True)
class PeakRecorded(Outcome):
    """A trailing stop's better high-water mark was persisted."""

    kind: ClassVar[str] = "marked"
    peak: Decimal

    @property
    def reason(self) -> str:
        """Return `peak`."""
        return "peak"


@dataclass(frozen=True, slots=True)
class FundingMarked(Outcome):
    """A `fundingEvents` document was created, `pending`."""

    kind: ClassVar[str] = "marked"
    event_id: str

    @property
    def reason(self) -> str:
        """Return the event's id."""
        return self.event_id


@dataclass(frozen=True, slots=True)
class FundingApplied(Outcome):
    """One position paid (negative `amount`) or received a funding payment."""

    kind: ClassVar[str] = "applied"
    amount: Decimal

    @property
    def reason(self) -> str:
        """Return the amount as text."""
        return str(self.amount)


@dataclass(frozen=True, slots=True)
class FundingEventApplied(Outcome):
    """A funding event was applied to every position it concerns: `positions` paid."""

    kind: ClassVar[str] = "applied"
    positions: int

    @property
    def reason(self) -> str:
        """Return how many positions paid or received."""
        return str(self.positions)


@dataclass(frozen=True, slots=True)
class FundingLeftPending(Outcome):
    """Some positions failed: the event stays `pending` for the reconciler."""

    kind: ClassVar[str] = "skipped"
    failures: int

    @property
    def reason(self) -> str:
        """Return how many failed, in the words the logs always had."""
        return f"{self.failures} positions failed; left pending"


@dataclass(frozen=True, slots=True)
class Rejection(Outcome):
    """The input was refused with a stable `reason` (an `errors.Reason`); no money moved."""

    kind: ClassVar[str] = "rejected"
    reason: str  # a field where the base has a property
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionRejected(Rejection):
    """An execution was set `rejected` with `error`: nothing was debited."""


@dataclass(frozen=True, slots=True)
class CloseRejected(Rejection):
    """A priced close cannot settle: it keeps its mark and gets `details.settlementError`."""


@dataclass(frozen=True, slots=True)
class TriggerRejected(Rejection):
    """An active trigger was set `rejected` with `details.error`."""


@dataclass(frozen=True, slots=True)
class FundingRejected(Rejection):
    """A funding event or a position it concerns cannot be read: nothing was paid."""


@dataclass(frozen=True, slots=True)
class InvalidDocument(Outcome):
    """The worker found a document it cannot mark; `reason` says why. Nothing was written."""

    kind: ClassVar[str] = "invalid"
    reason: str  # a field where the base has a property


@dataclass(frozen=True, slots=True)
class FundedFirst(Outcome):
    """The reconciler funded an account whose initialisation was lost, then settled."""

    then: Outcome

    @property
    def kind(self) -> str:  # type: ignore[override]
        """Return `funded_` and the settlement's kind."""
        return f"funded_{self.then.kind}"

    @property
    def reason(self) -> str:
        """Return the settlement's reason."""
        return self.then.reason
