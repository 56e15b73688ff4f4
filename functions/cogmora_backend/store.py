"""Storage behind a small interface: a database that runs transactions.

`FirestoreDatabase` runs each unit of work in a Firestore transaction (read
everything, then write; retried on contention). `MemoryDatabase` is the
in-memory fake that unit tests use for the same services.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from cogmora_backend.queries import QuerySpec
from cogmora_backend.retry import is_contention, retry
from cogmora_core.errors import InvalidInput, RetryableError

T = TypeVar("T")
Document = dict[str, Any]


class _ServerTime:
    """Marks a field to be set to the server's commit time."""

    def __repr__(self) -> str:
        return "SERVER_TIME"


SERVER_TIME: Any = _ServerTime()


class DocumentMissing(RetryableError):
    """A batch updated a document that does not exist; the batch wrote nothing."""


class Transaction(Protocol):
    """Reads come first, writes are applied together when the work returns."""

    def get(self, path: str) -> Document | None:
        """Return the document's data, or None when it does not exist."""

    def get_many(self, paths: list[str]) -> list[Document | None]:
        """Return several documents at once (one round trip), in the order asked."""

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Write the whole document (or merge top-level maps into it)."""

    def update(self, path: str, data: Mapping[str, Any]) -> None:
        """Change the named fields (dotted keys are field paths) of an existing document.

        In a batch, a missing document fails the whole batch with `DocumentMissing`.
        """

    def delete(self, path: str) -> None:
        """Delete the document."""


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

    def list(self, collection: str, limit: int | None = None) -> list[tuple[str, Document]]:
        """Return (id, data) of the documents of a collection by id (at most `limit`),
        outside any transaction."""

    def query(self, spec: QuerySpec, equals: tuple[Any, ...],
              bound: Any = None) -> Iterable[tuple[str, Document]]:
        """Return (path, data) of the documents `spec` finds, outside any transaction.

        `equals` are the values of the equality fields (a list: any of them),
        `bound` the range field's bound; ordered by the range field.
        """

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None) -> list[tuple[str, Document]]:
        """Return (id, data) of at most `limit` documents of `collection` in `spec`'s order.

        The page starts after the document `after_id` of the same collection;
        raises `CursorMissing` when that document does not exist.
        """


class CursorMissing(InvalidInput, LookupError):
    """A page was asked to start after a document that does not exist."""


class FirestoreDatabase:
    """The real database: Google Cloud Firestore (or its emulator)."""

    def __init__(self, client: Any, max_attempts: int = 1, deadline_seconds: float = 60.0) -> None:
        self._client = client
        self._max_attempts = max_attempts
        self._deadline_seconds = deadline_seconds

    @property
    def client(self) -> Any:
        """Return the underlying `google.cloud.firestore.Client`."""
        return self._client

    def run(self, work: Callable[[Transaction], T],
            done: Callable[[], T | None] | None = None) -> T:
        """Run `work` in a Firestore transaction, retried with jittered backoff on contention.

        Racing transactions back off so that they stop colliding in lockstep,
        and ask `done` before each attempt and once more when the deadline
        passes: once the winner's work is visible, the others stop without
        taking the document's locks again, or report it instead of an error.
        """
        from google.cloud import firestore

        @firestore.transactional
        def attempt(transaction: Any) -> T:
            return work(_FirestoreTransaction(self._client, transaction))

        def once() -> T:
            if done is not None:
                found = done()
                if found is not None:
                    return found
            return attempt(self._client.transaction(max_attempts=self._max_attempts))

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

        Raises `DocumentMissing` when an update names a document that does not exist
        (nothing is written then).
        """
        from google.api_core import exceptions

        batch = self._client.batch()
        work(_FirestoreTransaction(self._client, batch, reads=False))
        try:
            retry(batch.commit, is_contention, self._deadline_seconds)
        except exceptions.NotFound as error:
            raise DocumentMissing(str(error)) from error

    def read(self, path: str) -> Document | None:
        """Return one document outside any transaction, or None."""
        snapshot = self._client.document(path).get()
        return snapshot.to_dict() if snapshot.exists else None

    def list(self, collection: str, limit: int | None = None) -> list[tuple[str, Document]]:
        """Return (id, data) of the documents of a collection, by id, at most `limit`."""
        query = self._client.collection(collection)
        if limit is not None:
            query = query.limit(limit)  # ordered by document id
        return [(s.id, s.to_dict()) for s in query.stream()]

    def query(self, spec: QuerySpec, equals: tuple[Any, ...],
              bound: Any = None) -> Iterator[tuple[str, Document]]:
        """Stream (path, data) of the documents the query of `spec` finds."""
        for snapshot in spec.build(self._client, equals, bound).stream():
            yield snapshot.reference.path, snapshot.to_dict() or {}

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None) -> list[tuple[str, Document]]:
        """Return one page of `collection` in `spec`'s order (one query, plus the cursor read)."""
        after = None
        if after_id is not None:
            after = self._client.document(f"{collection}/{after_id}").get()
            if not after.exists:
                raise CursorMissing(after_id)
        query = spec.page(self._client, collection, limit, after)
        return [(s.id, s.to_dict()) for s in query.stream()]


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

    def update(self, path: str, data: Mapping[str, Any]) -> None:
        self._transaction.update(self._client.document(path), _to_firestore(data))

    def delete(self, path: str) -> None:
        self._transaction.delete(self._client.document(path))


