"""The in-memory fake of the storage port (`cogmora_backend.store.Database`), for unit tests.

It behaves as Firestore does where the code depends on it: transactions are
serialisable and read before they write, a batch that updates a missing
document writes nothing, queries leave out documents without a filtered
field and order by the range field, then the path, listeners first list
what the query finds, then every change, and `SERVER_TIME` becomes `now`
(the commit time, which is also each written document's update time).
Update times carry the commit's number too (as Firestore's, to the nanosecond,
differ between two writes), so a precondition on a snapshot's update time
fails after any later write, even one at the same `now`.
Documents put into `documents` by hand have no times and notify no listener.
"""

from __future__ import annotations

import builtins
import copy
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from cogmora_backend.queries import QuerySpec
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
    Transaction,
)

T = TypeVar("T")
#: What each listener hears of one commit.
_Heard = list[tuple["_Listener", list[DocumentChange]]]


class MemoryDatabase:
    """An in-memory fake with serialisable transactions, for unit tests."""

    def __init__(self, documents: Mapping[str, Document] | None = None) -> None:
        self.documents: dict[str, Document] = copy.deepcopy(dict(documents or {}))
        self._lock = threading.Lock()
        #: Held from a commit until its listeners have heard of it: calls stay in order.
        self._delivering = threading.RLock()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.commits = 0
        #: (create time, update time) of each document written through the port.
        self.times: dict[str, tuple[datetime, datetime]] = {
            path: (self.now, _Stamp.of(self.now, 0)) for path in self.documents}
        self._listeners: list[_Listener] = []

    def run(self, work: Callable[[Transaction], T],
            done: Callable[[], T | None] | None = None) -> T:
        """Run `work` under a lock and apply its writes only when it returns.

        Transactions never race here, so `done` is asked once, first.
        """
        if done is not None:
            found = done()
            if found is not None:
                return found
        with self._delivering:
            with self._lock:
                transaction = _MemoryTransaction(self)
                result = work(transaction)
                try:
                    changes = self._commit(transaction)
                except _Stale as error:
                    raise StaleWrite(str(error)) from error
            self._deliver(changes)
            return result

    def write(self, work: Callable[[Transaction], None]) -> None:
        """Apply the writes of `work` together (reads are refused, as in a batch)."""
        with self._delivering:
            with self._lock:
                batch = _MemoryTransaction(self, reads=False)
                work(batch)
                try:
                    changes = self._commit(batch)
                except _Stale as error:
                    raise StaleWrite(str(error)) from error
                except KeyError as error:
                    raise DocumentMissing(str(error)) from error
            self._deliver(changes)

    def read(self, path: str) -> Document | None:
        """Return a copy of one document, or None."""
        with self._lock:
            found = self.documents.get(path)
            return copy.deepcopy(found) if found is not None else None

    def read_many(self, paths: builtins.list[str]) -> builtins.list[Snapshot | None]:
        """Return copies of several documents with their times, None for a missing one."""
        with self._lock:
            return [self._snapshot(path) if path in self.documents else None for path in paths]

    def set(self, path: str, data: Mapping[str, Any], merge: bool = False) -> None:
        """Write one document outside any transaction."""
        self.write(lambda batch: batch.set(path, data, merge=merge))

    def list(self, collection: str, limit: int | None = None,
             after_id: str | None = None) -> Listing:
        """Return (id, data) of the documents directly in `collection`, by id, at most `limit`
        (after the id `after_id`)."""
        depth = collection.count("/") + 1
        with self._lock:
            found = [(path.rsplit("/", 1)[1], copy.deepcopy(doc))
                     for path, doc in sorted(self.documents.items())
                     if path.startswith(collection + "/") and path.count("/") == depth]
        if after_id is not None:
            found = [(doc_id, doc) for doc_id, doc in found if doc_id > after_id]
        return found if limit is None else found[:limit]

    def list_ids(self, collection: str, limit: int | None = None,
                 after_id: str | None = None) -> builtins.list[str]:
        """Return the ids `list` would return."""
        return [doc_id for doc_id, _ in self.list(collection, limit, after_id)]

    def query(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
              limit: int | None = None, after: Snapshot | None = None,
              parent: str | None = None,
              fields: tuple[str, ...] | None = None) -> builtins.list[Snapshot]:
        """Return the documents `spec` finds, as Firestore would.

        A group query looks in every collection of that name, the others in
        the top-level one; documents without a filtered field are left out.
        `fields` projects each document's data on those of them it has.
        """
        spec.check(equals)
        with self._lock:
            found = [self._snapshot(path) for path, document in sorted(self.documents.items())
                     if _finds(spec, equals, bound, path, document, parent)]
        if spec.range_field is not None:
            field = spec.range_field
            found.sort(key=lambda row: _field(row.data, field))
        if after is not None:
            position = _position(spec, after)
            found = [row for row in found if _position(spec, row) > position]
        found = found if limit is None else found[:limit]
        if fields is not None:
            found = [replace(row, data=_project(row.data, fields)) for row in found]
        return found

    def stream(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
               limit: int | None = None,
               fields: tuple[str, ...] | None = None) -> Iterator[Snapshot]:
        """Yield what `query` returns (found when the first document is asked for)."""
        yield from self.query(spec, equals, bound, limit=limit, fields=fields)

    def ids(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None, *,
            limit: int | None = None) -> builtins.list[str]:
        """Return the ids of the documents `spec` finds, in `query`'s order."""
        return [found.id for found in self.query(spec, equals, bound, limit=limit)]

    def count(self, spec: QuerySpec, equals: tuple[Any, ...] = (), bound: Any = None) -> int:
        """Return how many documents `spec` finds."""
        return len(self.query(spec, equals, bound))

    def listen(self, spec: QuerySpec, equals: tuple[Any, ...],
               on_changes: Callable[[builtins.list[DocumentChange]], None]) -> _Listener:
        """Call `on_changes` with what `spec` finds now, then after every commit that changes it.

        Calls come from the thread that commits, after the commit.
        """
        spec.check(equals)
        with self._delivering:
            with self._lock:
                listener = _Listener(self, spec, equals, on_changes)
                for path, document in sorted(self.documents.items()):
                    if _finds(spec, equals, None, path, document):
                        listener.seen[path] = self._snapshot(path)
                self._listeners.append(listener)
                initial = [DocumentChange(ChangeKind.ADDED, found)
                           for found in listener.seen.values()]
            if initial:
                on_changes(initial)
        return listener

    def page(self, spec: QuerySpec, collection: str, limit: int,
             after_id: str | None = None, *, equals: tuple[Any, ...] = (),
             since: Any = None, before: Any = None) -> Listing:
        """Return one page of `collection` in `spec`'s order, as Firestore would.

        Documents without the order field are left out, as Firestore does.
        """
        field = spec.check_page(collection)
        spec.check(equals)
        rows = [(doc_id, doc) for doc_id, doc in self.list(collection) if field in doc
                and all(_matches(_field(doc, name), wanted)
                        for name, wanted in zip(spec.equality, equals, strict=True))
                and (since is None or doc[field] >= since)
                and (before is None or doc[field] < before)]
        rows.sort(key=lambda row: (row[1][field], row[0]), reverse=spec.descending)
        if after_id is not None:
            ids = [doc_id for doc_id, _ in rows]
            if after_id not in ids:
                raise CursorMissing(after_id)
            rows = rows[ids.index(after_id) + 1:]
        return rows[:limit]

    def _snapshot(self, path: str) -> Snapshot:
        """Return a copy of the document at `path` with its times (lock held)."""
        created, updated = self.times.get(path, (None, None))
        return Snapshot(path, copy.deepcopy(self.documents[path]), created, updated)

    def _commit(self, transaction: _MemoryTransaction) -> _Heard:
        """Apply the writes, stamp the documents' times; return what each listener hears."""
        written = transaction.commit()
        stamp = _Stamp.of(self.now, self.commits)
        for path in written:
            if path not in self.documents:
                self.times.pop(path, None)
            else:
                created = self.times.get(path, (self.now, self.now))[0]
                self.times[path] = (created, stamp)
        heard: _Heard = []
        for listener in self._listeners:
            changes = listener.changes(written)
            if changes:
                heard.append((listener, changes))
        return heard

    def _deliver(self, heard: _Heard) -> None:
        for listener, changes in heard:
            if listener.active:
                listener.on_changes(changes)


