"""Write marks for the index's hits, off the event loop, retried until they land.

The tick path only enqueues: each hit becomes a task that runs the mark's
Firestore transaction in a thread. A mark that fails is retried with backoff;
one that keeps failing is armed again, so the next tick tries once more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TypeVar

from cogmora_backend.marks import (
    mark_funding,
    mark_position,
    mark_trigger,
    record_peak,
    reject_trigger,
)
from cogmora_backend.retry import backoff
from cogmora_backend.store import Database
from cogmora_core.events import CloseRequested, InvalidDocument, Outcome, TriggerFired
from worker.book import TRIGGER, Armed, Hit, PriceIndex
from worker.documents import owner_of
from worker.metrics import Metrics
from worker.venues.base import Funding

log = logging.getLogger(__name__)
T = TypeVar("T")


class Marker:
    """Turns hits into marks, at most `concurrency` at once."""

    def __init__(self, database: Database, index: PriceIndex, metrics: Metrics, source: str,
                 concurrency: int = 16, attempts: int = 5) -> None:
        self.database = database
        self.index = index
        self.metrics = metrics
        self.source = source
        self.attempts = attempts
        self._executor = ThreadPoolExecutor(max_workers=concurrency,
                                            thread_name_prefix="mark")
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        #: Set on stop: no new mark or retry starts. A hit left unmarked stays
        #: armed in Firestore, and the next instance marks it on its next tick.
        self.stopping = False

    def submit(self, hit: Hit, received_at: float) -> None:
        """Start marking `hit` unless a mark of the same document is already running."""
        path = hit.armed.path
        if path in self._in_flight or self.stopping:
            return
        task = asyncio.get_running_loop().create_task(self._mark(hit, received_at))
        self._in_flight[path] = task
        task.add_done_callback(lambda _: self._in_flight.pop(path, None))

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

        A mark still running then is abandoned: each is one transaction that
        re-reads its document, so it either committed or changed nothing, and
        whatever it did not do the next instance does.
        """
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=max(0.0, timeout))
        self._executor.shutdown(wait=False, cancel_futures=True)
        return sum(not task.done() for task in self._in_flight.values())

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _mark(self, hit: Hit, received_at: float) -> None:
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
            return
        log.error("mark still failing: armed again for the next tick",
                  extra={"path": armed.path})
        if armed.path not in self.index:
            self.index.arm(armed)


def _collection(armed: Armed) -> str:
    return "tradeTriggers" if armed.kind == TRIGGER else "openPositions"
