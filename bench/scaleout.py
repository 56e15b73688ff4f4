"""Scale-out: two worker instances share a load by symbol shard, no overlap, no gaps.

Starts two workers with SHARD_COUNT=2 (SHARD_INDEX 0 and 1) against the local
KuCoin, arms N triggers over K futures symbols, then crosses every level. It
prints what each instance armed (overlap and gaps), how the marks split, and
checks every trigger executed exactly once. Run: scripts/bench.sh scaleout.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from typing import Any

from bench.results import record, tee
from tests.support.builders import trigger_doc
from tests.support.emulator import firestore_client, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import execution_of, funded_user


def run(db: Any, exchange: Exchange, triggers: int, symbols: int) -> dict[str, Any]:
    """Return the measurement of one shared load (raises if anything is lost or doubled)."""
    workers = [WorkerProcess(exchange, f"worker-shard-{i}", SHARD_COUNT="2",
                             SHARD_INDEX=str(i)) for i in range(2)]
    try:
        uid = funded_user(db, "shards")
        db.document(f"users/{uid}").update({"balance": 10_000_000})
        names = [f"SH{n:03d}USDTM" for n in range(symbols)]
        paths = []
        batch = db.batch()
        for n in range(triggers):
            path = f"users/{uid}/tradeTriggers/t{n}"
            batch.set(db.document(path), trigger_doc(symbol=names[n % symbols], amount=10,
                                                     targetPrice=60000, leverage=2))
            paths.append(path)
        batch.commit()
        armed_by: dict[str, list[int]] = {}

        def all_armed() -> bool:
            for path in paths:
                if path not in armed_by or not armed_by[path]:
                    armed_by[path] = [i for i, w in enumerate(workers) if w.armed(path)]
            return all(armed_by[p] for p in paths)

        wait_for(all_armed, timeout=60, every=0.2)
        armed_by = {p: [i for i, w in enumerate(workers) if w.armed(p)] for p in paths}
        started = time.perf_counter()
        for name in names:
            wait_for(partial(_subscribed, exchange, name), timeout=30)
        deadline = time.monotonic() + 120
        while not all(execution_of(db, uid, f"t{n}") for n in range(triggers)):
            for name in names:
                exchange.publish(name, "59990", "59989", "59991")
            if time.monotonic() > deadline:
                raise AssertionError("not every trigger executed")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        executions = [s.to_dict() for s in db.collection(f"users/{uid}/executedTriggers").stream()]
        marks = [w.metric("cogmora_marks_total", reason="trigger") for w in workers]
        return {
            "armed": [sum(1 for owners in armed_by.values() if i in owners) for i in range(2)],
            "overlap": sum(1 for owners in armed_by.values() if len(owners) > 1),
            "gaps": sum(1 for owners in armed_by.values() if not owners),
            "executions": len(executions),
            "filled": sum(1 for e in executions if e["status"] == "filled"),
            "marks": marks,
            "sources": {source: sum(1 for e in executions if e["source"] == source)
                        for source in ("worker-shard-0", "worker-shard-1")},
            "seconds": elapsed,
        }
    finally:
        for worker in workers:
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=400)
    parser.add_argument("--symbols", type=int, default=40)
    args = parser.parse_args()
    exchange = Exchange()
    try:
        result = run(firestore_client(), exchange, args.triggers, args.symbols)
    finally:
        exchange.close()
    with tee() as out:
        table(args, result)
    record("scaleout", result, out.getvalue())
    return 0


def table(args: argparse.Namespace, result: dict[str, Any]) -> None:
    print(f"two shards, {args.triggers} triggers over {args.symbols} symbols")
    print(f"  armed per instance {result['armed']}  overlap {result['overlap']}  "
          f"gaps {result['gaps']}")
    print(f"  marks per instance {result['marks']}  executions {result['executions']} "
          f"(filled {result['filled']})  by source {result['sources']}")
    print(f"  all crossed levels executed in {result['seconds']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())


def _subscribed(exchange: Exchange, symbol: str) -> bool:
    return symbol in exchange.futures.subscribed()
