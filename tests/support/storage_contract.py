"""What every adapter of the storage port does: one set of checks for the fake and Firestore.

`tests/unit/test_storage_port.py` runs them on the in-memory fake,
`tests/integration/test_storage_port.py` on the Firestore emulator. Each
check writes only under `users/<scope>/` (no user document, so no function
fires) and queries by a symbol or status of its own, so runs never meet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogmora_backend import queries
from cogmora_backend.store import (
    SERVER_TIME,
    ChangeKind,
    Database,
    DocumentChange,
    DocumentMissing,
    StaleWrite,
    Transaction,
)

Check = Callable[[Database, str], None]
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _trigger(symbol: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "amount": 100, "details": {"status": status}, **extra}


def writes_and_reads_outside_transactions(db: Database, scope: str) -> None:
    path = f"users/{scope}/workerState/beat"
    assert db.read(path) is None
    db.set(path, {"lastTickMs": 5, "symbols": {"A": 5}, "at": SERVER_TIME})
    found = db.read(path)
    assert found is not None
    assert (found["lastTickMs"], found["symbols"]) == (5, {"A": 5})
    assert isinstance(found["at"], datetime)
    db.set(path, {"symbols": {"B": 7}}, merge=True)
    assert (db.read(path) or {})["symbols"] == {"A": 5, "B": 7}
    db.set(path, {"lastTickMs": 9})
    assert db.read(path) == {"lastTickMs": 9}


def queries_by_equality_and_in(db: Database, scope: str) -> None:
    symbol = f"PORT-{scope}"
    base = f"users/{scope}/tradeTriggers"
    documents = {"a": _trigger(symbol), "b": _trigger(symbol, "cancelled"),
                 "c": _trigger(symbol, "rejected"), "d": _trigger("OTHER-" + scope),
                 "e": {"symbol": symbol, "amount": 1}}

    def arrange(batch: Transaction) -> None:
        for doc_id, data in documents.items():
            batch.set(f"{base}/{doc_id}", data)

    db.write(arrange)
    found = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"))
    assert [(s.path, s.id, s.data) for s in found] == [(f"{base}/a", "a", _trigger(symbol))]
    either = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, ["active", "cancelled"]))
    assert [s.id for s in either] == ["a", "b"]  # no details.status: never found
    assert db.count(queries.TRIGGERS_BY_SYMBOL, (symbol, ["active", "cancelled"])) == 2
    assert db.count(queries.TRIGGERS_BY_SYMBOL, (symbol, "filled")) == 0
    with pytest.raises(ValueError):
        db.query(queries.TRIGGERS_BY_SYMBOL, (symbol,))


def stamps_create_and_update_times(db: Database, scope: str) -> None:
    symbol = f"PORT-{scope}"
    path = f"users/{scope}/tradeTriggers/t"
    db.set(path, _trigger(symbol))
    [first] = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"))
    assert first.create_time is not None and first.update_time is not None
    assert first.create_time.utcoffset() == timedelta(0)
    assert first.update_time >= first.create_time
    db.write(lambda batch: batch.update(path, {"amount": 200}))
    [second] = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"))
    assert second.data["amount"] == 200
    assert second.create_time == first.create_time
    assert second.update_time is not None and second.update_time >= first.update_time


def pages_a_range_query_in_order(db: Database, scope: str) -> None:
    symbol = f"PORT-{scope}"
    base = f"users/{scope}/tradeHistory"
    closed = {"h1": T0 + timedelta(minutes=3), "h2": T0 + timedelta(minutes=1),
              "h3": T0 + timedelta(minutes=1), "h4": T0 + timedelta(minutes=2),
              "h5": T0 + timedelta(minutes=5), "h0": T0}

    def arrange(batch: Transaction) -> None:
        for doc_id, at in closed.items():
            batch.set(f"{base}/{doc_id}", {"symbol": symbol, "status": "closed", "closedAt": at})
        batch.set(f"{base}/open", {"symbol": symbol, "status": "open", "closedAt": T0})

    db.write(arrange)
    spec, equals = queries.CLOSED_AFTER, (symbol, "closed")
    everything = db.query(spec, equals, T0)  # closed after T0: h0 is not
    assert [s.id for s in everything] == ["h2", "h3", "h4", "h1", "h5"]
    pages: list[list[str]] = []
    after = None
    while True:
        page = db.query(spec, equals, T0, limit=2, after=after)
        pages.append([s.id for s in page])
        if len(page) < 2:
            break
        after = page[-1]
    assert pages == [["h2", "h3"], ["h4", "h1"], ["h5"]]
    # The cursor is the snapshot's values: its document may be gone since.
    first_two = db.query(spec, equals, T0, limit=2)
    db.write(lambda batch: batch.delete(f"{base}/h3"))
    assert [s.id for s in db.query(spec, equals, T0, after=first_two[-1])] == ["h4", "h1", "h5"]
    assert db.count(spec, equals, T0) == 4


def lists_the_ids_a_query_finds(db: Database, scope: str) -> None:
    symbol = f"PORT-IDS-{scope}"
    base = f"users/{scope}/tradeHistory"
    closed = {"k1": T0 + timedelta(minutes=3), "k2": T0 + timedelta(minutes=1),
              "k3": T0 + timedelta(minutes=1), "k0": T0}

    def arrange(batch: Transaction) -> None:
        for doc_id, at in closed.items():
            batch.set(f"{base}/{doc_id}", {"symbol": symbol, "status": "closed", "closedAt": at,
                                           "detail": {"large": "x" * 100}})

    db.write(arrange)
    spec, equals = queries.CLOSED_AFTER, (symbol, "closed")
    assert db.ids(spec, equals, T0) == ["k2", "k3", "k1"]
    assert db.ids(spec, equals, T0, limit=2) == ["k2", "k3"]
    assert db.ids(spec, equals, T0 + timedelta(minutes=3)) == []


def lists_a_collections_ids(db: Database, scope: str) -> None:
    base = f"users/{scope}/workerState"

    def arrange(batch: Transaction) -> None:
        for doc_id in ("c", "a", "b"):
            batch.set(f"{base}/{doc_id}", {"symbols": {"A": 1}})

    db.write(arrange)
    assert db.list_ids(base) == ["a", "b", "c"]
    assert db.list_ids(base, limit=2) == ["a", "b"]
    assert db.list_ids(base, after_id="a") == ["b", "c"]
    assert db.list_ids(base, limit=1, after_id="ab") == ["b"]  # the id need not exist
    assert db.list_ids(f"users/{scope}/none") == []


def listens_to_what_a_query_finds(db: Database, scope: str) -> None:
    symbol = f"PORT-{scope}"
    base = f"users/{scope}/tradeTriggers"
    db.set(f"{base}/a", _trigger(symbol))
    heard: list[DocumentChange] = []
    lock = threading.Lock()

    def on_changes(changes: list[DocumentChange]) -> None:
        assert changes
        with lock:
            heard.extend(changes)

    def until(count: int) -> list[tuple[ChangeKind, str, Any]]:
        deadline = time.monotonic() + 20
        while True:
            with lock:
                if len(heard) >= count:
                    return [(c.kind, c.snapshot.id, c.snapshot.data.get("amount"))
                            for c in heard]
            assert time.monotonic() < deadline, f"heard only {heard}"
            time.sleep(0.05)

    subscription = db.listen(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"), on_changes)
    try:
        assert until(1) == [(ChangeKind.ADDED, "a", 100)]
        assert subscription.active
        db.set(f"{base}/b", _trigger(symbol))
        assert until(2)[1:] == [(ChangeKind.ADDED, "b", 100)]
        db.write(lambda batch: batch.update(f"{base}/a", {"amount": 300}))
        assert until(3)[2:] == [(ChangeKind.MODIFIED, "a", 300)]
        db.write(lambda batch: batch.update(f"{base}/a", {"details.status": "cancelled"}))
        assert until(4)[3:] == [(ChangeKind.REMOVED, "a", 300)]
        db.write(lambda batch: batch.delete(f"{base}/b"))
        assert until(5)[4:] == [(ChangeKind.REMOVED, "b", 100)]
        created = heard[1].snapshot
        assert created.create_time is not None and created.update_time is not None
    finally:
        subscription.stop()
    assert not subscription.active
    db.set(f"{base}/c", _trigger(symbol))
    time.sleep(0.5)
    with lock:
        assert len(heard) == 5


def runs_transactions_and_atomic_batches(db: Database, scope: str) -> None:
    path = f"users/{scope}/tradeTriggers/t"
    db.set(path, {"amount": 1})

    def double(tx: Transaction) -> int:
        found = tx.get(path) or {}
        [same, missing] = tx.get_many([path, f"{path}-missing"])
        assert same == found and missing is None
        tx.update(path, {"amount": found["amount"] * 2, "details.status": "active"})
        return int(found["amount"])

    assert db.run(double) == 1
    assert db.read(path) == {"amount": 2, "details": {"status": "active"}}
    assert db.run(double, done=lambda: 99) == 99  # visibly done: nothing runs
    assert db.read(path) == {"amount": 2, "details": {"status": "active"}}

    def partly_missing(batch: Transaction) -> None:
        batch.set(f"{path}-new", {"amount": 5})
        batch.update(f"{path}-missing", {"amount": 5})

    with pytest.raises(DocumentMissing):
        db.write(partly_missing)
    assert db.read(f"{path}-new") is None


def writes_only_the_version_read(db: Database, scope: str) -> None:
    """Preconditions: `create` only a new document, `update`/`delete` only the version read.

    The update times come from a query and from a listener, as the worker reads them.
    """
    symbol = f"PORT-{scope}"
    base = f"users/{scope}/tradeTriggers"
    db.write(lambda batch: batch.create(f"{base}/a", _trigger(symbol)))

    def create_twice(batch: Transaction) -> None:
        batch.set(f"{base}/other", {"amount": 1})
        batch.create(f"{base}/a", _trigger(symbol, amount=7))

    with pytest.raises(StaleWrite):
        db.write(create_twice)
    assert db.read(f"{base}/other") is None and (db.read(f"{base}/a") or {})["amount"] == 100
    heard: list[DocumentChange] = []
    subscription = db.listen(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"), heard.extend)
    try:
        deadline = time.monotonic() + 20
        while not heard:
            assert time.monotonic() < deadline, "the listener heard nothing"
            time.sleep(0.05)
    finally:
        subscription.stop()
    [queried] = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"))
    fresh, missing = db.read_many([f"{base}/a", f"{base}/missing"])
    assert missing is None and fresh is not None and fresh.path == f"{base}/a"
    assert fresh.data == queried.data
    for seen in (heard[0].snapshot, queried, fresh):
        assert seen.update_time == queried.update_time
    read = queried.update_time
    db.write(lambda batch: batch.update(f"{base}/a", {"amount": 200}, if_update_time=read))
    [changed] = db.query(queries.TRIGGERS_BY_SYMBOL, (symbol, "active"))
    assert changed.data["amount"] == 200

    def stale(batch: Transaction) -> None:
        batch.set(f"{base}/other", {"amount": 1})
        batch.update(f"{base}/a", {"amount": 300}, if_update_time=read)

    with pytest.raises(StaleWrite):
        db.write(stale)
    with pytest.raises(StaleWrite):
        db.write(lambda batch: batch.delete(f"{base}/a", if_update_time=read))
    assert db.read(f"{base}/other") is None and (db.read(f"{base}/a") or {})["amount"] == 200
    db.write(lambda batch: batch.delete(f"{base}/a", if_update_time=changed.update_time))
    assert db.read(f"{base}/a") is None
    with pytest.raises(StaleWrite):  # gone: its last version cannot be changed
        db.write(lambda batch: batch.update(f"{base}/a", {"amount": 1},
                                            if_update_time=changed.update_time))
    assert db.read(f"{base}/a") is None


CHECKS: list[Check] = [
    writes_only_the_version_read,
    writes_and_reads_outside_transactions,
    queries_by_equality_and_in,
    stamps_create_and_update_times,
    pages_a_range_query_in_order,
    lists_the_ids_a_query_finds,
    lists_a_collections_ids,
    listens_to_what_a_query_finds,
    runs_transactions_and_atomic_batches,
]