class _Listener:
    """A live query on the fake (a port `Subscription`)."""

    def __init__(self, database: MemoryDatabase, spec: QuerySpec, equals: tuple[Any, ...],
                 on_changes: Callable[[list[DocumentChange]], None]) -> None:
        self._database = database
        self.spec = spec
        self.equals = equals
        self.on_changes = on_changes
        #: The documents the query finds, as last heard.
        self.seen: dict[str, Snapshot] = {}
        self._active = True

    @property
    def active(self) -> bool:
        return self._active

    def stop(self) -> None:
        self._active = False
        with self._database._lock:
            if self in self._database._listeners:
                self._database._listeners.remove(self)

    def changes(self, written: list[str]) -> list[DocumentChange]:
        """Return how the writes to `written` changed what the query finds (lock held)."""
        changes = []
        documents = self._database.documents
        for path in dict.fromkeys(written):
            document = documents.get(path)
            if document is not None and _finds(self.spec, self.equals, None, path, document):
                kind = ChangeKind.MODIFIED if path in self.seen else ChangeKind.ADDED
                self.seen[path] = self._database._snapshot(path)
                changes.append(DocumentChange(kind, self.seen[path]))
            elif path in self.seen:
                changes.append(DocumentChange(ChangeKind.REMOVED, self.seen.pop(path)))
        return changes


