"""The storage port: what the services, the worker and the API need of a database.

Documents cross it as plain dicts, with the little metadata callers use
(path, create and update time as `datetime`, the kind of a change). Queries
are the declarative specs of `cogmora_backend.queries`. Two adapters
implement it: `cogmora_backend.firestore.FirestoreDatabase` (Google Cloud
Firestore or its emulator; the only code that imports Google's client) and
the in-memory fake beside the tests (`tests/support/memory.py`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from cogmora_backend.queries import QuerySpec
from cogmora_core.errors import InvalidInput, RetryableError

T = TypeVar("T")
Document = dict[str, Any]
#: (id, data) of documents of one collection.
Listing = list[tuple[str, Document]]


class _ServerTime:
    """Marks a field to be set to the server's commit time."""

    def __repr__(self) -> str:
        return "SERVER_TIME"


SERVER_TIME: Any = _ServerTime()


class StaleWrite(RetryableError):
    """A batch's precondition failed: a document it creates exists, or one it changes
    is gone or was written since it was read. The batch wrote nothing: read again
    (in a transaction) and decide anew."""


class DocumentMissing(StaleWrite):
    """A batch updated a document that does not exist; the batch wrote nothing."""


class CursorMissing(InvalidInput, LookupError):
    """A page was asked to start after a document that does not exist."""


@dataclass(frozen=True)
class Snapshot:
    """One document as read: its path, its data and the server's times (None if unknown)."""

    path: str
    data: Document
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def id(self) -> str:
        """Return the document's id (the last part of its path)."""
        return self.path.rsplit("/", 1)[-1]


class ChangeKind(StrEnum):
    """How a document changed in a listened query's results."""

    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"


@dataclass(frozen=True)
class DocumentChange:
    """A document entering, changing in or leaving a listened query's results.

    For `REMOVED`, `snapshot` is the last version the listener saw.
    """

    kind: ChangeKind
    snapshot: Snapshot


class Subscription(Protocol):
    """A live listener on a query."""

    @property
    def active(self) -> bool:
        """Return whether changes still stream."""

    def stop(self) -> None:
        """Stop listening."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis(moment: datetime) -> int:
    """Return a timezone-aware time as whole milliseconds since the epoch (rounded down)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class Transaction(Protocol):
    """Reads come first, writes are applied together when the work returns."""

    def get(self, path: str) -> Document | None:
        """Return the document's data, or None when it does not exist."""

    def get_many(self, paths: list[str]) -> list[Document | None]:
        """Return several documents at once (one round trip), in the order asked."""

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Write the whole document (or merge top-level maps into it)."""

    def create(self, path: str, data: Mapping[str, Any]) -> None:
        """Write a new document; one that exists fails the whole batch with `StaleWrite`."""

    def update(self, path: str, data: Mapping[str, Any], *,
               if_update_time: datetime | None = None) -> None:
        """Change the named fields (dotted keys are field paths) of an existing document.

        In a batch, a missing document fails the whole batch with `DocumentMissing`.
        With `if_update_time` (a `Snapshot.update_time`), only the version read then
        is changed: any later write (or a delete) fails the batch with `StaleWrite`.
        """

    def delete(self, path: str, *, if_update_time: datetime | None = None) -> None:
        """Delete the document (with `if_update_time`: only the version read then)."""


class Database(Protocol):
    """Where documents live."""

    def run(self, work: Callable[[Transaction], T],
            done: Callable[[], T | None] | None = None) -> T:
        """Run `work` in one transaction and return what it returns.

        `done`, a cheap read outside the transaction, returns a result when the
        work is visibly done already; it is asked before the transaction and
        after every attempt that lost a race, so late duplicates step aside.
        """

    def write(self, work: Callable[[Transaction], None]) -> None:
        """Apply the writes of `work` atomically, without reads (one round trip)."""

    def read(self, path: str) -> Document | None:
        """Return one document outside any transaction, or None."""

    def read_many(self, paths: builtins.list[str]) -> builtins.list[Snapshot | None]:
        """Return several documents outside any transaction, in one round trip.

        In the order asked, None for a missing one; each snapshot has its update
        time, to make a later write conditional on it (`if_update_time`).
        """

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Write one document outside any transaction (a plain write, not retried)."""

    def list(self, collection: str, limit: int | None = None,
             after_id: str | None = None) -> Listing:
        """Return (id, data) of the documents of a collection by id (at most `limit`,
        those after the id `after_id` when given), outside any transaction."""

    def list_ids(self, collection: str, limit: int | None = None,
                 after_id: str | None = None) -> builtins.list[str]:
        """Return the ids `list` would return, without the documents' fields."""

    def query(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
              limit: int | None = None, after: Snapshot | None = None,
              parent: str | None = None,
              fields: tuple[str, ...] | None = None) -> builtins.list[Snapshot]:
        """Return the documents `spec` finds, outside any transaction.

        `parent` (a document's path) scopes a non-group spec to the collection
        under that document (`users/{uid}` → `users/{uid}/openPositions`).
        `fields` (dotted field paths) projects each document's data on those
        of them it has (less to send and decode); its update time is still the
        whole document's, fit for `if_update_time`.

        `equals` are the values of the equality fields (a list: any of them),
        `bound` the range field's bound. Ordered by the range field, then by
        path; at most `limit` of them, starting after `after` (a snapshot this
        query returned: its values place the cursor, it need not still exist).
        """

    def stream(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
               limit: int | None = None,
               fields: tuple[str, ...] | None = None) -> Iterator[Snapshot]:
        """Yield what `query` returns, as the server sends it (the caller may start work
        on the first documents while the rest still come)."""

    def ids(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
            limit: int | None = None) -> builtins.list[str]:
        """Return the ids of the documents `spec` finds, in `query`'s order, without their
        fields (a projection: less to send and decode; still billed a read per document)."""

    def count(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None) -> int:
        """Return how many documents `spec` finds (billed about one read per 1,000)."""

    def listen(self, spec: QuerySpec, equals: tuple[Any, ...],
               on_changes: Callable[[builtins.list[DocumentChange]], None]) -> Subscription:
        """Call `on_changes` with every change to what `spec` finds, until stopped.

        The first call lists every document found then as `ADDED`. Calls may
        come from another thread, one at a time, in order.
        """

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None, *, equals: tuple[Any, ...] = (),
             since: Any = None, before: Any = None) -> Listing:
        """Return (id, data) of at most `limit` documents of `collection` in `spec`'s order.

        The page starts after the document `after_id` of the same collection;
        raises `CursorMissing` when that document does not exist. `equals`
        are the values of the spec's equality fields; `since` (inclusive)
        and `before` (exclusive) bound its order field when given.
        """
