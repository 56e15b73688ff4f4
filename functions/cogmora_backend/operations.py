"""What on-call watches, read from Firestore: stale worker shards, unsettled marks.

`workerState/{venue}-{market}-{shard}` is each worker shard's heartbeat (the
worker writes `lastTickMs`, `symbols`, `workerId` and `shardCount` every few
seconds while its feed has ticks). `shard_health` says, per venue and market,
which shards are fresh, stale (no tick for `stale_after`), missing (a shard of
the current count that never wrote) or retired (a shard beyond the current
count, left by a larger deployment). The current count is the one the
freshest heartbeat of that market carries, so a re-sharding settles by itself
once the old services are retired.

The `workerShards` function answers this as JSON; `watchOperations` logs it
every minute with the oldest unsettled mark and the reconciler's backlog: the
log-based metrics and alerts of infra/monitoring read those lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cogmora_backend import queries
from cogmora_backend.store import Database
from cogmora_core.contract.executions import ExecutionStatus
from cogmora_core.contract.positions import PositionStatus

log = logging.getLogger(__name__)

WORKER_STATE = "workerState"
#: A shard whose market had no tick for this long is stale (the alert's threshold).
STALE_AFTER = timedelta(seconds=30)
#: A mark unsettled for longer than this is late (the alert's threshold).
LATE_MARK = timedelta(minutes=2)
#: Marks waiting longer than this count in the backlog (the reconciler's grace).
BACKLOG_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Shard:
    """One shard of one venue's market, as its heartbeat tells."""

    market: str
    index: int
    state: str  # fresh, stale, missing, retired
    age_seconds: float | None
    worker_id: str | None


@dataclass
class ShardHealth:
    """Every shard's state, and the current shard count per market."""

    shards: list[Shard] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def stale(self) -> list[Shard]:
        """The shards that should beat and do not (stale or missing)."""
        return [s for s in self.shards if s.state in ("stale", "missing")]

    @property
    def max_age_seconds(self) -> float:
        """The oldest heartbeat of a current shard (0 with none)."""
        return max((s.age_seconds or 0.0 for s in self.shards if s.state != "retired"),
                   default=0.0)

    def as_json(self) -> dict[str, Any]:
        """The answer of `workerShards`."""
        return {"ok": not self.stale, "counts": self.counts,
                "stale": [f"{s.market}-{s.index}" for s in self.stale],
                "shards": [asdict(s) for s in self.shards]}


def _split(doc_id: str) -> tuple[str, int] | None:
    market, _, index = doc_id.rpartition("-")
    return (market, int(index)) if market and index.isdigit() else None


def shard_health(heartbeats: Iterable[tuple[str, dict[str, Any]]], now: datetime,
                 stale_after: timedelta = STALE_AFTER) -> ShardHealth:
    """Judge each `workerState` document (id, data) at `now`."""
    now_ms = now.timestamp() * 1000
    markets: dict[str, dict[int, dict[str, Any]]] = {}
    for doc_id, data in heartbeats:
        found = _split(doc_id)
        if found is not None:
            markets.setdefault(found[0], {})[found[1]] = data
    health = ShardHealth()
    for market, shards in sorted(markets.items()):

        def last(data: dict[str, Any]) -> float:
            value = data.get("lastTickMs")
            return float(value) if isinstance(value, int | float) else 0.0

        freshest = max(shards.values(), key=last)
        written = freshest.get("shardCount")
        count = written if isinstance(written, int) and written > 0 else max(shards) + 1
        health.counts[market] = count
        for index in sorted(set(shards) | set(range(count))):
            if index not in shards:
                health.shards.append(Shard(market, index, "missing", None, None))
                continue
            data = shards[index]
            age = max(0.0, (now_ms - last(data)) / 1000)
            state = ("retired" if index >= count else
                     "stale" if age > stale_after.total_seconds() else "fresh")
            worker = data.get("workerId")
            health.shards.append(Shard(market, index, state, round(age, 3),
                                       worker if isinstance(worker, str) else None))
    return health


def worker_shards(database: Database, now: datetime) -> ShardHealth:
    """Read every heartbeat and judge it."""
    return shard_health(database.list(WORKER_STATE), now)


def oldest_unsettled_seconds(database: Database, now: datetime) -> float:
    """Age of the oldest mark (pending execution, priced close) still unsettled (0: none)."""
    oldest = 0.0
    for spec, status, field_path in (
        (queries.PENDING_EXECUTIONS, ExecutionStatus.PENDING.value, ("executedAt",)),
        (queries.STALE_PRICED_CLOSES, PositionStatus.CLOSING.value,
         ("details", "closeRequest", "at")),
    ):
        for snapshot in database.query(spec, (status,), now, limit=1):
            value: Any = snapshot.data
            for name in field_path:
                value = value.get(name) if isinstance(value, dict) else None
            if isinstance(value, datetime):
                oldest = max(oldest, (now - value).total_seconds())
    return round(oldest, 3)


def backlog(database: Database, now: datetime) -> int:
    """Marks unsettled past the reconciler's grace: what it has yet to settle."""
    cutoff = now - BACKLOG_AFTER
    return (database.count(queries.PENDING_EXECUTIONS, (ExecutionStatus.PENDING.value,), cutoff)
            + database.count(queries.STALE_PRICED_CLOSES, (PositionStatus.CLOSING.value,),
                             cutoff))


def watch(database: Database, now: datetime) -> dict[str, Any]:
    """Log one `operations probe` line (and one per stale shard); return its fields."""
    health = worker_shards(database, now)
    for shard in health.stale:
        log.error("worker shard stale", extra={
            "market": shard.market, "shard": shard.index, "state": shard.state,
            "heartbeatAgeSeconds": shard.age_seconds, "workerId": shard.worker_id})
    oldest = oldest_unsettled_seconds(database, now)
    fields: dict[str, Any] = {
        "staleShards": len(health.stale),
        "maxHeartbeatAgeSeconds": round(health.max_age_seconds, 3),
        "oldestUnsettledSeconds": oldest,
        "reconcileBacklog": backlog(database, now),
        "shardCounts": health.counts,
    }
    if oldest > LATE_MARK.total_seconds():
        log.error("mark unsettled late", extra={"oldestUnsettledSeconds": oldest})
    log.info("operations probe", extra=fields)
    return fields
