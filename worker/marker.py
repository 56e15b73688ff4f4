"""Write marks for the index's hits, off the event loop, most urgent first, in batches.

The tick path only enqueues. Hits wait in a queue ordered by urgency
(`worker.book.urgency`: liquidations, then stop-losses, then market orders
and manual closes, then triggers and take-profits; the deepest crossed first),
and up to `concurrency` batches are written at once, each in a thread. A
burst starts with a batch of one, written alone (the rest start when it
is done, or after `HEAD_START`), and doubles each next batch up to
`batch_size` writes (a position's mark is one write, a trigger's two: its
execution and its deletion), so the most urgent mark is not held behind a
large write nor behind the planning of the others, and a large storm takes
as few commits as Firestore's 500 writes a batch allow.

Each batch is planned with the core, then written blind in one atomic
batch, each write conditioned on its document's version
(`cogmora_backend.marks`): a position from the levels and the version the
listener delivered (`Armed.seen`), a trigger from the document as read again
(the batch's triggers in one read: its execution copies the whole order).
When any document of a batch changed since it was read, the batch writes
nothing and is split, down to the one that changed, which is then marked
through the transaction that re-reads it (as is any hit that cannot be
planned: armed from no known version, a one-cancels-other trigger). A mark
that keeps failing is retried with backoff, then armed again, so the next
tick tries once more.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import TypeVar

from cogmora_backend.marks import (
    PlannedMark,
    mark_funding,
    mark_position,
    mark_trigger,
    plan_position_mark,
    plan_read_trigger_mark,
    record_peak,
    reject_trigger,
    write_marks,
)
from cogmora_backend.retry import backoff
from cogmora_backend.store import Database, Snapshot, StaleWrite
from cogmora_core.events import CloseRequested, InvalidDocument, Outcome, Skipped, TriggerFired
from worker.book import TRIGGER, Armed, Hit, Market, PriceIndex, urgency
from worker.documents import owner_of
from worker.metrics import Metrics
from worker.venues.base import Funding

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Seconds the first mark of a burst is written alone before the rest start anyway.
HEAD_START = 0.05
#: A queued hit: (urgency, arrival order, hit, when its tick arrived).
_Queued = tuple[tuple[int, Decimal], int, Hit, float]
#: Writes in one atomic batch at most (Firestore's limit).
MAX_BATCH_WRITES = 500


def _writes(hit: Hit) -> int:
    """Return the writes of `hit`'s mark: a trigger's execution and deletion, or a position."""
    return 2 if hit.armed.kind == TRIGGER else 1


class Marker:
    """Turns hits into marks: most urgent first, in batches, at most `concurrency` at once."""

    def __init__(self, database: Database, index: PriceIndex, metrics: Metrics, source: str,
                 concurrency: int = 16, attempts: int = 5,
                 batch_size: int = MAX_BATCH_WRITES) -> None:
        self.database = database
        self.index = index
        self.metrics = metrics
        self.source = source
        self.attempts = attempts
        self.concurrency = concurrency
        #: Writes in one batch at most (a mark that alone needs more still goes alone).
        self.batch_size = max(1, min(batch_size, MAX_BATCH_WRITES))
        self._executor = ThreadPoolExecutor(max_workers=concurrency,
                                            thread_name_prefix="mark")
        #: Hits waiting, most urgent first; `_pending` holds their paths and those in flight.
        self._queue: list[_Queued] = []
        self._order = itertools.count()
        self._pending: dict[str, Market] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._pump_scheduled = False
        #: The writes of the next batch of a burst (doubles up to `batch_size`).
        self._next_size = 1
        #: While the first mark of a burst is written alone: when the rest may start anyway.
        self._head_start: asyncio.TimerHandle | None = None
        #: Set on stop: no new mark or retry starts. A hit left unmarked stays
        #: armed in Firestore, and the next instance marks it on its next tick.
        self.stopping = False

    def submit(self, hit: Hit, received_at: float) -> None:
        """Queue `hit` for marking unless the same document is already queued or marking."""
        path = hit.armed.path
        if path in self._pending or self.stopping:
            return
        if not self._queue and not self._running:
            self._next_size = 1  # a new burst: its first mark goes alone
        self._pending[path] = hit.armed.market
        heapq.heappush(self._queue, (urgency(hit), next(self._order), hit, received_at))
        if not self._pump_scheduled:
            # After the current tick has queued all its hits: then the most urgent go first.
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def marking(self) -> set[Market]:
        """Return the markets with a hit queued or marking: they still matter to the feeds.

        A hit leaves the index when it fires; until its mark is done its market
        stays wanted (a failed mark is armed again and waits for the next tick).
        """
        return set(self._pending.values())

    def _pump(self) -> None:
        """Start batches from the queue while fewer than `concurrency` run."""
        self._pump_scheduled = False
        loop = asyncio.get_running_loop()
        while self._queue and len(self._running) < self.concurrency and not self.stopping:
            if self._head_start is not None:
                return  # the burst's first mark is being written alone
            size = self._next_size
            self._next_size = min(self.batch_size, size * 2)
            batch: list[_Queued] = []
            writes = 0
            while self._queue:  # the first always goes, even if it alone needs more
                cost = _writes(self._queue[0][2])
                if batch and writes + cost > size:
                    break
                writes += cost
                batch.append(heapq.heappop(self._queue))
            task = loop.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(partial(self._finished, [hit.armed.path
                                                            for _, _, hit, _ in batch]))
            if size == 1 and self._queue:
                # The most urgent mark of a burst goes first, alone: planning and
                # writing the rest would hold the interpreter and the database while
                # it is written. The others start when it is done, or after HEAD_START.
                self._head_start = loop.call_later(HEAD_START, self._end_head_start)
                return

    def _end_head_start(self) -> None:
        if self._head_start is not None:
            self._head_start.cancel()
            self._head_start = None
            self._pump()

    def _finished(self, paths: list[str], task: asyncio.Task[None]) -> None:
        # However the batch ended (even cancelled before it started), its hits are done.
        for path in paths:
            self._pending.pop(path, None)
        self._running.discard(task)
        if self._head_start is not None and not self._running:
            self._end_head_start()
            return
        if self._queue and not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def reject(self, armed_path: str, uid: str, doc_id: str, reason: str, detail: str) -> None:
        """Record on an active trigger why it cannot execute (in the background)."""
        async def run() -> None:
            try:
                await self._call(reject_trigger, self.database, uid, doc_id, reason, detail)
            except Exception:
                log.exception("could not record a trigger rejection", extra={"path": armed_path})

        asyncio.get_running_loop().create_task(run())

    def mark_funding(self, venue: str, funding: Funding, mark_price: Decimal) -> None:
        """Record a funding settlement (in the background, retried)."""
        async def run() -> None:
            delays = backoff(initial=0.2, maximum=5.0, jitter=0.5)
            for _ in range(self.attempts):
                try:
                    outcome = await self._call(
                        mark_funding, self.database, venue, funding.symbol, funding.rate,
                        funding.funding_time_ms, mark_price, self.source)
                    self.metrics.mark_outcomes.labels(f"funding_{outcome.kind}").inc()
                    log.info("funding marked", extra={"symbol": funding.symbol,
                                                      "outcome": outcome.kind})
                    return
                except Exception as error:
                    log.warning("funding mark failed", extra={"error": repr(error)})
                    await asyncio.sleep(next(delays))
            log.error("funding mark still failing", extra={"symbol": funding.symbol})

        asyncio.get_running_loop().create_task(run())

    async def persist_peaks(self) -> None:
        """Persist the trailing stops' peaks that moved (one transaction each)."""
        for path, peak in self.index.take_moved_peaks().items():
            uid, doc_id = owner_of(path)
            try:
                outcome = await self._call(record_peak, self.database, uid, doc_id, peak,
                                           self.source)
                self.metrics.mark_outcomes.labels(f"peak_{outcome.kind}").inc()
            except Exception as error:
                log.warning("could not persist a trailing peak",
                            extra={"path": path, "error": repr(error)})

    async def persist_peaks_forever(self, interval: float) -> None:
        """Persist moved peaks every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.persist_peaks()

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for marks in flight (graceful stop); return how many are left.

        Hits still queued are not started (`stopping`); a mark still running is
        abandoned: each batch or transaction either committed or changed
        nothing, and whatever it did not do the next instance does.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while self._running or (self._queue and not self.stopping):
            left = deadline - loop.time()
            if left <= 0:
                break
            if self._running:
                await asyncio.wait(list(self._running), timeout=left,
                                   return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(0)  # the queue's batches start on the next turn
        self._executor.shutdown(wait=False, cancel_futures=True)
        return len(self._pending)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self, batch: list[_Queued]) -> None:
        """Mark one batch: the planned ones blind, together; the others one by one."""
        planned: list[tuple[PlannedMark, Hit, float]] = []
        alone: list[tuple[Hit, float]] = []
        reads = await self._read_triggers([hit for _, _, hit, _ in batch])
        for _, _, hit, received_at in batch:
            mark = self._plan(hit, reads)
            if isinstance(mark, PlannedMark):
                planned.append((mark, hit, received_at))
            elif mark is None:
                alone.append((hit, received_at))
            else:  # gone or no longer active, as just read
                self._marked(hit, mark, received_at)
        if planned:
            await self._write(planned)
        for hit, received_at in alone:
            await self._mark(hit, received_at)

    async def _read_triggers(self, hits: list[Hit]) -> dict[str, Snapshot | None] | None:
        """Read the batch's triggers in one round trip (None: the read failed)."""
        paths = [hit.armed.path for hit in hits
                 if hit.armed.kind == TRIGGER and hit.armed.seen is not None]
        if not paths:
            return {}
        try:
            found = await self._call(self.database.read_many, paths)
        except Exception as error:  # each is marked through its transaction instead
            log.warning("could not read triggers to mark", extra={"error": repr(error)})
            return None
        return dict(zip(paths, found, strict=True))

    def _plan(self, hit: Hit, reads: dict[str, Snapshot | None] | None
              ) -> PlannedMark | Skipped | None:
        armed = hit.armed
        try:
            if armed.kind == TRIGGER:
                if reads is None or armed.seen is None:
                    return None  # armed from no known version (by hand): the transaction
                return plan_read_trigger_mark(reads.get(armed.path), armed.uid, armed.doc_id,
                                              hit.tick, self.source, hit.origin)
            if armed.position is None or armed.seen is None:
                return None
            return plan_position_mark(armed.uid, armed.doc_id, armed.position, armed.immediate,
                                      armed.seen, hit.tick, self.source, hit.peak, hit.origin)
        except Exception:  # whatever cannot be planned is marked through the transaction
            log.exception("could not plan a mark", extra={"path": armed.path})
            return None

    async def _write(self, planned: list[tuple[PlannedMark, Hit, float]]) -> None:
        """Write planned marks in one batch; split it when a document changed since read."""
        delays = backoff(initial=0.1, maximum=2.0, jitter=0.5)
        for attempt in range(1, 3):
            try:
                await self._call(write_marks, self.database, [mark for mark, _, _ in planned])
            except StaleWrite:
                self.metrics.mark_outcomes.labels("stale").inc()
                break
            except Exception as error:
                self.metrics.mark_outcomes.labels("error").inc()
                log.warning("mark batch failed", extra={"marks": len(planned),
                                                        "attempt": attempt,
                                                        "error": repr(error)})
                if self.stopping:
                    return
                await asyncio.sleep(next(delays))
                continue
            for mark, hit, received_at in planned:
                self._marked(hit, mark.outcome, received_at)
            return
        # Something in it changed since it was read (or it keeps failing): find what.
        if len(planned) == 1:
            _, hit, received_at = planned[0]
            await self._mark(hit, received_at)
            return
        half = len(planned) // 2
        await asyncio.gather(self._write(planned[:half]), self._write(planned[half:]))

    def _marked(self, hit: Hit, outcome: Outcome, received_at: float) -> None:
        armed = hit.armed
        self.metrics.mark_outcomes.labels(outcome.kind).inc()
        if isinstance(outcome, TriggerFired | CloseRequested):
            self.metrics.marks.labels(outcome.reason).inc()
            self.metrics.mark_latency.observe(time.monotonic() - received_at)
            log.info("marked", extra={"path": armed.path, "reason": outcome.reason,
                                      "price": str(hit.tick.price)})
        elif isinstance(outcome, InvalidDocument):
            self.metrics.invalid_documents.labels(_collection(armed), outcome.reason).inc()
            log.warning("cannot mark an invalid document",
                        extra={"path": armed.path, "reason": outcome.reason})

    async def _mark(self, hit: Hit, received_at: float) -> None:
        """Mark one hit through the transaction that re-reads its document."""
        armed = hit.armed
        delays = backoff(initial=0.1, maximum=2.0, jitter=0.5)
        for attempt in range(1, self.attempts + 1):
            if self.stopping and attempt > 1:
                return  # no retry while stopping: the next instance marks it
            try:
                if armed.kind == TRIGGER:
                    outcome: Outcome = await self._call(
                        mark_trigger, self.database, armed.uid, armed.doc_id, hit.tick,
                        self.source, hit.origin)
                else:
                    outcome = await self._call(
                        mark_position, self.database, armed.uid, armed.doc_id, hit.tick,
                        self.source, hit.peak, hit.origin)
            except Exception as error:
                self.metrics.mark_outcomes.labels("error").inc()
                log.warning("mark failed", extra={"path": armed.path, "attempt": attempt,
                                                  "error": repr(error)})
                await asyncio.sleep(next(delays))
                continue
            self._marked(hit, outcome, received_at)
            return
        log.error("mark still failing: armed again for the next tick",
                  extra={"path": armed.path})
        if armed.path not in self.index:
            self.index.arm(armed)


def _collection(armed: Armed) -> str:
    return "tradeTriggers" if armed.kind == TRIGGER else "openPositions"
