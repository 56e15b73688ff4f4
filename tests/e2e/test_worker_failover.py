"""End to end: a worker killed mid-run and two workers at once lose and double nothing.

These scenarios run worker processes of their own (none shared with other modules),
so that only the workers named here can mark.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

from tests.support.builders import execution_doc, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    execution_of,
    funded_user,
    keep_publishing,
    open_through_functions,
)

# A long 10x trigger of 100 USDT at a fill of 90.1: debit 100 + 1000 × 0.0006 = 100.6.
TRIGGER_DEBIT = D("100.6")
# A long 10x position of 500 USDT at 100 (liquidation 90.5) closed at 89.9: credit 0.
POSITION_DEBIT = D("503")


def arrange(db: Any, symbol: str, triggers: int, positions: int) -> tuple[str, str, list[str]]:
    """Return (trigger owner, position owner, watched paths) of a fresh book on `symbol`."""
    buyer = funded_user(db, "buyer")
    holder = funded_user(db, "holder")
    paths = []
    for n in range(triggers):
        path = f"users/{buyer}/tradeTriggers/t{n}"
        db.document(path).set(trigger_doc(symbol=symbol, targetPrice=100 - n / 10, leverage=10))
        paths.append(path)
    for n in range(positions):
        open_through_functions(db, holder, f"p{n}", execution_doc(
            symbol=symbol, amount=500, leverage=10, executedPrice=100, targetPrice=100))
        paths.append(f"users/{holder}/openPositions/p{n}")
    return buyer, holder, paths


def all_executed(db: Any, buyer: str, holder: str, triggers: int, positions: int) -> bool:
    return all(execution_of(db, buyer, f"t{n}") for n in range(triggers)) and all(
        closed_history(db, holder, f"p{n}") for n in range(positions))


def assert_exactly_once(db: Any, buyer: str, holder: str, triggers: int,
                        positions: int) -> None:
    executions = list(db.collection(f"users/{buyer}/executedTriggers").stream())
    assert len(executions) == triggers
    assert {e.get("status") for e in executions} == {"filled"}
    assert {e.get("executedPrice") for e in executions} == {90.1}
    assert len(list(db.collection(f"users/{buyer}/openPositions").stream())) == triggers
    assert list(db.collection(f"users/{buyer}/tradeTriggers").stream()) == []
    assert list(db.collection(f"users/{holder}/openPositions").stream()) == []
    closed = [h.to_dict() for h in db.collection(f"users/{holder}/tradeHistory").stream()]
    assert [h["closeReason"] for h in closed] == ["liquidation"] * positions
    assert balance_of(db, buyer) == D("10000") - triggers * TRIGGER_DEBIT
    assert balance_of(db, holder) == D("10000") - positions * POSITION_DEBIT


def test_worker_killed_and_restarted_mid_run_loses_and_doubles_nothing(
    db: Any, exchange: Exchange
) -> None:
    first = WorkerProcess(exchange, "worker-killed")
    buyer, holder, paths = arrange(db, "KILUSDTM", triggers=8, positions=4)
    wait_for(lambda: all(first.armed(p) for p in paths))

    exchange.publish("KILUSDTM", "90", "89.9", "90.1")  # cross everything ...
    first.kill()  # ... and die while marking
    for n in range(8, 10):  # the app keeps writing while no worker runs
        db.document(f"users/{buyer}/tradeTriggers/t{n}").set(
            trigger_doc(symbol="KILUSDTM", targetPrice=99, leverage=10))
    time.sleep(0.5)

    second = WorkerProcess(exchange, "worker-restarted")
    try:
        # The killed worker's transactions keep their locks in the emulator until
        # they time out (30 s): a mark of a document it was marking waits for that.
        keep_publishing(lambda: exchange.publish("KILUSDTM", "90", "89.9", "90.1"),
                        lambda: all_executed(db, buyer, holder, 10, 4), timeout=75)
        time.sleep(1)  # let any late duplicate show itself
        assert_exactly_once(db, buyer, holder, triggers=10, positions=4)
    finally:
        assert second.stop() == 0


def test_two_workers_at_once_mark_each_level_once(db: Any, exchange: Exchange) -> None:
    workers = [WorkerProcess(exchange, "worker-a"), WorkerProcess(exchange, "worker-b")]
    try:
        buyer, holder, paths = arrange(db, "TWOUSDTM", triggers=10, positions=5)
        wait_for(lambda: all(w.armed(p) for w in workers for p in paths))

        keep_publishing(lambda: exchange.publish("TWOUSDTM", "90", "89.9", "90.1"),
                        lambda: all_executed(db, buyer, holder, 10, 5), timeout=30)
        time.sleep(1)

        assert_exactly_once(db, buyer, holder, triggers=10, positions=5)
        marks = sum(w.metric("cogmora_marks_total", reason=reason) for w in workers
                    for reason in ("trigger", "liquidation"))
        assert marks == 15
    finally:
        for worker in workers:
            assert worker.stop() == 0
    assert document(db, f"users/{holder}/openPositions/p0") is None


def test_two_shards_share_the_load_without_overlap_or_gaps(db: Any, exchange: Exchange) -> None:
    from bench.scaleout import run

    result = run(db, exchange, triggers=60, symbols=12)

    assert result["overlap"] == 0 and result["gaps"] == 0
    assert sum(result["armed"]) == 60 and min(result["armed"]) > 0
    assert result["executions"] == result["filled"] == 60
    assert result["marks"] == [result["sources"]["worker-shard-0"],
                               result["sources"]["worker-shard-1"]]
    assert sum(result["marks"]) == 60
