"""Hostile input to the running system: malformed documents and frames.

Documents that slipped past the rules (written here with the admin client,
as an admin tool or an old app version could) and frames no exchange should
send: each ends with its documented status and reason, nothing else changes
(balances exact), and the worker keeps processing ticks throughout.
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal as D
from typing import Any

import pytest
from google.cloud import firestore

from tests.support.builders import DROP, execution_doc, position_doc, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import execution_of, funded_user, keep_publishing


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-hostile")
    yield process
    assert process.stop() == 0


BAD_EXECUTIONS = {
    "unknown_symbol_type": {"symbolType": "options"},
    "invalid_symbol": {"symbol": "BTC/USDT"},
    "invalid_venue": {"venue": "bybit"},
    "invalid_action": {"action": "hodl"},
    "invalid_amount": {"amount": "100"},
    "invalid_amount-zero": {"amount": 0},
    "invalid_amount-nan": {"amount": math.nan},
    "invalid_amount-negative": {"amount": -1},
    "invalid_amount-huge": {"amount": 1e13},
    "invalid_amount-decimals": {"amount": 0.123456789},
    "invalid_leverage": {"leverage": 1000},
    "invalid_leverage-text": {"leverage": "10"},
    "invalid_condition": {"condition": "maybe"},
    "invalid_target_price": {"targetPrice": -5},
    "invalid_stop_loss": {"stopLoss": "low"},
    "invalid_take_profit": {"takeProfit": math.inf},
    "invalid_price": {"executedPrice": 0},
    "invalid_price-missing": {"executedPrice": DROP},
    "invalid_price-text": {"executedPrice": "60000"},
    "insufficient_balance": {"amount": 20000, "leverage": 1},
}


def test_malformed_executions_are_rejected_with_their_reason_and_debit_nothing(
    db: Any,
) -> None:
    uid = funded_user(db, "bad-exec")
    for name, change in BAD_EXECUTIONS.items():
        db.document(f"users/{uid}/executedTriggers/{name}").set(
            {**execution_doc(**change), "executedAt": firestore.SERVER_TIMESTAMP})

    for name in BAD_EXECUTIONS:
        execution = wait_for(lambda name=name: execution_of(db, uid, name))
        assert (execution["status"], execution["error"]) == ("rejected", name.split("-")[0])
        assert execution["errorDetail"]
    assert balance_of(db, uid) == D("10000")
    assert list(db.collection(f"users/{uid}/openPositions").stream()) == []
    assert list(db.collection(f"users/{uid}/tradeHistory").stream()) == []


def test_an_account_with_a_corrupt_balance_rejects_and_keeps_it(db: Any) -> None:
    uid = funded_user(db, "bad-balance")
    db.document(f"users/{uid}").update({"balance": "lots"})
    db.document(f"users/{uid}/executedTriggers/e").set(
        {**execution_doc(), "executedAt": firestore.SERVER_TIMESTAMP})

    execution = wait_for(lambda: execution_of(db, uid, "e"))

    assert (execution["status"], execution["error"]) == ("rejected", "invalid_balance")
    assert document(db, f"users/{uid}")["balance"] == "lots"


BAD_TRIGGERS = {
    "invalid_amount": {"amount": -1},
    "invalid_amount-nan": {"amount": math.nan},
    "invalid_leverage": {"leverage": 0},
    "invalid_leverage-spot": {"symbol": "HOS-USDT", "symbolType": "spot", "action": "buy",
                              "leverage": 5},
    "unknown_symbol_type": {"symbolType": "x"},
    "invalid_symbol": {"symbol": 7},
    "invalid_condition": {"condition": "up"},
    "invalid_target_price": {"targetPrice": "high"},
    "invalid_stop_loss": {"stopLoss": 61000},
    "invalid_take_profit": {"takeProfit": 59000},
    "invalid_action": {"action": "sell"},
    "invalid_venue": {"venue": "ftx"},
    "invalid_target_price-market": {"condition": "market"},
}


def test_malformed_triggers_are_rejected_by_the_worker_and_never_execute(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db, "bad-trigger")
    for name, change in BAD_TRIGGERS.items():
        db.document(f"users/{uid}/tradeTriggers/{name}").set(
            trigger_doc(**{"symbol": "HOSTUSDTM", **change}))

    for name in BAD_TRIGGERS:
        trigger = wait_for(lambda name=name: (d := document(
            db, f"users/{uid}/tradeTriggers/{name}")) and d["details"]["status"] == "rejected"
            and d)
        assert trigger["details"]["error"] == name.split("-")[0]
    for _ in range(5):
        exchange.publish("HOSTUSDTM", "100", "99.9", "100.1")
    time.sleep(0.5)
    assert list(db.collection(f"users/{uid}/executedTriggers").stream()) == []
    assert balance_of(db, uid) == D("10000")
    assert worker.metric("cogmora_invalid_documents_total", collection="tradeTriggers",
                         reason="invalid_amount") >= 2


BAD_POSITIONS = {
    "invalid_size": {"size": "big"},
    "invalid_position_type": {"positionType": "diagonal"},
    "invalid_price": {"liquidationPrice": -1},
    "invalid_stop_loss": {"details": {"status": "open", "stopLoss": "x"}},
    "invalid_symbol": {"symbol": DROP},
}


def test_positions_the_worker_cannot_evaluate_are_counted_and_skipped(
    db: Any, worker: WorkerProcess
) -> None:
    uid = funded_user(db, "bad-position")
    before = worker.metric("cogmora_invalid_documents_total", collection="openPositions",
                           reason="invalid_size")
    for name, change in BAD_POSITIONS.items():
        db.document(f"users/{uid}/openPositions/{name}").set(
            position_doc(**{"symbol": "HOSTUSDTM", **change}))

    wait_for(lambda: worker.metric("cogmora_invalid_documents_total",
                                   collection="openPositions", reason="invalid_size") > before)
    for name in BAD_POSITIONS:
        assert not worker.armed(f"users/{uid}/openPositions/{name}")
        assert document(db, f"users/{uid}/openPositions/{name}") is not None
    assert balance_of(db, uid) == D("10000")


def test_a_priced_close_of_an_unreadable_position_keeps_its_mark_with_a_reason(
    db: Any,
) -> None:
    uid = funded_user(db, "bad-close")
    # Unreadable from the start (no worker arms it); the mark arrives as an update.
    db.document(f"users/{uid}/openPositions/p").set(position_doc(size="x",
                                                                 symbol="UNWATCHEDUSDTM"))
    db.document(f"users/{uid}/openPositions/p").update({
        "details.status": "closing", "details.closeRequest": {
            "reason": "manual", "price": 101, "at": firestore.SERVER_TIMESTAMP}})

    position = wait_for(lambda: (d := document(db, f"users/{uid}/openPositions/p"))
                        and d["details"].get("settlementError") and d)

    assert position["details"]["settlementError"] == "invalid_size"
    assert position["details"]["status"] == "closing"
    assert balance_of(db, uid) == D("10000")


FRAMES = {
    "invalid_json": "{not json",
    "invalid_json-empty": "",
    "not_an_object": "[1, 2, 3]",
    "unknown_type": json.dumps({"type": "surprise"}),
    "unknown_topic": json.dumps({"type": "message", "topic": "/contractMarket/level2:HOSTUSDTM",
                                 "data": {}}),
    "missing_fields": json.dumps({"type": "message", "topic": "/contractMarket/ticker:HOSTUSDTM"}),
    "missing_fields-price": json.dumps({"type": "message",
                                        "topic": "/contractMarket/ticker:HOSTUSDTM",
                                        "data": {"bestBidPrice": "1"}}),
    "bad_price": json.dumps({"type": "message", "topic": "/contractMarket/ticker:HOSTUSDTM",
                             "data": {"price": "abc"}}),
    "bad_price-negative": json.dumps({"type": "message",
                                      "topic": "/contractMarket/ticker:HOSTUSDTM",
                                      "data": {"price": "-5"}}),
    "bad_price-nan": json.dumps({"type": "message", "topic": "/contractMarket/ticker:HOSTUSDTM",
                                 "data": {"price": "NaN"}}),
    "bad_price-number": json.dumps({"type": "message",
                                    "topic": "/contractMarket/ticker:HOSTUSDTM",
                                    "data": {"price": 50}}),
    "bad_price-huge": json.dumps({"type": "message", "topic": "/contractMarket/ticker:HOSTUSDTM",
                                  "data": {"price": "1e999"}}),
    "bad_price-zero-ask": json.dumps({"type": "message",
                                      "topic": "/contractMarket/ticker:HOSTUSDTM",
                                      "data": {"price": "50", "bestAskPrice": "0"}}),
    "invalid_json-junk": "\x00" * 2048 + "garbage",
}


def test_malformed_frames_are_dropped_and_counted_and_ticks_go_on(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db, "frames")
    path = f"users/{uid}/tradeTriggers/t"
    db.document(path).set(trigger_doc(symbol="HOSTUSDTM", targetPrice=60, leverage=2,
                                      amount=100))
    wait_for(lambda: worker.armed(path))
    wait_for(lambda: "HOSTUSDTM" in exchange.futures.subscribed())
    feed = "kucoin-futures-0"
    before = {reason: worker.metric("cogmora_frames_rejected_total", feed=feed, reason=reason)
              for reason in {name.split("-")[0] for name in FRAMES}}

    for text in FRAMES.values():
        assert exchange.send_raw("futures", text) >= 1

    expected = {reason: sum(1 for name in FRAMES if name.split("-")[0] == reason)
                for reason in before}
    wait_for(lambda: all(worker.metric("cogmora_frames_rejected_total", feed=feed,
                                       reason=reason) - before[reason] == count
                         for reason, count in expected.items()))
    assert worker.armed(path)  # no junk price fired it
    execution = keep_publishing(lambda: exchange.publish("HOSTUSDTM", "59.5", "59.4", "59.6"),
                                lambda: execution_of(db, uid, "t"))
    assert (execution["status"], execution["executedPrice"]) == ("filled", 59.6)
    assert balance_of(db, uid) == D("10000") - D("100") - D("0.12")


def test_there_are_enough_hostile_inputs() -> None:
    total = (len(BAD_EXECUTIONS) + 1 + len(BAD_TRIGGERS) + len(BAD_POSITIONS) + 1
             + len(FRAMES))
    assert total >= 40


def test_a_trigger_on_a_symbol_the_venue_does_not_list_is_rejected_and_never_subscribed(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    exchange.futures.unlisted.add("FAKEXUSDTM")
    uid = funded_user(db, "unlisted")
    db.document(f"users/{uid}/tradeTriggers/fake").set(trigger_doc(symbol="FAKEXUSDTM"))
    db.document(f"users/{uid}/tradeTriggers/real").set(trigger_doc(symbol="LISTDUSDTM",
                                                                   targetPrice=1))

    fake = wait_for(lambda: (d := document(db, f"users/{uid}/tradeTriggers/fake"))
                    and d["details"]["status"] == "rejected" and d)
    assert fake["details"]["error"] == "unlisted_symbol"
    assert fake["details"]["errorDetail"] == "kucoin does not list futures FAKEXUSDTM"
    wait_for(lambda: "LISTDUSDTM" in exchange.futures.subscribed())
    assert "FAKEXUSDTM" not in exchange.futures.subscribed()
    assert balance_of(db, uid) == D("10000")