def _to_firestore(value: Any) -> Any:
    from google.cloud import firestore

    if value is SERVER_TIME:
        return firestore.SERVER_TIMESTAMP
    if isinstance(value, Mapping):
        return {key: _to_firestore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_firestore(item) for item in value]
    return value


class MemoryDatabase:
    """An in-memory fake with serialisable transactions, for unit tests."""

    def __init__(self, documents: Mapping[str, Document] | None = None) -> None:
        self.documents: dict[str, Document] = copy.deepcopy(dict(documents or {}))
        self._lock = threading.Lock()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.commits = 0

    def run(self, work: Callable[[Transaction], T],
            done: Callable[[], T | None] | None = None) -> T:
        """Run `work` under a lock and apply its writes only when it returns.

        Transactions never race here, so `done` is asked once, first.
        """
        if done is not None:
            found = done()
            if found is not None:
                return found
        with self._lock:
            transaction = _MemoryTransaction(self)
            result = work(transaction)
            transaction.commit()
            return result

    def write(self, work: Callable[[Transaction], None]) -> None:
        """Apply the writes of `work` together (reads are refused, as in a batch)."""
        with self._lock:
            batch = _MemoryTransaction(self, reads=False)
            work(batch)
            try:
                batch.commit()
            except KeyError as error:
                raise DocumentMissing(str(error)) from error

    def read(self, path: str) -> Document | None:
        """Return a copy of one document, or None."""
        with self._lock:
            found = self.documents.get(path)
            return copy.deepcopy(found) if found is not None else None

    def list(self, collection: str, limit: int | None = None) -> list[tuple[str, Document]]:
        """Return (id, data) of the documents directly in `collection`, by id, at most `limit`."""
        depth = collection.count("/") + 1
        with self._lock:
            found = [(path.rsplit("/", 1)[1], copy.deepcopy(doc))
                     for path, doc in sorted(self.documents.items())
                     if path.startswith(collection + "/") and path.count("/") == depth]
        return found if limit is None else found[:limit]

    def query(self, spec: QuerySpec, equals: tuple[Any, ...],
              bound: Any = None) -> list[tuple[str, Document]]:
        """Return (path, data) of the documents `spec` finds, as Firestore would.

        A group query looks in every collection of that name, the others in
        the top-level one; documents without a filtered field are left out.
        """
        if len(equals) != len(spec.equality):
            raise ValueError(f"{spec.name} takes {len(spec.equality)} equality values")
        compare = _OPERATORS[spec.range_operator]
        found: list[tuple[str, Document]] = []
        with self._lock:
            for path, document in sorted(self.documents.items()):
                parts = path.split("/")
                if parts[-2] != spec.collection_group or (not spec.group and len(parts) != 2):
                    continue
                if not all(_matches(_field(document, name), wanted)
                           for name, wanted in zip(spec.equality, equals, strict=True)):
                    continue
                if spec.range_field is not None:
                    value = _field(document, spec.range_field)
                    if value is _MISSING or not compare(value, bound):
                        continue
                found.append((path, copy.deepcopy(document)))
        if spec.range_field is not None:
            field = spec.range_field
            found.sort(key=lambda row: _field(row[1], field))
        return found

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None) -> list[tuple[str, Document]]:
        """Return one page of `collection` in `spec`'s order, as Firestore would.

        Documents without the order field are left out, as Firestore does.
        """
        field = spec.order_field
        if field is None:
            raise ValueError(f"{spec.name} is not a page query")
        rows = [(doc_id, doc) for doc_id, doc in self.list(collection) if field in doc]
        rows.sort(key=lambda row: (row[1][field], row[0]), reverse=spec.descending)
        if after_id is not None:
            ids = [doc_id for doc_id, _ in rows]
            if after_id not in ids:
                raise CursorMissing(after_id)
            rows = rows[ids.index(after_id) + 1:]
        return rows[:limit]


