"""The real database: Google Cloud Firestore (or its emulator) behind the storage port."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.api_core import exceptions
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore

from cogmora_backend.firestore import queries
from cogmora_backend.firestore.watch import ChangesWatch
from cogmora_backend.queries import QuerySpec
from cogmora_backend.retry import is_contention, retry
from cogmora_backend.store import (
    SERVER_TIME,
    ChangeKind,
    CursorMissing,
    Document,
    DocumentChange,
    DocumentMissing,
    Listing,
    Snapshot,
    StaleWrite,
    Subscription,
    Transaction,
)

T = TypeVar("T")
#: The field path of a document's id: a projection on it alone reads no field.
DOCUMENT_ID = "__name__"


class FirestoreDatabase:
    """Google Cloud Firestore: each unit of work runs in a Firestore transaction.

    A transaction reads everything, then writes; it is retried on contention.
    """

    def __init__(self, client: Any, max_attempts: int = 1, deadline_seconds: float = 60.0) -> None:
        self._client = client
        self._max_attempts = max_attempts
        self._deadline_seconds = deadline_seconds

    def run(self, work: Callable[[Transaction], T],
            done: Callable[[], T | None] | None = None) -> T:
        """Run `work` in a Firestore transaction, retried with jittered backoff on contention.

        Racing transactions back off so that they stop colliding in lockstep,
        and ask `done` before each attempt and once more when the deadline
        passes: once the winner's work is visible, the others stop without
        taking the document's locks again, or report it instead of an error.
        """

        @firestore.transactional
        def attempt(transaction: Any) -> T:
            return work(_FirestoreTransaction(self._client, transaction))

        def once() -> T:
            if done is not None:
                found = done()
                if found is not None:
                    return found
            result: T = attempt(self._client.transaction(max_attempts=self._max_attempts))
            return result

        try:
            return retry(once, is_contention, self._deadline_seconds)
        except Exception as error:
            # Out of time while racing: if a rival did the work meanwhile, say so
            # instead of failing (the emulator can hold a lost race for 30 s).
            if done is None or not is_contention(error):
                raise
            found = done()
            if found is None:
                raise
            return found

    def write(self, work: Callable[[Transaction], None]) -> None:
        """Apply the writes of `work` in one atomic batch (no reads allowed).

        Raises `DocumentMissing` when an update names a document that does not exist,
        `StaleWrite` when a precondition fails (nothing is written then).
        """
        batch = self._client.batch()
        work(_FirestoreTransaction(self._client, batch, reads=False))
        try:
            retry(batch.commit, is_contention, self._deadline_seconds)
        except exceptions.NotFound as error:
            raise DocumentMissing(str(error)) from error
        except (exceptions.FailedPrecondition, exceptions.AlreadyExists) as error:
            raise StaleWrite(str(error)) from error

    def read(self, path: str) -> Document | None:
        """Return one document outside any transaction, or None."""
        snapshot = self._client.document(path).get()
        return snapshot.to_dict() if snapshot.exists else None

    def read_many(self, paths: builtins.list[str]) -> builtins.list[Snapshot | None]:
        """Return several documents outside any transaction (one `BatchGetDocuments`)."""
        if not paths:
            return []
        found = {snapshot.reference.path: _snapshot(snapshot) for snapshot in
                 self._client.get_all([self._client.document(path) for path in paths])
                 if snapshot.exists}
        return [found.get(path) for path in paths]

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Write one document outside any transaction (a plain write, not retried)."""
        self._client.document(path).set(_to_firestore(data), merge=merge)

    def list(self, collection: str, limit: int | None = None,
             after_id: str | None = None) -> Listing:
        """Return (id, data) of the documents of a collection, by id, at most `limit`
        (after the id `after_id`, which need not exist)."""
        query = queries.listing(self._client, collection, after_id)
        if limit is not None:
            query = query.limit(limit)  # ordered by document id
        return [(s.id, s.to_dict()) for s in query.stream()]

    def list_ids(self, collection: str, limit: int | None = None,
                 after_id: str | None = None) -> builtins.list[str]:
        """Return the ids of a collection's documents by id (see `Database.list_ids`)."""
        query = queries.listing(self._client, collection, after_id).select([DOCUMENT_ID])
        if limit is not None:
            query = query.limit(limit)
        return [s.id for s in query.stream()]

    def query(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
              limit: int | None = None, after: Snapshot | None = None,
              parent: str | None = None,
              fields: tuple[str, ...] | None = None) -> builtins.list[Snapshot]:
        """Return the documents the query of `spec` finds (see `Database.query`)."""
        query = queries.build(self._client, spec, equals, bound, limit=limit, after=after,
                              parent=parent)
        if fields is not None:
            query = query.select(list(fields) or [DOCUMENT_ID])
        return [_snapshot(found) for found in query.stream()]

    def stream(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
               limit: int | None = None,
               fields: tuple[str, ...] | None = None) -> Iterator[Snapshot]:
        """Yield the documents `spec` finds as they arrive (see `Database.stream`)."""
        query = queries.build(self._client, spec, equals, bound, limit=limit)
        if fields is not None:
            query = query.select(list(fields) or [DOCUMENT_ID])
        for found in query.stream():
            yield _snapshot(found)

    def ids(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
            limit: int | None = None) -> builtins.list[str]:
        """Return the ids of the documents `spec` finds (see `Database.ids`)."""
        query = queries.build(self._client, spec, equals, bound, limit=limit)
        return [found.id for found in query.select([DOCUMENT_ID]).stream()]

    def count(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None) -> int:
        """Return how many documents `spec` finds (an aggregation query)."""
        result = queries.build(self._client, spec, equals, bound).count().get()
        return int(result[0][0].value)

    def listen(self, spec: QuerySpec, equals: tuple[Any, ...],
               on_changes: Callable[[builtins.list[DocumentChange]], None]) -> Subscription:
        """Listen to the query of `spec`; `on_changes` runs on the client's listener thread."""

        def deliver(_documents: Any, changes: Any, _read_time: Any) -> None:
            found = [DocumentChange(ChangeKind[change.type.name], _snapshot(change.document))
                     for change in changes]
            if found:
                on_changes(found)

        watch = ChangesWatch.of(queries.build(self._client, spec, equals), deliver)
        return _Watch(watch)

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None, *, equals: tuple[Any, ...] = (),
             since: Any = None, before: Any = None) -> Listing:
        """Return one page of `collection` in `spec`'s order (one query, plus the cursor read)."""
        after = None
        if after_id is not None:
            after = self._client.document(f"{collection}/{after_id}").get()
            if not after.exists:
                raise CursorMissing(after_id)
        query = queries.page(self._client, spec, collection, limit, after, equals=equals,
                             since=since, before=before)
        return [(s.id, s.to_dict()) for s in query.stream()]


