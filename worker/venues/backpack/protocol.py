"""Backpack's public WebSocket protocol, Sans-I/O: messages out, frames in.

Streams: `bookTicker.<symbol>` (best bid/ask, every book change) and, for
perpetuals (`<BASE>_USDC_PERP`), `markPrice.<symbol>` (mark price, funding
rate, next funding time). Every data frame is `{"stream": …, "data": {…}}`;
subscriptions are not acknowledged.

bookTicker carries no last trade price, so the condition price of a tick is
the mid price (bid + ask) / 2, exact in `Decimal`; fills still use the
executable side of the book (the bid or the ask). Event and engine times
(`E`, `T`) are microseconds; `Tick.time_ms` is milliseconds. `u` (update id)
is a string in the docs and an integer on the wire: both are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cogmora_core.model import Tick
from cogmora_core.money import parse_decimal_string
from cogmora_core.trading import mid_price
from cogmora_core.venues import SymbolType, Venue
from worker.venues.base import FrameError, MarkPrice, exchange_price, json_object

BOOK_TICKER = "bookTicker"
MARK_PRICE = "markPrice"
PERP_SUFFIX = "_PERP"
#: Streams per SUBSCRIBE/UNSUBSCRIBE message: Backpack documents no limit; keep messages small.
MAX_STREAMS_PER_MESSAGE = 50


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """An error the server answered a request with (`{"error": {code, message}}`)."""

    code: str
    message: str


def market_of(symbol: str) -> SymbolType:
    """Return the market of a Backpack symbol: perpetuals end in `_PERP`."""
    return SymbolType.FUTURES if symbol.endswith(PERP_SUFFIX) else SymbolType.SPOT


def streams_for(symbol: str) -> list[str]:
    """Return the streams that carry `symbol`: bookTicker, plus markPrice for perpetuals."""
    streams = [f"{BOOK_TICKER}.{symbol}"]
    if market_of(symbol) is SymbolType.FUTURES:
        streams.append(f"{MARK_PRICE}.{symbol}")
    return streams


def subscription_messages(method: str, streams: list[str]) -> list[dict[str, Any]]:
    """Return the `SUBSCRIBE` or `UNSUBSCRIBE` messages for `streams`, a few per message."""
    return [
        {"method": method, "params": streams[i:i + MAX_STREAMS_PER_MESSAGE]}
        for i in range(0, len(streams), MAX_STREAMS_PER_MESSAGE)
    ]


def parse_frame(raw: str | bytes) -> Tick | MarkPrice | ErrorFrame:
    """Return the tick, mark price or error in `raw`, or raise `FrameError`."""
    frame = json_object(raw)
    if "error" in frame:
        error = frame["error"]
        if isinstance(error, dict):
            return ErrorFrame(str(error.get("code", "")), str(error.get("message", ""))[:200])
        return ErrorFrame("", str(error)[:200])
    stream, data = frame.get("stream"), frame.get("data")
    if not isinstance(stream, str):
        raise FrameError("unknown_type", "no stream")
    if not isinstance(data, dict):
        raise FrameError("missing_fields", "data")
    kind, _, symbol = stream.partition(".")
    if not symbol or data.get("s") != symbol:
        raise FrameError("missing_fields", f"symbol of {stream[:60]!r}")
    if kind == BOOK_TICKER:
        return _book_ticker(symbol, data)
    if kind == MARK_PRICE:
        return _mark_price(symbol, data)
    raise FrameError("unknown_topic", stream[:80])


def _book_ticker(symbol: str, data: dict[str, Any]) -> Tick:
    bid = exchange_price(data.get("b"), "b")
    ask = exchange_price(data.get("a"), "a")
    if bid is None or ask is None:
        raise FrameError("missing_fields", "b or a")
    if bid > ask:
        raise FrameError("bad_price", f"bid {bid} above ask {ask}")
    if "u" in data and not _update_id(data["u"]):  # not used, but a wrong one is a bad frame
        raise FrameError("missing_fields", f"u {data['u']!r}"[:80])
    mid = mid_price(bid, ask)
    return Tick(symbol=symbol, price=mid, best_bid=bid, best_ask=ask,
                time_ms=_micros_to_ms(data.get("E")), venue=Venue.BACKPACK,
                symbol_type=market_of(symbol))


def _mark_price(symbol: str, data: dict[str, Any]) -> MarkPrice:
    mark = exchange_price(data.get("p"), "p")
    funding = parse_decimal_string(data.get("f"))
    next_funding, event = data.get("n"), _micros_to_ms(data.get("E"))
    if mark is None:
        raise FrameError("missing_fields", "p")
    if funding is None or abs(funding) >= 1:
        raise FrameError("bad_price", f"f {data.get('f')!r}"[:80])
    if not _whole(next_funding) or event is None:
        raise FrameError("missing_fields", "n or E")
    assert isinstance(next_funding, int)
    return MarkPrice(symbol=symbol, mark_price=mark, funding_rate=funding,
                     next_funding_ms=next_funding, time_ms=event)


def _whole(raw: object) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool) and raw > 0


def _update_id(raw: object) -> bool:
    """Return whether `raw` is an update id: an integer, or a string of digits (the docs)."""
    return _whole(raw) or (isinstance(raw, str) and raw.isascii() and raw.isdigit())


def _micros_to_ms(raw: object) -> int | None:
    return raw // 1000 if _whole(raw) else None  # type: ignore[operator]