class _MemoryTransaction:
    def __init__(self, database: MemoryDatabase, reads: bool = True) -> None:
        self._database = database
        self._reads = reads
        self._writes: list[Callable[[], None]] = []
        self._updated: list[str] = []

    def get(self, path: str) -> Document | None:
        if not self._reads:
            raise RuntimeError("a write batch cannot read")
        if self._writes:
            raise RuntimeError("a transaction must read before it writes")
        found = self._database.documents.get(path)
        return copy.deepcopy(found) if found is not None else None

    def get_many(self, paths: list[str]) -> list[Document | None]:
        return [self.get(path) for path in paths]

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        value = self._resolve(data)

        def apply() -> None:
            documents = self._database.documents
            documents[path] = _merge(documents.get(path, {}), value) if merge else value

        self._writes.append(apply)

    def update(self, path: str, data: Mapping[str, Any]) -> None:
        value = self._resolve(data)
        self._updated.append(path)

        def apply() -> None:
            document = self._database.documents.get(path)
            if document is None:
                raise KeyError(f"no document to update at {path}")
            for dotted, item in value.items():
                *parents, leaf = dotted.split(".")
                target = document
                for name in parents:
                    target = target.setdefault(name, {})
                target[leaf] = item

        self._writes.append(apply)

    def delete(self, path: str) -> None:
        self._writes.append(lambda: self._database.documents.pop(path, None))

    def commit(self) -> None:
        missing = [path for path in self._updated if path not in self._database.documents]
        if missing:
            raise KeyError(f"no document to update at {missing[0]}")
        for apply in self._writes:
            apply()
        if self._writes:
            self._database.commits += 1

    def _resolve(self, value: Any) -> Any:
        if value is SERVER_TIME:
            return self._database.now
        if isinstance(value, Mapping):
            return {key: self._resolve(item) for key, item in value.items()}
        return copy.deepcopy(value)


_MISSING: Any = object()
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _field(document: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at a dotted field path, or `_MISSING`."""
    value: Any = document
    for name in dotted.split("."):
        if not isinstance(value, Mapping) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _matches(value: Any, wanted: Any) -> bool:
    """Return whether a field's value passes an equality filter (a list: `in`)."""
    if value is _MISSING:
        return False
    return value in wanted if isinstance(wanted, list) else bool(value == wanted)


def _merge(base: Document, extra: Mapping[str, Any]) -> Document:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged
