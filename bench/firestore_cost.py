"""Firestore documents read per day: the seed's 30 s polling vs. listeners + checks.

For each book size it arms N resting triggers on the emulators, starts the
worker (local KuCoin), and measures from the worker's own read counter
(`cogmora_documents_read_total{source}`): the reads of starting up, the reads
per changed document over a window of changes at a realistic rate, and the
reads of one count check. It also runs the seed's poll (the full query of
every resting order) once and counts what it returns. A day is then modelled:

    seed   = 2,880 polls/day x reads per poll
    worker = startup + changes/day x reads per change
             + checks/day (every RESYNC_SECONDS) x reads per check
             + full re-reads/day (every FULL_RESYNC_SECONDS) x N

The change rate assumes each resting order is created, edited, cancelled or
executed once every 4 hours on average. Run: scripts/bench.sh firestore_cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.results import record, tee
from cogmora_backend import queries
from tests.support.builders import trigger_doc
from tests.support.emulator import clear_firestore, firestore_client, new_uid, wait_for
from tests.support.processes import Exchange, WorkerProcess

CHANGES_PER_ORDER_PER_HOUR = 0.25
POLL_SECONDS = 30
CHECK_SECONDS = 300
FULL_SECONDS = 21600


def seed_book(db: Any, uid: str, count: int) -> None:
    batch, pending = db.batch(), 0
    for n in range(count):
        batch.set(db.document(f"users/{uid}/tradeTriggers/t{n}"),
                  trigger_doc(symbol=f"C{n % 50:02d}USDTM", targetPrice=1000 + n % 97))
        pending += 1
        if pending == 450:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()


def reads(worker: WorkerProcess, source: str) -> float:
    return worker.metric("cogmora_documents_read_total", source=source)


def measure(db: Any, exchange: Exchange, count: int, window_changes: int,
            per_change_before: float | None = None) -> dict[str, float]:
    """Measure one book size; with `window_changes` 0, reuse `per_change_before`.

    A changed document costs the listener one read whatever the book size, and
    the emulator does not survive bursts of edits under listeners on 100k
    documents, so larger books reuse the figure measured on the smaller one.
    """
    uid = new_uid("cost")
    seed_book(db, uid, count)
    poll = sum(1 for _ in queries.ACTIVE_TRIGGERS.build(db, ("active",)).stream())
    worker = WorkerProcess(exchange, f"worker-cost-{count}", RESYNC_SECONDS="15",
                           FULL_RESYNC_SECONDS="999999")
    try:
        wait_for(lambda: reads(worker, "listener") >= count, timeout=300, every=0.5)
        startup = reads(worker, "resync") + reads(worker, "listener")
        before = reads(worker, "listener")
        for n in range(window_changes):  # edits, paced (the emulator re-evaluates each one)
            db.document(f"users/{uid}/tradeTriggers/t{n}").update({"amount": 101})
            time.sleep(0.05)
        if window_changes:
            wait_for(lambda: reads(worker, "listener") - before >= window_changes, timeout=120)
            per_change = (reads(worker, "listener") - before) / window_changes
        else:
            assert per_change_before is not None
            per_change = per_change_before
        checks_before = reads(worker, "count")
        time.sleep(35)  # two count checks at RESYNC_SECONDS=15
        checks = reads(worker, "count") - checks_before
        per_check = checks / 2 if checks else float("nan")
        mismatches = worker.metric("cogmora_resyncs_total", cause="count_mismatch")
    finally:
        worker.stop()
    changes_per_day = count * CHANGES_PER_ORDER_PER_HOUR * 24
    seed = 86400 / POLL_SECONDS * poll
    ours = (startup + changes_per_day * per_change + 86400 / CHECK_SECONDS * per_check
            + 86400 / FULL_SECONDS * count)
    return {"orders": count, "poll": poll, "startup": startup, "per_change": per_change,
            "per_change_measured": bool(window_changes),
            "per_check": per_check, "mismatches": mismatches, "seed_day": seed,
            "worker_day": ours}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    db = firestore_client()
    exchange = Exchange()
    rows: list[dict[str, Any]] = []
    try:
        for n, size in enumerate(int(s) for s in args.sizes.split(",")):
            clear_firestore()  # each size on a database of its own
            rows.append(measure(db, exchange, size, window_changes=50 if n == 0 else 0,
                                per_change_before=rows[0]["per_change"] if rows else None))
    finally:
        exchange.close()
    with tee() as out:
        table(rows)
    record("firestore_cost", {"rows": rows}, out.getvalue())
    return 0


def table(rows: list[dict[str, float]]) -> None:
    print("Firestore documents read per day by the worker (modelled from measured reads)")
    print(f"{'orders':>8}{'seed/day':>14}{'worker/day':>13}{'ratio':>9}"
          f"{'startup':>10}{'per change':>12}{'per check':>11}")
    for r in rows:
        print(f"{r['orders']:>8,}{r['seed_day']:>14,.0f}{r['worker_day']:>13,.0f}"
              f"{r['worker_day'] / r['seed_day']:>8.2%}{r['startup']:>10,.0f}"
              f"{r['per_change']:>12.2f}{'' if r['per_change_measured'] else '*':<1}"
              f"{r['per_check']:>10.1f}")
    if not all(r["per_change_measured"] for r in rows):
        print("* reads per change measured on the first size (one read per changed document)")


if __name__ == "__main__":
    sys.exit(main())
