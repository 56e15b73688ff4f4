"""Settling a user's pending marks together: one transaction per 500 writes, exact, once.

`settle_account` settles every priced close and pending execution of one
user in as few transactions as Firestore's write limit allows, each exactly
as `settle_close` / `settle_execution` would, on the balance the previous
left. Balances here are computed by hand (DESIGN.md §3), not by the core.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend import firestore_client, handlers
from cogmora_backend.reconcile import reconcile
from cogmora_backend.settlement import (
    MAX_WRITES,
    settle_account,
    settle_close,
    settle_execution,
)
from cogmora_backend.store import Transaction
from cogmora_core.config import LimitsConfig, TradingConfig
from cogmora_core.contract import ledger
from cogmora_core.money import parse_number
from tests.support.builders import execution_doc, position_doc
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()
T = datetime(2026, 1, 1, tzinfo=UTC)
USER = "users/whale"


def _closing(price: float, reason: str = "liquidation", at_seconds: int = 0) -> dict[str, Any]:
    """A 10x long SOLUSDTM (500 margin, size 50 at 100, fee 3) priced to close at `price`."""
    return position_doc(details={"status": "closing", "closeRequest": {
        "reason": reason, "price": price, "at": T + timedelta(seconds=at_seconds),
        "source": "w"}})


def _pending(**extra: Any) -> dict[str, Any]:
    """A 10x long XBTUSDTM, 100 USDT at 60,000: debits 100 + 1,000 × 0.0006 = 100.6."""
    return execution_doc(executedAt=T, **extra)


def _credit(price: D) -> D:
    """The model: margin + size × (close − entry) − size × close × 0.0006, at least 0."""
    return max(D(0), D(500) + 50 * (price - 100) - 50 * price * D("0.0006"))


class CountingDatabase(MemoryDatabase):
    """Counts transactions and the writes of each."""

    def __init__(self, documents: dict[str, Any]) -> None:
        super().__init__(documents)
        self.transaction_writes: list[int] = []

    def run(self, work: Any, done: Any = None) -> Any:
        def counting(tx: Transaction) -> Any:
            result = work(tx)
            self.transaction_writes.append(len(tx._paths))  # type: ignore[attr-defined]
            return result

        return super().run(counting, done)


def _whale(closes: int, opens: int, balance: int = 100_000) -> dict[str, Any]:
    documents: dict[str, Any] = {USER: {"balance": balance, "openPositionCount": closes}}
    for n in range(closes):
        documents[f"{USER}/openPositions/p{n}"] = _closing(90 + n % 10, at_seconds=n)
    for n in range(opens):
        documents[f"{USER}/executedTriggers/e{n}"] = _pending()
    return documents


def _opening(balance: D) -> ledger.Entry:
    entry = ledger.opening_entry(balance, None, None)
    return ledger.parse_entry(entry.id, entry.document)


def _balance(database: MemoryDatabase) -> D:
    value = parse_number((database.read(USER) or {})["balance"])
    assert value is not None
    return value


def test_a_whales_closes_and_executions_settle_in_one_transaction_exactly() -> None:
    database = CountingDatabase(_whale(closes=100, opens=40))
    outcomes = settle_account(database, "whale", CONFIG, LimitsConfig(max_open_positions=500))
    assert len(outcomes) == 140 and {o.kind for o in outcomes.values()} == {"settled", "filled"}
    assert database.transaction_writes == [100 * 3 + 40 * 4 + 1]  # with a journal entry each
    credits = sum((_credit(D(90 + n % 10)) for n in range(100)), D(0))
    assert _balance(database) == D(100_000) + credits - 40 * D("100.6")
    user = database.read(USER) or {}
    assert user["openPositionCount"] == 40
    positions = [p for p in database.documents if "/openPositions/" in p]
    assert sorted(positions) == sorted(f"{USER}/openPositions/e{n}" for n in range(40))
    history = {p: d for p, d in database.documents.items() if "/tradeHistory/" in p}
    assert sum(d["status"] == "closed" for d in history.values()) == 100
    assert all(d["status"] == "open" for p, d in history.items() if p.endswith(("e0", "e1")))
    # Every balance change has its entry; they chain from the balance before to the one after.
    entries = [ledger.parse_entry(p.rsplit("/", 1)[1], d)
               for p, d in database.documents.items() if "/ledger/" in p]
    assert len(entries) == 140
    ordered = ledger.chain_order(entries)
    assert ordered[0].balance_before == D(100_000)
    assert ledger.check_chain([_opening(D(100_000)), *ordered]) == []
    assert ordered[-1].balance_after == _balance(database)
    assert ledger.total(entries) == _balance(database) - D(100_000)


def test_more_than_500_writes_are_split_and_each_transaction_stays_within_the_limit() -> None:
    database = CountingDatabase(_whale(closes=400, opens=0))
    outcomes = settle_account(database, "whale", CONFIG)
    assert len(outcomes) == 400
    assert len(database.transaction_writes) == 3  # 3 writes a close: 166 closes at most
    assert all(writes <= MAX_WRITES for writes in database.transaction_writes)
    credits = sum((_credit(D(90 + n % 10)) for n in range(400)), D(0))
    assert _balance(database) == D(100_000) + credits


def test_one_event_settles_every_transaction_of_the_account_not_only_its_own() -> None:
    """A whale's 400 priced closes need three transactions; the event of any one settles all.

    Each transaction after the one that settled the event's own mark used to
    step aside (that mark was settled: by itself), leaving the rest to later
    events and reporting the event's own mark as skipped."""
    for asked in (f"{USER}/openPositions/p0", f"{USER}/openPositions/p399"):
        database = CountingDatabase(_whale(closes=400, opens=0))
        outcomes = settle_account(database, "whale", CONFIG, asked=asked)
        assert outcomes[asked].kind == "settled"
        assert len(outcomes) == 400 and {o.kind for o in outcomes.values()} == {"settled"}
        assert len(database.transaction_writes) == 3
        assert not [path for path in database.documents if "/openPositions/" in path]
        credits = sum((_credit(D(90 + n % 10)) for n in range(400)), D(0))
        assert _balance(database) == D(100_000) + credits