class _MemoryTransaction:
    def __init__(self, database: MemoryDatabase, reads: bool = True) -> None:
        self._database = database
        self._reads = reads
        self._writes: list[Callable[[], object]] = []
        self._updated: list[str] = []
        self._paths: list[str] = []
        #: (path, must exist, update time it must still have, or None for any).
        self._preconditions: list[tuple[str, bool, datetime | None]] = []

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
        self._paths.append(path)

    def create(self, path: str, data: Mapping[str, Any]) -> None:
        self._preconditions.append((path, False, None))
        self.set(path, data)

    def update(self, path: str, data: Mapping[str, Any], *,
               if_update_time: datetime | None = None) -> None:
        value = self._resolve(data)
        self._updated.append(path)
        if if_update_time is not None:
            self._preconditions.append((path, True, if_update_time))

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
        self._paths.append(path)

    def delete(self, path: str, *, if_update_time: datetime | None = None) -> None:
        if if_update_time is not None:
            self._preconditions.append((path, True, if_update_time))
        self._writes.append(lambda: self._database.documents.pop(path, None))
        self._paths.append(path)

    def commit(self) -> list[str]:
        """Apply the writes; return the paths written, in order.

        Raises `_Stale` (a precondition failed) or `KeyError` (an update of a
        missing document), and then writes nothing.
        """
        database = self._database
        for path, exists, update_time in self._preconditions:
            if not exists and path in database.documents:
                raise _Stale(f"{path} exists already")
            if exists and update_time is not None and (
                    path not in database.documents
                    or not _same_time(database.times.get(path, (None, None))[1],
                                      update_time)):
                raise _Stale(f"{path} changed since {update_time}")
        missing = [path for path in self._updated if path not in self._database.documents]
        if missing:
            raise KeyError(f"no document to update at {missing[0]}")
        for apply in self._writes:
            apply()
        if self._writes:
            self._database.commits += 1
        return self._paths

    def _resolve(self, value: Any) -> Any:
        if value is SERVER_TIME:
            return self._database.now
        if isinstance(value, Mapping):
            return {key: self._resolve(item) for key, item in value.items()}
        return copy.deepcopy(value)


class _Stale(Exception):
    """A precondition of a batch failed (`StaleWrite` for the caller)."""


class _Stamp(datetime):
    """An update time: the commit's `now`, equal to it, with the commit's number.

    Firestore's update times differ between two writes of a document (they
    have nanoseconds); the fake's `now` may not move between commits, so the
    number tells the versions apart when a precondition is checked.
    """

    revision: int = -1

    @classmethod
    def of(cls, moment: datetime, revision: int) -> _Stamp:
        stamp = cls(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                    moment.second, moment.microsecond, tzinfo=moment.tzinfo)
        stamp.revision = revision
        return stamp

    def __reduce_ex__(self, protocol: object) -> Any:  # copies keep the number
        plain = datetime(self.year, self.month, self.day, self.hour, self.minute,
                         self.second, self.microsecond, tzinfo=self.tzinfo)
        return (_Stamp.of, (plain, self.revision))


def _same_time(stored: datetime | None, wanted: datetime) -> bool:
    """Return whether `wanted` (a snapshot's update time) is still the document's."""
    if stored is None or stored != wanted:
        return False
    if isinstance(stored, _Stamp) and isinstance(wanted, _Stamp):
        return stored.revision == wanted.revision
    return True


_MISSING: Any = object()
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _finds(spec: QuerySpec, equals: tuple[Any, ...], bound: Any, path: str,
           document: Mapping[str, Any], parent: str | None = None) -> bool:
    """Return whether the query of `spec` finds this document.

    A group query looks in every collection of that name, the others in the
    top-level one (or the one under `parent`); documents without a filtered
    field are left out.
    """
    parts = path.split("/")
    if parts[-2] != spec.collection_group:
        return False
    if not spec.group and parent is not None:
        if path.rsplit("/", 2)[0] != parent:
            return False
    elif not spec.group and len(parts) != 2:
        return False
    if not all(_matches(_field(document, name), wanted)
               for name, wanted in zip(spec.equality, equals, strict=True)):
        return False
    if spec.range_field is not None:
        value = _field(document, spec.range_field)
        if value is _MISSING or not _OPERATORS[spec.range_operator](value, bound):
            return False
    return True


def _position(spec: QuerySpec, found: Snapshot) -> tuple[Any, ...]:
    """Return where a document stands in the query's order: its range value, then its path."""
    if spec.range_field is None:
        return (found.path,)
    return (_field(found.data, spec.range_field), found.path)


def _field(document: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at a dotted field path, or `_MISSING`."""
    value: Any = document
    for name in dotted.split("."):
        if not isinstance(value, Mapping) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _project(document: Mapping[str, Any], fields: tuple[str, ...]) -> Document:
    """Return the document with only the dotted `fields` it has (Firestore's `select`)."""
    projected: Document = {}
    for dotted in fields:
        value = _field(document, dotted)
        if value is _MISSING:
            continue
        *parents, name = dotted.split(".")
        into = projected
        for parent in parents:
            into = into.setdefault(parent, {})
        into[name] = value
    return projected


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
