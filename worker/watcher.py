"""What to watch: every open position and active trigger, kept in the index.

On start the slow path (collection-group queries, as the seed design does)
arms everything; then live listeners on the same queries arm, re-arm or
disarm a document within a second of its change. The safety net runs every
`resync_seconds`: a `count()` of each query (billed about one read per 1,000
entries) is compared with the documents the watcher knows, and only a
mismatch, or `full_resync_seconds` since the last full read, re-reads
everything. A document that cannot be evaluated
is reported, counted and skipped; an invalid active trigger is set to
`rejected` with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sortedcontainers import SortedList

from cogmora_backend import queries
from cogmora_backend.limits import load_limits
from cogmora_backend.queries import QuerySpec
from cogmora_backend.settlement import load_config
from cogmora_backend.store import (
    ChangeKind,
    Database,
    DocumentChange,
    Snapshot,
    Subscription,
    millis,
)
from cogmora_core.config import LimitsConfig
from cogmora_core.contract import positions, triggers
from cogmora_core.errors import Reason, Rejected
from worker.book import Armed, Hit, PriceIndex
from worker.documents import armed_position, armed_trigger, owner_of
from worker.marker import Marker
from worker.metrics import Metrics

log = logging.getLogger(__name__)
Change = tuple[str, dict[str, Any] | None]
TRIGGERS = "tradeTriggers"
POSITIONS = "openPositions"
#: The watched queries, by collection: what the listeners, the full reads and the counts ask.
WATCHED: dict[str, tuple[QuerySpec, tuple[Any, ...]]] = {
    POSITIONS: (queries.LIVE_POSITIONS, ([s.value for s in positions.LIVE],)),
    TRIGGERS: (queries.ACTIVE_TRIGGERS, (triggers.TriggerStatus.ACTIVE.value,)),
}


class Watcher:
    """Keeps the index equal to Firestore's open positions and active triggers."""

    def __init__(self, database: Database, index: PriceIndex, marker: Marker,
                 metrics: Metrics, on_change: Callable[[], None],
                 owns: Callable[[object], bool] = lambda symbol: True) -> None:
        self.database = database
        self.owns = owns
        self.index = index
        self.marker = marker
        self.metrics = metrics
        self.on_change = on_change
        self.max_price_age = 10.0
        self.last_resync_ok = False
        self.last_full_resync = float("-inf")
        #: How long a count mismatch may last before it means something was missed.
        self.settle_seconds = 2.0
        #: Paths present in each watched query, armed or not (for the count check).
        self.known: dict[str, set[str]] = {TRIGGERS: set(), POSITIONS: set()}
        #: When the listener last applied each path (monotonic): a resync that
        #: started earlier read an older state of it and must not undo it.
        self._applied_at: dict[str, float] = {}
        #: Server time (ms) of the latest version seen of each document, and of its creation.
        self._updated_ms: dict[str, int] = {}
        self._created_ms: dict[str, int] = {}
        #: `config/limits`, read with `config/trading` on every full read.
        self.limits = LimitsConfig()
        #: Each user's active triggers by (creation ms, path): the first
        #: `maxActiveTriggers` of them are armed, any later one is rejected.
        #: Every shard listens to every trigger, so each ranks the same way.
        self._active: dict[str, SortedList] = {}
        self._active_key: dict[str, tuple[int, str]] = {}
        #: Triggers rejected for the limit: never armed, even if a slot frees
        #: before the rejection is written.
        self._over_limit: set[str] = set()
        #: Per armed document: its levels and since when (ms, server time) it has
        #: had them. Gap recovery never fires a document on prices printed before
        #: its levels were set (DESIGN.md §3, "No hindsight").
        self._levels_since: dict[str, tuple[object, int]] = {}
        self._watches: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def healthy(self) -> bool:
        """Return whether the listeners stream and the last full read worked."""
        return self.last_resync_ok and bool(self._watches) and all(
            w.active for w in self._watches)

    async def resync(self) -> None:
        """Read every watched document (the slow path) and make the index match it."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            config = await loop.run_in_executor(None, load_config, self.database)
            self.max_price_age = float(config.max_price_age_seconds)
            self.limits = await loop.run_in_executor(None, load_limits, self.database)
            for collection, (spec, equals) in WATCHED.items():
                snapshots = await loop.run_in_executor(None, self.database.query, spec, equals)
                self.metrics.documents_read.labels("resync").inc(len(snapshots) or 1)
                for snapshot in snapshots:
                    self._remember_update(snapshot)
                self.reconcile(collection, [(s.path, s.data) for s in snapshots], started,
                               {s.path: s.update_time for s in snapshots})
            self._applied_at = {p: t for p, t in self._applied_at.items() if t >= started}
            self.last_resync_ok = True
            self.last_full_resync = started
            self.metrics.resyncs.labels("full").inc()
        except Exception:
            self.last_resync_ok = False
            log.exception("resync failed")

    def reconcile(self, collection: str, documents: list[Change], started: float,
                  versions: Mapping[str, datetime | None] | None = None) -> None:
        """Make the index match `documents`, the full result of a read begun at `started`.

        Paths the listener applied after `started` keep the listener's newer state.
        `versions` are the documents' update times as read (see `apply`).
        """
        present = {path for path, _ in documents}
        seen = self.known[collection] | {p for p in self.index.paths() if f"/{collection}/" in p}
        stale = [(p, None) for p in seen if p not in present]
        self.apply([(path, data) for path, data in [*documents, *stale]
                    if self._applied_at.get(path, float("-inf")) < started], versions)

    def start_listeners(self) -> None:
        """Listen to the same queries; changes are applied on the event loop."""
        self._loop = asyncio.get_running_loop()
        for spec, equals in WATCHED.values():
            self._watches.append(self.database.listen(spec, equals, self._on_changes))

    def stop(self) -> None:
        """Stop listening."""
        for watch in self._watches:
            watch.stop()
        self._watches.clear()

    async def resync_forever(self, interval: float, full_interval: float) -> None:
        """Check every `interval` seconds; re-read everything on a mismatch or when due."""
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.last_full_resync >= full_interval:
                await self.resync()
            elif not await self.counts_match():
                # The listener may just not have delivered a burst of changes yet.
                await asyncio.sleep(self.settle_seconds)
                if not await self.counts_match():
                    self.metrics.resyncs.labels("count_mismatch").inc()
                    await self.resync()

    async def counts_match(self) -> bool:
        """Return whether each query counts as many documents as the watcher knows."""
        loop = asyncio.get_running_loop()
        try:
            for collection, (spec, equals) in WATCHED.items():
                counted = await loop.run_in_executor(None, self.database.count, spec, equals)
                self.metrics.documents_read.labels("count").inc(max(1, -(-counted // 1000)))
                if counted != len(self.known[collection]):
                    log.warning("watched documents and the index disagree",
                                extra={"collection": collection, "counted": counted,
                                       "known": len(self.known[collection])})
                    return False
            self.last_resync_ok = True
            return True
        except Exception:
            self.last_resync_ok = False
            log.exception("count check failed")
            return False

    def _on_changes(self, changes: list[DocumentChange]) -> None:
        # May run on the database's listener thread: hand over to the loop.
        batch: list[Change] = []
        versions: dict[str, datetime | None] = {}
        for change in changes:
            removed = change.kind is ChangeKind.REMOVED
            batch.append((change.snapshot.path, None if removed else change.snapshot.data))
            if not removed:
                self._remember_update(change.snapshot)
                versions[change.snapshot.path] = change.snapshot.update_time
        if batch and self._loop is not None:
            self.metrics.documents_read.labels("listener").inc(len(batch))
            self._loop.call_soon_threadsafe(self.apply_from_listener, batch, versions)

    def _remember_update(self, snapshot: Snapshot) -> None:
        if snapshot.update_time is None:
            return
        path = snapshot.path
        # A slow full read may deliver an older version than the listener did.
        self._updated_ms[path] = max(millis(snapshot.update_time), self._updated_ms.get(path, 0))
        if snapshot.create_time is not None:
            self._created_ms[path] = millis(snapshot.create_time)

    def levels_since(self, path: str) -> int | None:
        """Return since when (ms, server time) the armed document has had its levels.

        None when it is not armed. The time is the document's update time when
        the watcher first saw these levels, which is never earlier than when the
        user set them: only prices from then on may fire it on catching up.
        """
        found = self._levels_since.get(path)
        return found[1] if found is not None else None

    def _arm(self, armed: Armed) -> None:
        path = armed.path
        levels = (armed.symbol, armed.venue, armed.immediate, armed.trigger,
                  replace(armed.position, peak=None) if armed.position is not None else None)
        known = self._levels_since.get(path)
        if known is None or known[0] != levels:
            updated = self._updated_ms.get(path, int(time.time() * 1000))
            self._levels_since[path] = (levels, updated)
        self.index.arm(armed)

    def _disarm(self, path: str) -> None:
        self._levels_since.pop(path, None)
        self._updated_ms.pop(path, None)
        self.index.disarm(path)

    def _track_active(self, path: str, active: bool) -> None:
        """Keep the user's ranking of active triggers (see `_active`)."""
        uid = path.split("/", 2)[1]
        key = self._active_key.pop(path, None)
        if key is not None:
            ranking = self._active.get(uid)
            if ranking is not None:
                ranking.discard(key)
                if not ranking:
                    del self._active[uid]
        if active:
            # Without a known creation time, the time it was first ranked stands
            # (ranking it again must not move it behind the user's later triggers).
            first = key[0] if key is not None else int(time.time() * 1000)
            key = (self._created_ms.get(path, first), path)
            self._active_key[path] = key
            self._active.setdefault(uid, SortedList()).add(key)
        else:
            self._created_ms.pop(path, None)
            self._over_limit.discard(path)

    def _over_trigger_limit(self, path: str) -> int | None:
        """Return how many of the user's triggers come before this one, if past the limit."""
        key = self._active_key.get(path)
        if key is None:
            return None
        ahead: int = self._active[path.split("/", 2)[1]].index(key)
        if ahead < self.limits.max_active_triggers and path not in self._over_limit:
            return None
        self._over_limit.add(path)
        return ahead

    def apply_from_listener(self, changes: list[Change],
                            versions: Mapping[str, datetime | None] | None = None) -> None:
        """Apply the listener's changes, remembering when (see `reconcile`)."""
        now = time.monotonic()
        for path, _ in changes:
            self._applied_at[path] = now
        self.apply(changes, versions)

    def apply(self, changes: Iterable[Change],
              versions: Mapping[str, datetime | None] | None = None) -> None:
        """Arm, re-arm or disarm each changed document, then refresh the subscriptions.

        Every changed trigger is ranked first: the limit then counts the user's
        earlier triggers of this same batch too (a full read comes in path
        order, not in creation order). `versions` holds the update time of the
        very version of each document in `changes` (from the same snapshot):
        armed with it, a document's mark is written blind on condition that this
        version still stands; without it, the mark reads the document again.
        """
        versions = versions or {}
        changes = list(changes)
        for path, data in changes:
            if f"/{TRIGGERS}/" in path:
                self._track_active(path, data is not None and _watched(TRIGGERS, data))
        for path, data in changes:
            try:
                self._apply_one(path, data, versions.get(path))
            except Exception:  # one bad document never stops the others
                log.exception("could not apply a document change", extra={"path": path})
        self.metrics.armed.set(len(self.index))
        self.on_change()

    def _apply_one(self, path: str, data: dict[str, Any] | None,
                   seen: datetime | None = None) -> None:
        collection = TRIGGERS if f"/{TRIGGERS}/" in path else POSITIONS
        watched = data is not None and _watched(collection, data)
        if watched:
            self.known[collection].add(path)
        else:
            self.known[collection].discard(path)
        if collection == TRIGGERS:
            self._track_active(path, watched)
        if data is None or not self.owns(data.get("symbol")):
            self._disarm(path)  # gone, or another shard's
            return
        try:
            if collection == TRIGGERS:
                if not triggers.is_active(data):
                    self._disarm(path)
                    return
                armed = armed_trigger(path, data, seen)
                ahead = self._over_trigger_limit(path)
                if ahead is not None:
                    raise Rejected(Reason.TOO_MANY_TRIGGERS,
                                   f"{ahead} active triggers before it; at most "
                                   f"{self.limits.max_active_triggers} (config/limits)")
            else:
                armed = armed_position(path, data, seen)  # type: ignore[assignment]
        except Rejected as rejection:
            self._disarm(path)
            self.metrics.invalid_documents.labels(collection, rejection.reason).inc()
            log.warning("document cannot be evaluated",
                        extra={"path": path, "reason": rejection.reason,
                               "detail": rejection.detail})
            if collection == TRIGGERS:
                uid, doc_id = owner_of(path)
                self.marker.reject(path, uid, doc_id, rejection.reason, rejection.detail)
            return
        if armed is None:
            self._disarm(path)
            return
        self._arm(armed)
        if armed.immediate:
            tick = self.index.fresh_tick(armed.market, self.max_price_age)
            if tick is not None:
                self.index.disarm(path)
                self.marker.submit(Hit(armed, tick), time.monotonic())


def _watched(collection: str, data: dict[str, Any]) -> bool:
    """Return whether a document is in the watched query (as Firestore would count it)."""
    return triggers.is_active(data) if collection == TRIGGERS else positions.is_live(data)
