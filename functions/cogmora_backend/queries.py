"""Every Firestore query the project makes, declared once.

A spec only describes a query (collection, filters, order); the storage
adapters run it (`cogmora_backend.firestore.queries` turns it into a Google
query, the in-memory fake evaluates it). Code queries only through these
specs, and a test checks that each has its index in `firestore.indexes.json`
(the emulator does not enforce them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a range filter compares a field with its bound.
RangeOperator = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True)
class QuerySpec:
    """A query: equality filters, then at most one range filter (ordered by it).

    The range filter compares `range_field` with a bound by `range_operator`
    (`<=` unless told otherwise; the index is the same for every operator).

    `group` queries span every collection of that name (collection-group
    scope); the others query the top-level collection of that name, or the
    one under the document the query is asked with (`parent`). A page
    query (`order_field`) lists one collection (a user's subcollection, by its
    path) ordered by that field, newest first when `descending`, in pages.
    """

    name: str
    collection_group: str
    equality: tuple[str, ...]
    range_field: str | None = None
    group: bool = True
    order_field: str | None = None
    descending: bool = False
    range_operator: RangeOperator = "<="

    def check(self, equals: tuple[object, ...]) -> None:
        """Raise ValueError unless `equals` holds one value per equality field."""
        if len(equals) != len(self.equality):
            raise ValueError(f"{self.name} takes {len(self.equality)} equality values")

    def check_page(self, collection: str) -> str:
        """Return the order field; raise ValueError unless this spec pages `collection`.

        A page query may have equality filters (then its index lists them
        first) and bounds on its order field.
        """
        if self.order_field is None or self.range_field or self.group:
            raise ValueError(f"{self.name} is not a page query")
        if collection.rstrip("/").rsplit("/", 1)[-1] != self.collection_group:
            raise ValueError(f"{self.name} lists {self.collection_group}, not {collection}")
        return self.order_field


#: Executions still `pending` since before a cutoff (the reconciler).
PENDING_EXECUTIONS = QuerySpec(
    "pending executions", "executedTriggers", ("status",), range_field="executedAt"
)
#: Positions marked `closing` with a price since before a cutoff (the reconciler).
STALE_PRICED_CLOSES = QuerySpec(
    "stale priced closes",
    "openPositions",
    ("details.status",),
    range_field="details.closeRequest.at",
)
#: Open or closing positions of one symbol (the worker's slow path, as in the seed;
#: applyFunding).
POSITIONS_BY_SYMBOL = QuerySpec(
    "positions by symbol", "openPositions", ("symbol", "details.status")
)
#: History records of one symbol closed after a time (applyFunding: positions held
#: through a funding time but settled before it was applied).
CLOSED_AFTER = QuerySpec("history closed after a time", "tradeHistory", ("symbol", "status"),
                         range_field="closedAt", range_operator=">")
#: Active triggers of one symbol (the worker's slow path, as in the seed).
TRIGGERS_BY_SYMBOL = QuerySpec("triggers by symbol", "tradeTriggers", ("symbol", "details.status"))
#: Every open or closing position (the worker's listeners and resync).
LIVE_POSITIONS = QuerySpec("live positions", "openPositions", ("details.status",))
#: Every active trigger (the worker's listeners and resync).
ACTIVE_TRIGGERS = QuerySpec("active triggers", "tradeTriggers", ("details.status",))

#: Funding events still `pending` since before a cutoff (the reconciler).
PENDING_FUNDING = QuerySpec("pending funding events", "fundingEvents", ("status",),
                            range_field="createdAt", group=False)

#: Users whose AI agent is enabled and due (mainScheduler).
DUE_AI = QuerySpec("due ai agents", "users", ("automation.ai.enabled",),
                   range_field="automation.ai.nextRun", group=False)
#: Users whose watchlist scraper is enabled and due (mainScheduler).
DUE_WATCHLISTS = QuerySpec("due watchlists", "users", ("automation.watchlist.enabled",),
                           range_field="automation.watchlist.nextRun", group=False)

#: One user's executions still `pending` and positions `closing` (settled together:
#: `settlement.settle_account`); asked with `parent="users/{uid}"`.
USER_PENDING_EXECUTIONS = QuerySpec("a user's pending executions", "executedTriggers",
                                    ("status",), group=False)
USER_CLOSING_POSITIONS = QuerySpec("a user's closing positions", "openPositions",
                                   ("details.status",), group=False)

#: One user's trade history, newest first by `openedAt` (the HTTP API's history pages).
HISTORY_PAGE = QuerySpec("history page", "tradeHistory", (), group=False,
                         order_field="openedAt", descending=True)

#: One user's journal, newest first by `at` (the HTTP API's ledger pages, the statements).
LEDGER_PAGE = QuerySpec("ledger page", "ledger", (), group=False, order_field="at",
                        descending=True)
#: One user's journal entries of one kind, newest first (the ledger pages filtered by kind).
LEDGER_KIND_PAGE = QuerySpec("ledger page of a kind", "ledger", ("kind",), group=False,
                             order_field="at", descending=True)
#: One user's journal, oldest first by `at` (a statement's entries).
LEDGER_STATEMENT = QuerySpec("ledger statement", "ledger", (), group=False, order_field="at")

#: A day's audit pages of one generation in one state (counted: is every page done?).
AUDIT_PAGES = QuerySpec("audit pages by state", "pages", ("date", "generation", "status"))

ALL: tuple[QuerySpec, ...] = (
    DUE_AI,
    DUE_WATCHLISTS,
    PENDING_EXECUTIONS,
    PENDING_FUNDING,
    STALE_PRICED_CLOSES,
    POSITIONS_BY_SYMBOL,
    CLOSED_AFTER,
    TRIGGERS_BY_SYMBOL,
    LIVE_POSITIONS,
    ACTIVE_TRIGGERS,
    HISTORY_PAGE,
    LEDGER_PAGE,
    LEDGER_KIND_PAGE,
    LEDGER_STATEMENT,
    USER_PENDING_EXECUTIONS,
    USER_CLOSING_POSITIONS,
    AUDIT_PAGES,
)