def test_an_event_of_a_settled_mark_still_settles_the_accounts_other_pending_marks() -> None:
    database = CountingDatabase(_whale(closes=3, opens=0))
    settle_account(database, "whale", CONFIG)
    later = f"{USER}/openPositions/later"
    database.set(later, _closing(95, "stop_loss"))
    again = f"{USER}/openPositions/p1"  # delivered again, after its settlement
    outcomes = settle_account(database, "whale", CONFIG, asked=again)
    assert outcomes[again].kind == "skipped" and outcomes[later].kind == "settled"
    assert database.read(later) is None


def test_the_same_as_settling_one_by_one_closes_first() -> None:
    documents = _whale(closes=12, opens=5, balance=400)  # the executions need the credits
    together, alone = MemoryDatabase(documents), MemoryDatabase(copy.deepcopy(documents))
    settle_account(together, "whale", CONFIG)
    for n in range(12):
        settle_close(alone, "whale", f"p{n}", CONFIG)
    for n in range(5):
        settle_execution(alone, "whale", f"e{n}", CONFIG)
    assert together.documents == alone.documents


def test_what_cannot_be_settled_is_rejected_alone_and_the_rest_settles() -> None:
    documents = _whale(closes=3, opens=3, balance=150)
    documents[f"{USER}/openPositions/bad"] = {**_closing(95), "size": "lots"}
    database = MemoryDatabase(documents)
    outcomes = settle_account(database, "whale", CONFIG)
    assert outcomes[f"{USER}/openPositions/bad"].kind == "rejected"
    # 150 plus the credits of the closes at 90, 91 and 92 pays for the first executions only
    credits = sum((_credit(D(90 + n)) for n in range(3)), D(0))
    paid = int((D(150) + credits) // D("100.6"))
    kinds = sorted(outcomes[f"{USER}/executedTriggers/e{n}"].kind for n in range(3))
    assert kinds == sorted(["filled"] * paid + ["rejected"] * (3 - paid))
    assert _balance(database) == D(150) + credits - paid * D("100.6")
    bad = database.read(f"{USER}/openPositions/bad") or {}
    assert bad["details"]["settlementError"] == "invalid_size"
    again = settle_account(database, "whale", CONFIG)  # the rejected close is not retried
    assert [o.kind for o in again.values()] == ["rejected"]
    assert _balance(database) == D(150) + credits - paid * D("100.6")


def test_duplicate_events_and_the_reconciler_settle_nothing_twice() -> None:
    database = CountingDatabase(_whale(closes=20, opens=10))
    asked = f"{USER}/openPositions/p3"
    first = settle_account(database, "whale", CONFIG, asked=asked)
    assert first[asked].kind == "settled" and len(first) == 20  # a close: the closes
    execution = f"{USER}/executedTriggers/e7"
    second = settle_account(database, "whale", CONFIG, asked=execution)
    assert second[execution].kind == "filled" and len(second) == 10  # the executions
    assert len(database.transaction_writes) == 2
    balance = _balance(database)
    transactions = len(database.transaction_writes)
    for n in range(20):  # every other event of the storm arrives after: a plain read each
        path = f"{USER}/openPositions/p{n}"
        assert settle_account(database, "whale", CONFIG, asked=path) == {
            path: settle_close(database, "whale", f"p{n}", CONFIG)}
    for n in range(10):
        assert settle_account(database, "whale", CONFIG,
                              asked=f"{USER}/executedTriggers/e{n}")[
            f"{USER}/executedTriggers/e{n}"].kind == "skipped"
    report = reconcile(database, T + timedelta(hours=1))
    assert report.executions == {} and report.closes == {}
    assert len(database.transaction_writes) == transactions
    assert _balance(database) == balance


def test_a_mark_the_query_did_not_return_is_still_settled_by_its_own_event() -> None:
    database = MemoryDatabase(_whale(closes=2, opens=0))
    late = f"{USER}/openPositions/late"
    database.set(late, _closing(99, "stop_loss"))
    original = database.query

    def query_missing_it(*args: Any, **kwargs: Any) -> Any:  # written just after it ran
        return [found for found in original(*args, **kwargs) if found.path != late]

    database.query = query_missing_it  # type: ignore[method-assign]
    outcomes = settle_account(database, "whale", CONFIG, asked=late)
    assert outcomes[late].kind == "settled" and len(outcomes) == 3
    assert _balance(database) == D(100_000) + _credit(D(90)) + _credit(D(91)) + _credit(D(99))


def test_an_account_not_counted_yet_is_counted_once() -> None:
    documents = _whale(closes=2, opens=2)
    del documents[USER]["openPositionCount"]
    database = MemoryDatabase(documents)
    settle_account(database, "whale", CONFIG)
    # counted from a listing (2 closing + 2 opened), minus the 2 closes
    assert (database.read(USER) or {})["openPositionCount"] == 2


class ReadCountingDatabase(MemoryDatabase):
    """Counts every read outside a transaction, by path."""

    def __init__(self, documents: dict[str, Any]) -> None:
        super().__init__(documents)
        self.reads: list[str] = []

    def read(self, path: str) -> Any:
        self.reads.append(path)
        return super().read(path)


def test_the_instance_that_settled_a_mark_answers_its_later_events_without_a_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    database = ReadCountingDatabase(_whale(closes=3, opens=2))
    monkeypatch.setattr(firestore_client, "database", lambda: database)
    monkeypatch.setattr(handlers, "SETTLED", handlers.RecentlySettled(capacity=5))
    priced = {"details": {"status": "closing", "closeRequest": {"reason": "liquidation",
                                                                "price": 90}}}
    assert handlers.on_position_written("whale", "p0", priced).kind == "settled"
    assert handlers.on_execution_created("whale", "e1", {"status": "pending"}).kind == "filled"
    database.reads.clear()
    # the storm's other events for the marks settled with them: no read at all
    for n in (0, 1, 2):
        assert handlers.on_position_written("whale", f"p{n}", priced).kind == "skipped"
    for n in (0, 1):
        assert handlers.on_execution_created(
            "whale", f"e{n}", {"status": "pending"}).kind == "skipped"
    assert database.reads == []
    # a mark settled elsewhere (by another instance) is read, and skipped
    database.set(f"{USER}/openPositions/late", _closing(95))
    settle_close(database, "whale", "late", CONFIG)
    database.reads.clear()
    assert handlers.on_position_written("whale", "late", priced).kind == "skipped"
    assert database.reads == [f"{USER}/openPositions/late"]
    # past the capacity the oldest is forgotten: read again, and still skipped
    database.set(f"{USER}/openPositions/next", _closing(96))
    assert handlers.on_position_written("whale", "next", priced).kind == "settled"
    database.reads.clear()
    assert handlers.on_position_written("whale", "p0", priced).kind == "skipped"
    assert handlers.on_position_written("whale", "p1", priced).kind == "skipped"
    assert database.reads == [f"{USER}/openPositions/p0"]
    credits = sum((_credit(D(90 + n)) for n in range(3)), D(0)) + _credit(D(95)) + _credit(D(96))
    assert _balance(database) == D(100_000) + credits - 2 * D("100.6")


def test_only_marks_settled_for_good_are_remembered() -> None:
    remembered = handlers.RecentlySettled()
    rejected = f"{USER}/openPositions/bad"
    database = MemoryDatabase(_whale(closes=1, opens=0))
    database.set(rejected, {**_closing(95), "size": "lots"})
    outcomes = settle_account(database, "whale", CONFIG)
    assert outcomes[rejected].kind == "rejected"  # stays, with its settlement error
    remembered.record(outcomes)
    assert f"{USER}/openPositions/p0" in remembered and rejected not in remembered
