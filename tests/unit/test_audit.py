"""The journal audit on the in-memory database: it finds drift exactly and corrects nothing;
its pages on a stand-in queue: each written once, retried, dead-lettered, enqueued again."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend.audit import (
    AUDIT_QUEUE,
    MAX_ENQUEUES,
    PLAN_PAGES,
    REQUEUE_AFTER,
    PageReport,
    PageRequest,
    _save_plan,
    audit_path,
    check_account,
    page_id,
    run_audit,
    run_page,
    task_name,
)
from cogmora_backend.journal import migrate_all
from cogmora_backend.settlement import initialize_account, settle_close, settle_execution
from cogmora_core import TradingConfig
from tests.support.builders import execution_doc, spot_execution_doc
from tests.support.functions_main import functions_main
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()
DAY = date(2026, 1, 1)


def traded_accounts(count: int) -> MemoryDatabase:
    """Return `count` funded accounts, each with a futures position open and a spot one closed."""
    db = MemoryDatabase({f"users/u{n}": {"displayName": "T"} for n in range(count)})
    for n in range(count):
        uid = f"u{n}"
        initialize_account(db, uid, CONFIG)
        db.documents[f"users/{uid}/executedTriggers/f1"] = execution_doc()
        db.documents[f"users/{uid}/executedTriggers/s1"] = spot_execution_doc()
        db.now += timedelta(seconds=1)
        settle_execution(db, uid, "f1", CONFIG)
        settle_execution(db, uid, "s1", CONFIG)
        db.documents[f"users/{uid}/openPositions/s1"]["details"] = {
            "status": "closing", "closeRequest": {"reason": "manual", "price": 51000,
                                                  "source": "worker"}}
        db.now += timedelta(seconds=1)
        settle_close(db, uid, "s1", CONFIG)
    return db


def test_consistent_accounts_have_no_drift_and_the_day_completes() -> None:
    db = traded_accounts(7)

    report = run_audit(db, DAY, page=3, workers=2)

    assert (report.accounts, report.drifted, report.complete) == (7, [], True)
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["accounts"], state["drifted"], state["drift"]) == (
        "complete", 7, 0, {})


def test_a_balance_changed_by_hand_is_reported_exactly_and_left_as_it_is(
        caplog: pytest.LogCaptureFixture) -> None:
    db = traded_accounts(4)
    before = db.documents["users/u2"]["balance"]  # 10000 − 100.6 − 1001 + 1018.98
    assert before == 9917.38
    db.documents["users/u2"]["balance"] = 9999.99  # an admin's write in the console

    with caplog.at_level(logging.ERROR, logger="cogmora_backend.audit"):
        report = run_audit(db, DAY, page=2, workers=2)

    assert [found.uid for found in report.drifted] == ["u2"]
    assert str(report.drifted[0].difference) == "82.61"
    state = db.documents[audit_path(DAY)]
    assert state["drifted"] == 1 and state["totalDifference"] == 82.61
    assert state["drift"]["u2"] == {
        "balance": 9999.99, "journal": 9917.38, "difference": 82.61, "entries": 4,
        "problems": ["balance 9999.99 but the journal sums to 9917.38"]}
    assert db.documents[f"{audit_path(DAY)}/accounts/u2"]["difference"] == 82.61
    assert db.documents["users/u2"]["balance"] == 9999.99  # never corrected
    drift_logs = [r for r in caplog.records if r.getMessage() == "ledger drift"]
    assert [(r.levelno, r.uid) for r in drift_logs] == [(logging.ERROR, "u2")]
    assert drift_logs[0].metric == "ledger_drift_accounts"


def test_a_missing_or_altered_entry_is_named() -> None:
    db = traded_accounts(1)
    del db.documents["users/u0/ledger/close_s1"]
    db.documents["users/u0/ledger/open_f1"]["amount"] = -100

    report = run_audit(db, DAY)

    assert report.drifted[0].problems == [
        "balance 9917.38 but the journal sums to 8899",
        "balanceAfter of open_f1 does not follow the previous entry",
        "open entry of f1 is -100, the position cost 100.6",
        "closed record s1 has no close entry",
    ]


def test_an_account_never_migrated_has_no_beginning_until_the_migration() -> None:
    db = MemoryDatabase({"users/old": {"balance": 500}})

    assert run_audit(db, DAY).drifted[0].problems == [
        "balance 500 but the journal sums to 0",
        "the journal has no beginning (no funded or opening entry)"]
    migrate_all(db)
    assert run_audit(db, DAY, restart=True).drifted == []


def test_a_run_out_of_time_stops_and_the_next_goes_on_from_its_cursor() -> None:
    db = traded_accounts(5)

    first = run_audit(db, DAY, page=2, budget_seconds=0)
    assert (first.accounts, first.out_of_time, first.complete) == (0, True, False)
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["cursor"]) == ("running", None)

    second = run_audit(db, DAY, page=2)
    assert (second.accounts, second.complete) == (5, True)
    assert run_audit(db, DAY).accounts == 0  # the day is done: later runs do nothing


def test_check_account_is_pure_and_exact() -> None:
    entries = [("funded", {"kind": "funded", "amount": 10000, "balanceAfter": 10000,
                           "ref": "initializeAccount", "symbol": None, "at": None}),
               ("open_a", {"kind": "open", "amount": -0.1, "balanceAfter": 9999.9, "ref": "a",
                           "symbol": "X", "at": None})]
    assert check_account("u", D("9999.9"), entries, [], []).problems == []
    assert check_account("u", D("9999.90000001"), entries, [], []).difference == D("1E-8")


def test_a_run_while_another_pages_the_day_does_nothing() -> None:
    db = traded_accounts(2)
    run_audit(db, DAY, budget_seconds=0)
    db.documents[audit_path(DAY)]["leaseUntil"] = datetime.now(UTC) + timedelta(minutes=5)

    held = run_audit(db, DAY)
    assert (held.busy, held.accounts) == (True, 0)

    db.documents[audit_path(DAY)]["leaseUntil"] = datetime.now(UTC) - timedelta(seconds=1)
    done = run_audit(db, DAY)
    assert (done.busy, done.accounts, done.complete) == (False, 2, True)
    assert db.documents[audit_path(DAY)]["leaseUntil"] is None


class Queue:
    """Stands in for Cloud Tasks: records each named task once (a name seen again is
    answered "already queued"); `failing` makes every enqueue raise."""

    def __init__(self, failing: bool = False) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.functions: set[str] = set()
        self.failing = failing

    def __call__(self, function: str, name: str, data: dict[str, Any]) -> bool:
        if self.failing:
            raise ConnectionError("Cloud Tasks is unreachable")
        self.functions.add(function)
        if name in self.tasks:
            return False
        self.tasks[name] = data
        return True

    def deliver(self, db: MemoryDatabase, name: str, retry_count: int = 0,
                **options: Any) -> PageReport:
        return run_page(db, self.tasks[name], retry_count, accounts_per_page=3, workers=2,
                        **options)


def queued_day(db: MemoryDatabase) -> MemoryDatabase:
    """The fake's server time is the clock's (a run finds pages stuck by the clock)."""
    db.now = datetime.now(UTC)
    return db


def pages_of(db: MemoryDatabase, day: date = DAY) -> dict[str, dict[str, Any]]:
    prefix = f"{audit_path(day)}/pages/"
    return {path[len(prefix):]: doc for path, doc in db.documents.items()
            if path.startswith(prefix)}


def test_a_run_enqueues_each_page_once_and_the_last_page_sums_up_the_day(
        caplog: pytest.LogCaptureFixture) -> None:
    db = queued_day(traded_accounts(7))
    db.documents["users/u2"]["balance"] = 9999.99  # an admin's write in the console
    queue = Queue()

    report = run_audit(db, DAY, page=3, enqueue=queue)

    assert (report.planned, report.enqueued, report.accounts, report.complete) == (3, 3, 0, False)
    assert queue.functions == {AUDIT_QUEUE.function}
    assert sorted(queue.tasks) == sorted(task_name(DAY, page_id(1, n), 1) for n in range(3))
    assert sorted((data["page"], data["generation"], data["date"])
                  for data in queue.tasks.values()) == [
        ("0001-000000", 1, "2026-01-01"), ("0001-000001", 1, "2026-01-01"),
        ("0001-000002", 1, "2026-01-01")]
    assert {page: (doc["after"], doc["last"], doc["status"])
            for page, doc in pages_of(db).items()} == {
        "0001-000000": ("", "u2", "queued"), "0001-000001": ("u2", "u5", "queued"),
        "0001-000002": ("u5", None, "queued")}
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["pages"], state["planned"], state["cursor"]) == (
        "running", 3, True, "u6")

    with caplog.at_level(logging.ERROR, logger="cogmora_backend.audit"):
        found = [queue.deliver(db, name) for name in reversed(sorted(queue.tasks))]
        again = queue.deliver(db, task_name(DAY, page_id(1, 0), 1))  # a duplicate delivery

    assert sorted((f.page, f.accounts, [d.uid for d in f.drifted], f.saved) for f in found) == [
        ("0001-000000", 3, ["u2"], True), ("0001-000001", 3, [], True),
        ("0001-000002", 1, [], True)]
    assert (again.saved, again.accounts, again.drifted) == (False, 0, [])
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["accounts"], state["drifted"], state["totalDifference"]) == (
        "complete", 7, 1, 82.61)
    assert state["drift"] == {"u2": {
        "balance": 9999.99, "journal": 9917.38, "difference": 82.61, "entries": 4,
        "problems": ["balance 9999.99 but the journal sums to 9917.38"]}}
    assert db.documents[f"{audit_path(DAY)}/accounts/u2"]["difference"] == 82.61
    assert db.documents["users/u2"]["balance"] == 9999.99  # never corrected
    drift_logs = [r for r in caplog.records if r.getMessage() == "ledger drift"]
    assert [(r.levelno, r.uid) for r in drift_logs] == [(logging.ERROR, "u2")]  # once
    later = run_audit(db, DAY, page=3, enqueue=queue)
    assert (later.complete, later.planned, later.enqueued, len(queue.tasks)) == (True, 0, 0, 3)


def test_accounts_created_after_planning_fall_in_exactly_one_page() -> None:
    db = queued_day(traded_accounts(7))
    queue = Queue()
    run_audit(db, DAY, page=3, enqueue=queue)
    for uid in ("u3a", "zz"):  # inside the second range; after the last id planned
        db.documents[f"users/{uid}"] = {"displayName": "New"}
        initialize_account(db, uid, CONFIG)

    found = {f.page: f.accounts for f in (queue.deliver(db, name) for name in queue.tasks)}

    assert found == {"0001-000000": 3, "0001-000001": 4, "0001-000002": 2}
    assert db.documents[audit_path(DAY)]["accounts"] == 9


def test_a_page_failing_every_try_is_dead_and_a_later_run_enqueues_it_again() -> None:
    db = queued_day(traded_accounts(4))
    queue = Queue()
    run_audit(db, DAY, page=3, enqueue=queue)
    first, second = sorted(queue.tasks, key=lambda name: queue.tasks[name]["page"])
    queue.deliver(db, second)

    def broken(database: Any, uid: str, user: Any) -> Any:
        raise TimeoutError("the journal did not answer")

    for retry in range(AUDIT_QUEUE.max_attempts - 1):  # the queue retries on a raise
        with pytest.raises(TimeoutError):
            queue.deliver(db, first, retry, audit=broken)
    last = queue.deliver(db, first, AUDIT_QUEUE.max_attempts - 1, audit=broken)

    assert (last.dead, last.saved, last.accounts) == (True, False, 0)
    page = pages_of(db)["0001-000000"]
    assert (page["status"], page["attempts"], page["error"]) == (
        "dead", 5, "TimeoutError: the journal did not answer")
    assert db.documents[audit_path(DAY)]["status"] == "running"

    later = run_audit(db, DAY, page=3, enqueue=queue)

    renamed = task_name(DAY, "0001-000000", 2)
    assert (later.requeued, later.enqueued, later.complete) == (1, 1, False)
    assert renamed in queue.tasks and pages_of(db)["0001-000000"]["enqueues"] == 2
    assert queue.deliver(db, renamed).saved
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["accounts"], state["drifted"]) == ("complete", 4, 0)


def test_a_page_never_sent_is_enqueued_again_once_stuck_and_at_most_four_times() -> None:
    db = traded_accounts(2)
    broken = Queue(failing=True)

    first = run_audit(db, DAY, page=3, enqueue=broken, now=db.now)

    assert (first.planned, first.enqueued) == (1, 0)
    assert pages_of(db)["0001-000000"]["status"] == "queued"
    queue = Queue()
    soon = run_audit(db, DAY, page=3, enqueue=queue, now=db.now + timedelta(minutes=29))
    assert (soon.requeued, queue.tasks) == (0, {})
    for n in (2, 3, 4):  # each run past REQUEUE_AFTER sends it again, under a new name
        db.now += REQUEUE_AFTER
        run_audit(db, DAY, page=3, enqueue=queue, now=db.now + timedelta(seconds=1))
        assert pages_of(db)["0001-000000"]["enqueues"] == n
    db.now += REQUEUE_AFTER
    capped = run_audit(db, DAY, page=3, enqueue=queue, now=db.now + timedelta(seconds=1))
    assert (capped.requeued, len(queue.tasks)) == (0, 3)
    assert sorted(queue.tasks) == sorted(task_name(DAY, "0001-000000", n) for n in (2, 3, 4))


def test_a_restart_leaves_the_older_generations_pages_doing_nothing() -> None:
    db = queued_day(traded_accounts(3))
    queue = Queue()
    run_audit(db, DAY, page=3, enqueue=queue)
    [old] = queue.tasks
    db.documents["users/u1"]["balance"] = 1  # found by the restarted audit only

    restarted = run_audit(db, DAY, page=3, enqueue=queue, restart=True)

    assert restarted.planned == 1 and db.documents[audit_path(DAY)]["generation"] == 2
    stale = queue.deliver(db, old)
    assert (stale.saved, stale.accounts) == (False, 0)
    assert pages_of(db)["0001-000000"]["status"] == "queued"
    [new] = [name for name in queue.tasks if name != old]
    assert queue.deliver(db, new).drifted[0].uid == "u1"
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["generation"], state["accounts"], state["drifted"]) == (
        "complete", 2, 3, 1)


def test_no_account_is_one_empty_page_and_the_day_completes() -> None:
    db = queued_day(MemoryDatabase())
    queue = Queue()
    assert run_audit(db, DAY, enqueue=queue).planned == 1
    [name] = queue.tasks
    assert queue.deliver(db, name).accounts == 0
    assert db.documents[audit_path(DAY)]["status"] == "complete"


def test_a_page_payload_is_read_or_refused() -> None:
    data = {"date": "2026-01-01", "page": "0001-000002", "generation": 1}
    assert PageRequest.of(data) == PageRequest(DAY, "0001-000002", 1)
    for bad in (None, [], {**data, "page": ""}, {**data, "page": "a/b"},
                {**data, "generation": 0}, {**data, "generation": True},
                {**data, "generation": "1"}, {**data, "date": "soon"}, {"page": "x"}):
        with pytest.raises(ValueError):
            PageRequest.of(bad)


def test_the_queue_is_sized_for_100000_accounts_within_its_limits() -> None:
    pages = -(-100_000 // AUDIT_QUEUE.accounts_per_page)
    assert pages == 500
    assert pages / AUDIT_QUEUE.max_dispatches_per_second == 50  # seconds to dispatch them all
    # A page writes itself and each drifted account: within a commit's 500 writes.
    assert AUDIT_QUEUE.accounts_per_page + 2 <= 500
    assert PLAN_PAGES + 1 <= 500
    assert AUDIT_QUEUE.max_attempts >= 2 and MAX_ENQUEUES >= 2
    assert task_name(DAY, "0001-000000", 1) != task_name(DAY, "0001-000000", 2)
    assert task_name(DAY, "0001-000000", 1) != task_name(date(2026, 1, 2), "0001-000000", 1)
    assert len(task_name(DAY, "0001-000000", 1)) == 46


def test_the_page_function_declares_the_queue_settings() -> None:
    main = functions_main()

    endpoint = main.runAuditPage.__firebase_endpoint__
    assert endpoint.taskQueueTrigger["rateLimits"] == {
        "maxDispatchesPerSecond": AUDIT_QUEUE.max_dispatches_per_second,
        "maxConcurrentDispatches": AUDIT_QUEUE.max_concurrent_dispatches}
    assert endpoint.taskQueueTrigger["retryConfig"] == {
        "maxAttempts": AUDIT_QUEUE.max_attempts, "maxRetrySeconds": None,
        "maxBackoffSeconds": AUDIT_QUEUE.max_backoff_seconds,
        "maxDoublings": AUDIT_QUEUE.max_doublings,
        "minBackoffSeconds": AUDIT_QUEUE.min_backoff_seconds}
    assert endpoint.timeoutSeconds == AUDIT_QUEUE.timeout_sec


def test_a_run_whose_lease_lapsed_never_plans_a_page_again() -> None:
    db = queued_day(traded_accounts(4))
    queue = Queue()
    run_audit(db, DAY, page=3, enqueue=queue)
    [name] = [n for n in queue.tasks if queue.tasks[n]["page"] == "0001-000000"]
    queue.deliver(db, name)
    # A run that took the day at the start and planned late writes nothing over it.
    assert _save_plan(db, DAY, 1, 0, [("", "u2"), ("u2", None)], "u3", True) == []
    assert pages_of(db)["0001-000000"]["status"] == "done"
