"""Measure the worker on the emulators: arming, tick → mark committed, tick → settled.

Starts the local KuCoin and `python -m worker` (as the tests do), then:
1. arming: writes N triggers one by one and times each until the worker's
   `/debug/armed` shows it;
2. execution: arms N triggers at distinct levels on one symbol, then
   publishes ticks that each cross exactly one level, one at a time, and
   times from the publish until a Firestore listener sees the execution
   (mark committed) and sees it `filled` (settled by openPositionHandler);
3. the floor: plain writes timed until the same kind of listener sees them
   (no worker, no function): what every mark's time includes.
Run inside the emulators: scripts/bench.sh worker_latency [--rounds N].
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from decimal import Decimal
from functools import partial
from typing import Any

from bench.results import record, tee
from bench.settlement_latency import percentile
from cogmora_backend.firestore.watch import ChangesWatch
from tests.support.builders import trigger_doc
from tests.support.emulator import firestore_client, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import funded_user

SYMBOL = "BNCHUSDTM"


class Seen:
    """Times at which a listener first saw each execution, and saw it filled."""

    def __init__(self) -> None:
        self.marked: dict[str, float] = {}
        self.filled: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, snapshots: Any, changes: Any, read_time: Any) -> None:
        now = time.perf_counter()
        with self.lock:
            for change in changes:
                doc = change.document
                if change.type.name == "REMOVED":
                    continue
                self.marked.setdefault(doc.id, now)
                if (doc.to_dict() or {}).get("status") == "filled":
                    self.filled.setdefault(doc.id, now)


def measure(rounds: int) -> dict[str, list[float]]:
    db = firestore_client()
    exchange = Exchange()
    worker = WorkerProcess(exchange, "worker-bench")
    try:
        uid = funded_user(db, "bench")
        db.document(f"users/{uid}").update({"balance": 10_000_000})
        arming: list[float] = []
        for n in range(rounds):
            path = f"users/{uid}/tradeTriggers/t{n}"
            started = time.perf_counter()
            db.document(path).set(trigger_doc(symbol=SYMBOL, targetPrice=1000 - n,
                                              leverage=10, amount=10))
            wait_for(partial(worker.armed, path), timeout=10, every=0.005)
            arming.append(time.perf_counter() - started)
        seen = Seen()
        watch = ChangesWatch.of(db.collection(f"users/{uid}/executedTriggers"), seen)
        to_mark: list[float] = []
        to_settle: list[float] = []
        for n in range(rounds):
            price = Decimal(1000 - n) - Decimal("0.5")  # crosses t{n} only
            started = time.perf_counter()
            exchange.publish(SYMBOL, str(price), str(price - 1), str(price + 1))
            wait_for(partial(seen.filled.__contains__, f"t{n}"), timeout=20, every=0.002)
            to_mark.append(seen.marked[f"t{n}"] - started)
            to_settle.append(seen.filled[f"t{n}"] - started)
        watch.unsubscribe()
        floor = listener_floor(db, uid, rounds)
        internal = internal_quantiles(worker)
        return {"trigger written → armed": arming, "tick → mark committed": to_mark,
                "tick → settled (filled)": to_settle,
                "document written → listener (floor)": floor, "internal": internal}
    finally:
        worker.stop()
        exchange.close()


def listener_floor(db: Any, uid: str, rounds: int) -> list[float]:
    """Time a plain write until a listener sees it: what any mark's time includes.

    The same kind of listener as above on a collection no function watches, one
    document at a time: the emulator's own write and delivery, with no worker.
    """
    seen = Seen()
    watch = ChangesWatch.of(db.collection(f"users/{uid}/latencyFloor"), seen)
    times: list[float] = []
    for n in range(rounds):
        started = time.perf_counter()
        db.document(f"users/{uid}/latencyFloor/f{n}").set({"n": n})
        wait_for(partial(seen.marked.__contains__, f"f{n}"), timeout=20, every=0.002)
        times.append(seen.marked[f"f{n}"] - started)
    watch.unsubscribe()
    return times


def internal_quantiles(worker: WorkerProcess) -> list[float]:
    """Return the worker's own tick → mark p50 and p99 (bucket upper bounds, seconds)."""
    import httpx

    text = httpx.get(f"{worker.url}/metrics", timeout=5).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("cogmora_tick_to_mark_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float(bound), float(line.split()[-1])))
    total = buckets[-1][1]
    return [next(b for b, n in buckets if n >= q * total) for q in (0.5, 0.99)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tee() as out:
        results = measure(args.rounds)
        internal = results.pop("internal")
        table(args.rounds, results, internal)
    ms = {name: [s * 1000 for s in samples] for name, samples in results.items()}
    arm, mark, settle, floor = ms.values()
    record("worker_latency", {
        "rounds": args.rounds, "armed_p50": percentile(arm, .5), "armed_p99": percentile(arm, .99),
        "armed_max": max(arm), "mark_p50": percentile(mark, .5),
        "mark_p99": percentile(mark, .99), "settled_p50": percentile(settle, .5),
        "settled_p99": percentile(settle, .99), "internal_mark_p50_le": internal[0] * 1000,
        "internal_mark_p99_le": internal[1] * 1000, "floor_p50": percentile(floor, .5),
        "floor_p99": percentile(floor, .99)}, out.getvalue())
    return 0


def table(rounds: int, results: dict[str, list[float]], internal: list[float]) -> None:
    args = argparse.Namespace(rounds=rounds)
    print(f"worker latency on the emulators, {args.rounds} rounds each (ms)")
    print(f"{'':<28}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'mean':>9}")
    for name, samples in results.items():
        ms = [s * 1000 for s in samples]
        print(f"{name:<28}{percentile(ms, .5):>9.1f}{percentile(ms, .95):>9.1f}"
              f"{percentile(ms, .99):>9.1f}{max(ms):>9.1f}{statistics.fmean(ms):>9.1f}")
    print(f"the worker's own tick → mark histogram: p50 ≤ {internal[0] * 1000:.0f} ms, "
          f"p99 ≤ {internal[1] * 1000:.0f} ms (bucket bounds)")


if __name__ == "__main__":
    sys.exit(main())
