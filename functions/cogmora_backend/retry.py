"""Retry from small parts: a delay generator, a retryable-error test, a loop."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def backoff(
    initial: float = 0.02, factor: float = 2.0, maximum: float = 1.0, jitter: float = 1.0
) -> Iterator[float]:
    """Yield delays that grow by `factor` up to `maximum`, each scaled by random jitter.

    With full jitter (1.0) each delay is uniform in [0, d]: racing writers
    spread out instead of colliding again in lockstep.
    """
    delay = initial
    while True:
        yield delay * (1 - jitter * random.random())
        delay = min(delay * factor, maximum)


def is_contention(error: BaseException) -> bool:
    """Return whether `error` is a transaction that lost a race (worth retrying)."""
    from google.api_core import exceptions

    if isinstance(
        error, exceptions.Aborted | exceptions.DeadlineExceeded | exceptions.ServiceUnavailable
    ):
        return True
    # google-cloud-firestore raises ValueError once its own attempts are used up.
    return isinstance(error, ValueError) and "Failed to commit transaction" in str(error)


def retry(
    attempt: Callable[[], T],
    retryable: Callable[[BaseException], bool],
    deadline_seconds: float = 60.0,
    delays: Iterator[float] | None = None,
) -> T:
    """Call `attempt` until it succeeds, a non-retryable error, or the deadline."""
    delays = delays or backoff()
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return attempt()
        except Exception as error:
            if not retryable(error) or time.monotonic() >= deadline:
                raise
            delay = next(delays)
            log.info("retrying after contention", extra={"error": repr(error), "delay": delay})
            time.sleep(delay)
