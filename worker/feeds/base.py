"""What every exchange connection shares: frame errors, reconnect delays, one background loop.

The KuCoin and Backpack managers differ in their protocols; they share how
a frame is refused (`FrameError`, its `reason` the metric label), what a
funding settlement is (`Funding`), how a
connection is declared dead (`FeedDead`), the jittered reconnect delays, a
loop started once and cancelled on stop, the tasks that serve one socket
together, and handing data downstream without letting a handler's bug take
the feed down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import websockets

from cogmora_backend.retry import backoff as retry_backoff
from cogmora_core.errors import InvalidInput, RetryableError
from cogmora_core.money import MAX_MAGNITUDE, ZERO, parse_decimal_string, writable_price

log = logging.getLogger(__name__)
T = TypeVar("T")


class FrameError(InvalidInput):
    """A frame that cannot be used; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def json_object(raw: str | bytes) -> dict[str, Any]:
    """Return a frame's JSON object, or raise `FrameError` (invalid JSON, not an object)."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise FrameError("invalid_json", str(error)) from None
    if not isinstance(frame, dict):
        raise FrameError("not_an_object")
    return frame


def exchange_price(raw: object, name: str) -> Decimal | None:
    """Return an exchange's price string as a Decimal (None when absent), or raise.

    A price must be a decimal string that a document can hold exactly and
    positive (`writable_price`: at most 12 decimal places and 15 significant
    digits, below the range documents hold): anything else would be written
    rounded, to zero at worst, so it is refused here and never reaches a mark.
    """
    if raw is None:
        return None
    value = parse_decimal_string(raw)
    if value is None:
        raise FrameError("bad_price", f"{name} {raw!r}"[:80])
    if value <= ZERO:
        raise FrameError("bad_price", f"{name} {raw!r} is not positive"[:80])
    if value > MAX_MAGNITUDE:
        raise FrameError("bad_price", f"{name} {raw!r} is out of range"[:80])
    if not writable_price(value):
        raise FrameError("inexact_price", f"{name} {raw!r} cannot be written exactly"[:80])
    return value


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding settlement of a perpetual: the rate applied at `funding_time_ms`.

    `mark_price` is set when the feed gives one (Backpack's markPrice); else the
    worker uses the symbol's last price.
    """

    symbol: str
    rate: Decimal
    funding_time_ms: int
    mark_price: Decimal | None = None


class FeedDead(RetryableError):
    """The connection must be dropped and opened again."""


#: What a connection's life is expected to end with now and then.
EXPECTED_ENDINGS = (FeedDead, OSError, TimeoutError, websockets.WebSocketException)


def connection_ended(name: str, error: Exception, unexpected: Callable[[], None]) -> None:
    """Log why a connection ended; the caller reconnects whatever it was.

    Nothing raised during a connection's life ends its manager: an expected
    ending (a drop, a timeout, `FeedDead`) is a warning; anything else (a bug,
    a frame no parser foresaw) is logged with its traceback and counted through
    `unexpected`, and the connection is opened again after the usual backoff.
    """
    if isinstance(error, EXPECTED_ENDINGS):
        log.warning("feed connection lost", extra={"feed": name, "error": repr(error)})
        return
    log.error("feed connection failed unexpectedly", exc_info=error,
              extra={"feed": name, "error": repr(error)})
    unexpected()


def backoff(initial: float, maximum: float) -> Iterator[float]:
    """Yield reconnect delays: doubling up to `maximum`, each uniform in [d/2, d]."""
    return retry_backoff(initial=initial, maximum=maximum, jitter=0.5)


class BackgroundLoop:
    """A connection whose `run` loop is started once in the background and cancelled on stop."""

    name: str
    _task: asyncio.Task | None = None

    async def run(self) -> None:
        """Connect, serve and reconnect until cancelled."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the loop in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop and close the socket."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def deliver(self, handler: Callable[[T], None], item: T) -> None:
        """Hand `item` to `handler`; a bug downstream is logged, never raised into the feed."""
        try:
            handler(item)
        except Exception:
            log.exception("feed handler failed",
                          extra={"feed": self.name, "item": type(item).__name__})


async def serve_together(*tasks: asyncio.Task) -> None:
    """Wait until one of a socket's tasks fails, raise its error and cancel the rest.

    A task that returns normally also ends the connection (`FeedDead`).
    """
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        raise FeedDead("connection tasks ended")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
