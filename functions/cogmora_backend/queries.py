"""Every Firestore query the project makes, declared once.

Code builds queries only from these specs, and a test checks that each has
its index in `firestore.indexes.json` (the emulator does not enforce them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QuerySpec:
    """A query: equality filters, then at most one range filter (ordered by it).

    The range filter compares `range_field` with a bound by `range_operator`
    (`<=` unless told otherwise; the index is the same for every operator).

    `group` queries span every collection of that name (collection-group
    scope); the others query the top-level collection of that name. A page
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
    range_operator: str = "<="

    def build(self, client: Any, equals: tuple[Any, ...], bound: Any = None) -> Any:
        """Return the query with `equals` for the equality fields and the range to `bound`.

        A list among `equals` matches any of its values (`in`).
        """
        from google.cloud.firestore_v1.base_query import FieldFilter

        if len(equals) != len(self.equality):
            raise ValueError(f"{self.name} takes {len(self.equality)} equality values")
        if self.group:
            query = client.collection_group(self.collection_group)
        else:
            query = client.collection(self.collection_group)
        for field, value in zip(self.equality, equals, strict=True):
            operator = "in" if isinstance(value, list) else "=="
            query = query.where(filter=FieldFilter(field, operator, value))
        if self.range_field is not None:
            query = query.where(filter=FieldFilter(self.range_field, self.range_operator,
                                                   bound))
            query = query.order_by(self.range_field)
        return query

    def page(self, client: Any, collection: str, limit: int, after: Any = None) -> Any:
        """Return at most `limit` documents of `collection` (a path) after snapshot `after`.

        Ordered by `order_field`, then by document id in the same direction, so
        that equal values still page in a stable order.
        """
        from google.cloud.firestore_v1 import Query

        if self.order_field is None or self.equality or self.range_field or self.group:
            raise ValueError(f"{self.name} is not a page query")
        if collection.rstrip("/").rsplit("/", 1)[-1] != self.collection_group:
            raise ValueError(f"{self.name} lists {self.collection_group}, not {collection}")
        direction = Query.DESCENDING if self.descending else Query.ASCENDING
        query = client.collection(collection).order_by(self.order_field, direction=direction)
        query = query.order_by("__name__", direction=direction)
        if after is not None:
            query = query.start_after(after)
        return query.limit(limit)


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

#: One user's trade history, newest first by `openedAt` (the HTTP API's history pages).
HISTORY_PAGE = QuerySpec("history page", "tradeHistory", (), group=False,
                         order_field="openedAt", descending=True)

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
)
