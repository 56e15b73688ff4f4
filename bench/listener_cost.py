"""What a listener over many documents costs each commit, with Google's Watch and with ChangesWatch.

On the Firestore emulator: N documents in the `openPositions` collection
group, one listener in another process on the worker's query for positions
(`details.status in [open, closing]`), then commits to one of those documents,
one at a time. For each listener, printed: the commit's latency (what every
mark and settlement pays), the listen messages received per commit (the
emulator resets the target at every commit and sends the whole result again),
and the listener process's CPU time per commit. Rows: no listener (the floor),
a listener whose result is empty (the emulator's own query work), Google's
`Watch` (`on_snapshot`) and `ChangesWatch` (cogmora_backend.firestore.watch).

    scripts/bench.sh listener_cost [--sizes 1200,10000] [--commits 30]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench.results import record, tee
from tests.support.emulator import firestore_client

GROUP = "openPositions"
KINDS = ("none", "empty", "google", "changes")


def listen(kind: str) -> None:
    """Child process: listen until stdin closes; print what the commits cost it (JSON).

    It prints once its first snapshot is in, then, when the parent closes its
    stdin, the CPU time used and the listen messages received since then.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.watch import Watch

    from cogmora_backend.firestore.watch import ChangesWatch

    received: Counter[str] = Counter()
    # Every message the stream delivers enters the listener's own `on_snapshot`.
    entry = ChangesWatch if kind == "changes" else Watch
    hear = entry.on_snapshot

    def counting(self: Any, proto: Any) -> None:
        if proto is not None:
            received[proto._pb.WhichOneof("response_type")] += 1
        hear(self, proto)  # type: ignore[no-untyped-call]

    setattr(entry, "on_snapshot", counting)  # noqa: B010
    first = threading.Event()

    def heard(*_: Any) -> None:
        first.set()

    db = firestore_client()
    if kind == "empty":
        query = db.collection_group(GROUP).where(
            filter=FieldFilter("details.status", "==", "none"))
    else:
        query = db.collection_group(GROUP).where(
            filter=FieldFilter("details.status", "in", ["open", "closing"]))
    watch = query.on_snapshot(heard) if kind in ("empty", "google") else ChangesWatch.of(
        query, heard)
    first.wait(120)
    time.sleep(1)
    before = dict(received)
    cpu = _cpu()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.read()
    used = _cpu() - cpu
    watch.unsubscribe()
    sent = {key: n - before.get(key, 0) for key, n in received.items()}
    print(json.dumps({"cpu": used, "received": sent}), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed(db: Any, start: int, stop: int) -> None:
    writer = db.bulk_writer()
    for n in range(start, stop):
        writer.set(db.document(f"users/l{n % 1000}/{GROUP}/p{n}"),
                   {"symbol": "LISTENUSDTM", "details": {"status": "open"}, "version": 0})
    writer.close()


def measure(db: Any, kind: str, commits: int) -> dict[str, float]:
    """Commit `commits` times to one listened document, one at a time, with `kind` listening."""
    child = None
    if kind != "none":
        child = subprocess.Popen([sys.executable, "-m", "bench.listener_cost", "--child", kind],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdin is not None
        json.loads(child.stdout.readline())
    latencies = []
    target = db.document(f"users/l1/{GROUP}/p1")
    for n in range(commits):
        started = time.perf_counter()
        target.set({"symbol": "LISTENUSDTM", "details": {"status": "open"},
                    "version": time.time_ns() + n})
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.1)
    spent: dict[str, Any] = {"cpu": 0.0, "received": {}}
    if child is not None:
        assert child.stdout is not None and child.stdin is not None
        time.sleep(2)  # the last commits' deliveries
        child.stdin.close()
        spent = json.loads(child.stdout.readline())
        child.wait()
    latencies.sort()
    return {"p50_ms": statistics.median(latencies),
            "p90_ms": latencies[max(0, int(len(latencies) * 0.9) - 1)],
            "documents_per_commit": spent["received"].get("document_change", 0) / commits,
            "cpu_s_per_commit": spent["cpu"] / commits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1200,10000")
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--child", choices=KINDS)
    args = parser.parse_args()
    if args.child:
        listen(args.child)
        return 0
    db = firestore_client()
    results: dict[str, dict[str, dict[str, float]]] = {}
    seeded = 0
    with tee() as out:
        print("a commit to one listened document, on the Firestore emulator "
              f"({args.commits} commits; the listener in another process)")
        print(f"{'documents':>10} {'listener':>9} {'commit p50 ms':>14} {'p90 ms':>8} "
              f"{'documents sent/commit':>22} {'listener CPU ms/commit':>23}")
        for size in [int(s) for s in args.sizes.split(",")]:
            seed(db, seeded, size)
            seeded = size
            for kind in KINDS:
                row = measure(db, kind, args.commits)
                results.setdefault(str(size), {})[kind] = row
                print(f"{size:>10,} {kind:>9} {row['p50_ms']:>14.1f} {row['p90_ms']:>8.1f} "
                      f"{row['documents_per_commit']:>22,.0f} "
                      f"{row['cpu_s_per_commit'] * 1000:>23.1f}", flush=True)
            google, changes = results[str(size)]["google"], results[str(size)]["changes"]
            print(f"{size:>10,} ChangesWatch vs Google's Watch: commit p50 "
                  f"{google['p50_ms'] / changes['p50_ms']:.1f}× faster, listener CPU "
                  f"{google['cpu_s_per_commit'] / max(changes['cpu_s_per_commit'], 1e-9):.1f}× "
                  "less", flush=True)
    record("listener_cost", results, out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