class _Watch:
    """A Firestore listener as a port `Subscription`."""

    def __init__(self, watch: Any) -> None:
        self._watch = watch
        self._stopped = threading.Event()

    @property
    def active(self) -> bool:
        return not self._stopped.is_set() and bool(self._watch.is_active)

    def stop(self) -> None:
        self._stopped.set()
        self._watch.unsubscribe()


class _FirestoreTransaction:
    def __init__(self, client: Any, transaction: Any, reads: bool = True) -> None:
        self._client = client
        self._transaction = transaction
        self._reads = reads

    def get(self, path: str) -> Document | None:
        if not self._reads:
            raise RuntimeError("a write batch cannot read")
        snapshot = self._client.document(path).get(transaction=self._transaction)
        return snapshot.to_dict() if snapshot.exists else None

    def get_many(self, paths: list[str]) -> list[Document | None]:
        if not self._reads:
            raise RuntimeError("a write batch cannot read")
        if not paths:
            return []
        references = [self._client.document(path) for path in paths]
        found = {snapshot.reference.path: snapshot.to_dict() for snapshot in
                 self._client.get_all(references, transaction=self._transaction)
                 if snapshot.exists}
        return [found.get(path) for path in paths]

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        self._transaction.set(self._client.document(path), _to_firestore(data), merge=merge)

    def create(self, path: str, data: Mapping[str, Any]) -> None:
        self._transaction.create(self._client.document(path), _to_firestore(data))

    def update(self, path: str, data: Mapping[str, Any], *,
               if_update_time: datetime | None = None) -> None:
        self._transaction.update(self._client.document(path), _to_firestore(data),
                                 option=self._unchanged(if_update_time))

    def delete(self, path: str, *, if_update_time: datetime | None = None) -> None:
        self._transaction.delete(self._client.document(path),
                                 option=self._unchanged(if_update_time))

    def _unchanged(self, update_time: datetime | None) -> Any:
        if update_time is None:
            return None
        if isinstance(update_time, DatetimeWithNanoseconds):  # a datetime would lose the ns
            exact = update_time.timestamp_pb()  # type: ignore[no-untyped-call]
            return self._client.write_option(last_update_time=exact)
        return self._client.write_option(last_update_time=update_time)


def _snapshot(found: Any) -> Snapshot:
    return Snapshot(found.reference.path, found.to_dict() or {},
                    _time(getattr(found, "create_time", None)),
                    _time(getattr(found, "update_time", None)))


def _time(value: Any) -> datetime | None:
    """Return a snapshot's time as a UTC datetime, to the nanosecond.

    Listeners give datetimes (with nanoseconds), queries protobuf Timestamps. The
    nanoseconds are kept (a `DatetimeWithNanoseconds`), so that an update time
    can be a write's precondition (`if_update_time`) exactly as the server stamped it.
    """
    if isinstance(value, DatetimeWithNanoseconds) and value.tzinfo is not None:
        return value
    if isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond, tzinfo=value.tzinfo or UTC)
    if hasattr(value, "seconds") and hasattr(value, "nanos"):
        found: datetime = DatetimeWithNanoseconds.from_timestamp_pb(value)  # type: ignore[no-untyped-call]
        return found
    return None


def _to_firestore(value: Any) -> Any:
    if value is SERVER_TIME:
        return firestore.SERVER_TIMESTAMP
    if isinstance(value, Mapping):
        return {key: _to_firestore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_firestore(item) for item in value]
    return value
