"""Settlement services on the in-memory database: idempotency, rejection, ledger."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest

from cogmora_backend.settlement import initialize_account, settle_close, settle_execution
from cogmora_core import TradingConfig
from cogmora_core.errors import RetryableError
from cogmora_core.money import parse_number
from tests.support.builders import execution_doc, position_doc, spot_execution_doc
from tests.support.ledger import ledger_total
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()


def database(balance: object = 10000, **documents: dict) -> MemoryDatabase:
    docs = {"users/u1": {"balance": balance}} if balance is not None else {"users/u1": {}}
    docs.update({path.replace("__", "/"): doc for path, doc in documents.items()})
    return MemoryDatabase(docs)


def balance(db: MemoryDatabase) -> D:
    value = parse_number(db.documents["users/u1"]["balance"])
    assert value is not None
    return value


def test_initialize_sets_starting_balance_once_and_never_overwrites() -> None:
    db = database(balance=None)
    assert initialize_account(db, "u1", CONFIG).kind == "initialized"
    assert db.documents["users/u1"]["balance"] == 10000
    db.documents["users/u1"]["balance"] = 42
    assert initialize_account(db, "u1", CONFIG).kind == "skipped"
    assert db.documents["users/u1"]["balance"] == 42


def test_execution_opens_position_history_and_debits_exactly() -> None:
    db = database(**{"users__u1__executedTriggers__e1": execution_doc()})

    outcome = settle_execution(db, "u1", "e1", CONFIG)

    assert outcome.kind == "filled"
    assert balance(db) == D("9899.4")
    execution = db.documents["users/u1/executedTriggers/e1"]
    assert (execution["status"], execution["positionId"]) == ("filled", "e1")
    position = db.documents["users/u1/openPositions/e1"]
    assert position["size"] == 0.01666667
    assert position["liquidationPrice"] == 54300
    assert position["details"] == {"status": "open"}
    assert db.documents["users/u1/tradeHistory/e1"]["status"] == "open"


def test_the_venue_is_copied_onto_the_position_and_its_history() -> None:
    db = database(**{
        "users__u1__executedTriggers__bp": execution_doc(
            venue="backpack", symbol="SOL_USDC_PERP", amount=500, leverage=10,
            targetPrice=140, executedPrice=140),
        "users__u1__executedTriggers__ku": execution_doc(),
    })

    assert settle_execution(db, "u1", "bp", CONFIG).kind == "filled"
    assert settle_execution(db, "u1", "ku", CONFIG).kind == "filled"

    position = db.documents["users/u1/openPositions/bp"]
    assert (position["venue"], position["symbol"]) == ("backpack", "SOL_USDC_PERP")
    assert db.documents["users/u1/tradeHistory/bp"]["venue"] == "backpack"
    assert db.documents["users/u1/openPositions/ku"]["venue"] == "kucoin"
    assert db.documents["users/u1/tradeHistory/ku"]["venue"] == "kucoin"
    # USDC-quoted markets settle 1:1 in the account's quote: 500 margin + 3 fee (0.06 %).
    assert balance(db) == D("10000") - D("503") - D("100.6")


def test_a_backpack_close_without_history_records_its_venue() -> None:
    position = {**closing(price=150), "symbol": "SOL_USDC_PERP", "venue": "backpack"}
    db = database(balance=0, **{"users__u1__openPositions__p1": position})

    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    history = db.documents["users/u1/tradeHistory/p1"]
    assert (history["venue"], history["symbol"], history["status"]) == (
        "backpack", "SOL_USDC_PERP", "closed")


def test_the_same_execution_settled_twice_debits_once() -> None:
    db = database(**{"users__u1__executedTriggers__e1": spot_execution_doc()})
    assert settle_execution(db, "u1", "e1", CONFIG).kind == "filled"
    assert settle_execution(db, "u1", "e1", CONFIG).kind == "skipped"
    assert balance(db) == D("8999")


def test_racing_settlements_of_one_execution_debit_once() -> None:
    db = database(**{"users__u1__executedTriggers__e1": spot_execution_doc()})
    outcomes: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(settle_execution(db, "u1", "e1", CONFIG).kind)
        )
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["filled"] + ["skipped"] * 19
    assert balance(db) == D("8999")


def test_rejection_records_reason_and_debits_nothing() -> None:
    db = database(
        balance=100, **{"users__u1__executedTriggers__e1": spot_execution_doc(amount=100)}
    )

    outcome = settle_execution(db, "u1", "e1", CONFIG)

    assert (outcome.kind, outcome.reason) == ("rejected", "insufficient_balance")
    execution = db.documents["users/u1/executedTriggers/e1"]
    assert (execution["status"], execution["error"]) == ("rejected", "insufficient_balance")
    assert balance(db) == D("100")
    assert "users/u1/openPositions/e1" not in db.documents


def test_account_without_balance_leaves_execution_pending_for_later() -> None:
    db = database(balance=None, **{"users__u1__executedTriggers__e1": execution_doc()})
    with pytest.raises(RetryableError):
        settle_execution(db, "u1", "e1", CONFIG)
    assert db.documents["users/u1/executedTriggers/e1"]["status"] == "pending"


def closing(price: object = 110, reason: str = "take_profit", **details: object) -> dict:
    return position_doc(
        details={
            "status": "closing",
            "closeRequest": {"reason": reason, "price": price, "source": "worker"},
            **details,
        }
    )


def test_priced_close_credits_completes_history_and_deletes_position() -> None:
    db = database(
        balance=9497,
        **{
            "users__u1__openPositions__p1": closing(price=110),
            "users__u1__tradeHistory__p1": {"positionId": "p1", "status": "open"},
        },
    )

    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    # gross 50 × 10 = 500, fee 50 × 110 × 0.0006 = 3.3, credit 996.7, pnl 493.7
    assert balance(db) == D("10493.7")
    assert "users/u1/openPositions/p1" not in db.documents
    history = db.documents["users/u1/tradeHistory/p1"]
    assert (history["status"], history["closeReason"]) == ("closed", "take_profit")
    assert (history["closePrice"], history["closeFee"], history["pnl"]) == (110, 3.3, 493.7)
    assert history["pnlPercent"] == 98.1511


def test_close_without_history_writes_the_whole_record() -> None:
    db = database(
        balance=0, **{"users__u1__openPositions__p1": closing(price=90.5, reason="liquidation")}
    )
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"
    history = db.documents["users/u1/tradeHistory/p1"]
    assert (history["entryPrice"], history["margin"], history["pnl"]) == (100, 500, -480.715)
    assert balance(db) == D("22.285")


def test_close_twice_credits_once_and_unpriced_close_waits_for_the_worker() -> None:
    db = database(
        balance=0,
        **{
            "users__u1__openPositions__p1": closing(price=110),
            "users__u1__openPositions__p2": position_doc(details={"status": "closing"}),
        },
    )
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"
    assert settle_close(db, "u1", "p1", CONFIG).kind == "skipped"
    assert settle_close(db, "u1", "p2", CONFIG).kind == "skipped"
    assert balance(db) == D("996.7")
    assert db.documents["users/u1/openPositions/p2"]["details"] == {"status": "closing"}


def test_unreadable_position_keeps_its_mark_with_a_settlement_error_once() -> None:
    db = database(balance=0, **{"users__u1__openPositions__p1": closing(price=110) | {"size": "x"}})

    assert settle_close(db, "u1", "p1", CONFIG).reason == "invalid_size"
    commits = db.commits
    assert settle_close(db, "u1", "p1", CONFIG).reason == "invalid_size"

    assert db.commits == commits  # the second run writes nothing, so no trigger loop
    assert db.documents["users/u1/openPositions/p1"]["details"]["settlementError"] == "invalid_size"
    assert balance(db) == D("0")


def test_ledger_identity_holds_after_mixed_opens_and_closes() -> None:
    db = database()
    executions = {
        "e1": execution_doc(),
        "e2": spot_execution_doc(amount=250.5, executedPrice=43210.12),
        "e3": execution_doc(action="short", leverage=25, amount=333.33, executedPrice=61234.5),
        "e4": execution_doc(
            symbol="SOLUSDTM", amount=77.77777777, leverage=7, executedPrice=137.421
        ),
    }
    for eid, doc in executions.items():
        db.documents[f"users/u1/executedTriggers/{eid}"] = doc
        assert settle_execution(db, "u1", eid, CONFIG).kind == "filled"
    for pid, price in (("e1", 61111.11), ("e3", 59999.99)):
        db.documents[f"users/u1/openPositions/{pid}"]["details"] = {
            "status": "closing",
            "closeRequest": {"reason": "manual", "price": price},
        }
        assert settle_close(db, "u1", pid, CONFIG).kind == "settled"

    positions = [d for path, d in db.documents.items() if "/openPositions/" in path]
    history = [d for path, d in db.documents.items() if "/tradeHistory/" in path]
    assert ledger_total(db.documents["users/u1"]["balance"], positions, history) == D("10000")


def test_an_execution_past_max_open_positions_is_rejected_and_the_count_is_kept() -> None:
    from cogmora_core.config import LimitsConfig

    limits = LimitsConfig(max_open_positions=2)
    db = database(**{"users__u1__openPositions__old": position_doc(),  # counted on first use
                     "users__u1__executedTriggers__e1": execution_doc(),
                     "users__u1__executedTriggers__e2": execution_doc()})

    assert settle_execution(db, "u1", "e1", CONFIG, limits).kind == "filled"
    assert db.documents["users/u1"]["openPositionCount"] == 2
    outcome = settle_execution(db, "u1", "e2", CONFIG, limits)

    assert (outcome.kind, outcome.reason) == ("rejected", "too_many_positions")
    assert db.documents["users/u1/executedTriggers/e2"]["error"] == "too_many_positions"
    assert balance(db) == D("9899.4")  # only e1's 100 + 0.6 debited
    # A close frees a slot.
    db.documents["users/u1/openPositions/e1"]["details"] = closing()["details"]
    assert settle_close(db, "u1", "e1", CONFIG).kind == "settled"
    assert db.documents["users/u1"]["openPositionCount"] == 1
