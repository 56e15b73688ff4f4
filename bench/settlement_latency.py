"""Measure tick-free settlement latency on the emulators: write → settled.

Run it inside the emulators (scripts/bench.sh does). For each of N rounds it
writes a pending execution and waits until openPositionHandler has filled it,
then writes a priced close mark and waits until closePositionHandler has
deleted the position; it prints p50/p95/max of both, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from google.cloud import firestore

from bench.results import record, tee
from tests.support.builders import execution_doc
from tests.support.emulator import firestore_client, new_uid, wait_for


def percentile(samples: list[float], fraction: float) -> float:
    """Return the sample at `fraction` of the sorted list (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def poll(check: Any) -> None:
    wait_for(check, timeout=30, every=0.005)


def measure(rounds: int) -> tuple[list[float], list[float]]:
    """Return (open latencies, close latencies) in milliseconds."""
    db = firestore_client()
    uid = new_uid("bench")
    db.document(f"users/{uid}").set({"balance": 1_000_000})
    opens: list[float] = []
    closes: list[float] = []
    for index in range(rounds):
        eid = f"e{index}"
        execution = db.document(f"users/{uid}/executedTriggers/{eid}")
        position = db.document(f"users/{uid}/openPositions/{eid}")
        started = time.perf_counter()
        execution.set({**execution_doc(), "executedAt": firestore.SERVER_TIMESTAMP})
        poll(lambda execution=execution: execution.get().get("status") == "filled")
        opens.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        position.update({
            "details.status": "closing",
            "details.closeRequest": {"reason": "manual", "price": 60100,
                                     "at": firestore.SERVER_TIMESTAMP, "source": "bench"},
        })
        poll(lambda position=position: not position.get().exists)
        closes.append((time.perf_counter() - started) * 1000)
    return opens, closes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tee() as out:
        opens, closes = measure(args.rounds)
        report(args.rounds, opens, closes)
    record("settlement_latency", {
        "rounds": args.rounds,
        "open_p50": percentile(opens, 0.5), "open_p95": percentile(opens, 0.95),
        "close_p50": percentile(closes, 0.5), "close_p95": percentile(closes, 0.95)},
        out.getvalue())
    return 0


def report(rounds: int, opens: list[float], closes: list[float]) -> None:
    args = argparse.Namespace(rounds=rounds)
    print(f"settlement latency on the emulators, {args.rounds} rounds (ms)")
    print(f"{'':<28}{'p50':>10}{'p95':>10}{'max':>10}{'mean':>10}")
    for name, samples in (("execution → filled", opens), ("priced close → settled", closes)):
        print(f"{name:<28}{percentile(samples, 0.5):>10.1f}{percentile(samples, 0.95):>10.1f}"
              f"{max(samples):>10.1f}{statistics.fmean(samples):>10.1f}")


if __name__ == "__main__":
    sys.exit(main())
