"""Binance's public market-data WebSocket protocol, Sans-I/O: messages out, frames in.

Connections use the combined-stream endpoint (`…/stream`), so every data
frame is `{"stream": "<name>", "data": {…}}` and names its stream; streams
are lower case (`btcusdt@bookTicker`) while symbols in the data are upper
case (`BTCUSDT`), as the venue writes them.

Streams:
- `<symbol>@bookTicker` (best bid/ask, every book change), spot and futures.
  Spot frames are `{u, s, b, B, a, A}` (no event type, no time); futures
  frames add `e: "bookTicker"`, `E` (event time) and `T` (transaction time),
  in milliseconds.
- `<symbol>@markPrice@1s` (futures only): `{e: "markPriceUpdate", E, s, p
  (mark), i (index), P (estimated settle), r (funding rate), T (next funding
  time)}`; times in milliseconds.

bookTicker carries no last trade price, so the condition price of a tick is
the mid price (bid + ask) / 2, exact in `Decimal` (fills use the bid or the
ask). The mid is the one price both sides of the book agree the market is at;
the bid alone would fire a long's stop-loss (and a short's the ask) on a
spread widening without any trade, and the last trade is not in the stream
(`@trade` would double the streams per symbol for a price that the book
already brackets).

Control: `{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [streams], "id": n}`
is answered `{"result": null, "id": n}`; a refused request is answered
`{"error": {"code", "msg"}, "id": n}` (the docs also show the flat
`{"code", "msg", "id"}`: both are read). `{"stream": "!serverShutdown",
"data": {"e": "serverShutdown", "E"}}` announces that the server goes down.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cogmora_core.model import Tick
from cogmora_core.money import parse_decimal_string
from cogmora_core.trading import mid_price
from cogmora_core.venues import SymbolType, Venue
from worker.venues.base import FrameError, MarkPrice, exchange_price, json_object

BOOK_TICKER = "bookTicker"
MARK_PRICE = "markPrice@1s"
SHUTDOWN_STREAM = "!serverShutdown"
#: Streams per SUBSCRIBE/UNSUBSCRIBE message: Binance names no limit; keep messages small.
MAX_STREAMS_PER_MESSAGE = 100


@dataclass(frozen=True, slots=True)
class Ack:
    """The answer to a request that succeeded (`{"result": null, "id": n}`)."""

    id: int


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """A refused request (`id` None when the server could not tell which one)."""

    code: str
    message: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The server is about to go down: connect again at once."""


Frame: TypeAlias = Tick | MarkPrice | Ack | ErrorFrame | Shutdown


def book_stream(symbol: str) -> str:
    """Return the bookTicker stream of `symbol` (lower case, as Binance names streams)."""
    return f"{symbol.lower()}@{BOOK_TICKER}"


def mark_stream(symbol: str) -> str:
    """Return the once-a-second markPrice stream of a perpetual."""
    return f"{symbol.lower()}@{MARK_PRICE}"


def book_symbols(streams: list[str] | set[str]) -> list[str]:
    """Return the symbols (upper case) of the bookTicker streams among `streams`, sorted."""
    suffix = "@" + BOOK_TICKER
    return sorted(s[:-len(suffix)].upper() for s in streams if s.endswith(suffix))


@dataclass
class Subscriptions:
    """One connection's streams: wanted, confirmed, and requests awaiting their answer.

    `changes` returns the SUBSCRIBE and UNSUBSCRIBE messages that bring the
    confirmed streams to the wanted ones (never a stream already in flight);
    an answer (`acknowledged`, `refused`) settles its request. A refused
    request of several streams is asked again one stream per message; a
    stream refused alone is not asked again while it stays wanted.
    """

    wanted: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    #: Requests sent and not answered: id → (method, streams).
    pending: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    _alone: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def want(self, streams: set[str]) -> None:
        """Set the wanted streams; a stream no longer wanted may be asked for again later."""
        self.wanted = set(streams)
        self.refused &= self.wanted
        self._alone &= self.wanted

    def changes(self) -> list[dict[str, Any]]:
        """Return the messages to send now; each is pending until answered."""
        in_flight = {s for _, streams in self.pending.values() for s in streams}
        wanted = self.wanted - self.refused
        remove = sorted(self.confirmed - wanted - in_flight)
        add = sorted(wanted - self.confirmed - in_flight)
        messages = []
        for method, streams in (("UNSUBSCRIBE", remove), ("SUBSCRIBE", add)):
            alone = [s for s in streams if s in self._alone]
            together = [s for s in streams if s not in self._alone]
            batches = [[s] for s in alone] + [
                together[i:i + MAX_STREAMS_PER_MESSAGE]
                for i in range(0, len(together), MAX_STREAMS_PER_MESSAGE)]
            for batch in batches:
                request_id = next(self._ids)
                self.pending[request_id] = (method, batch)
                messages.append({"method": method, "params": batch, "id": request_id})
        return messages

    def acknowledged(self, request_id: int) -> tuple[str, list[str]] | None:
        """Settle a request the server confirmed; return it (None if unknown)."""
        request = self.pending.pop(request_id, None)
        if request is not None:
            method, streams = request
            if method == "SUBSCRIBE":
                self.confirmed.update(streams)
            else:
                self.confirmed.difference_update(streams)
        return request

    def refuse(self, request_id: int | None) -> tuple[str, list[str]] | None:
        """Settle a request the server refused; return it (None if unknown)."""
        request = self.pending.pop(request_id, None) if request_id is not None else None
        if request is not None:
            method, streams = request
            if method == "SUBSCRIBE" and len(streams) == 1:
                self.refused.update(streams)
            elif method == "SUBSCRIBE":
                self._alone.update(streams)
        return request

    def reset(self) -> None:
        """Forget the connection's state (it ended); wanted streams stay wanted."""
        self.confirmed.clear()
        self.pending.clear()


def parse_frame(raw: str | bytes, market: SymbolType) -> Frame:
    """Return the tick, mark price, answer or error in `raw`, or raise `FrameError`."""
    frame = json_object(raw)
    if "stream" not in frame:
        return _control(frame)
    stream, data = frame.get("stream"), frame.get("data")
    if not isinstance(stream, str):
        raise FrameError("unknown_type", "stream")
    if not isinstance(data, dict):
        raise FrameError("missing_fields", "data")
    if stream == SHUTDOWN_STREAM:
        return Shutdown()
    name, _, kind = stream.partition("@")
    symbol = data.get("s")
    if not name or not isinstance(symbol, str) or symbol.lower() != name or not symbol.isupper():
        raise FrameError("missing_fields", f"symbol of {stream[:60]!r}")
    if kind == BOOK_TICKER:
        return _book_ticker(symbol, data, market)
    if kind in (MARK_PRICE, "markPrice") and market is SymbolType.FUTURES:
        return _mark_price(symbol, data)
    raise FrameError("unknown_topic", stream[:80])


def _control(frame: dict[str, Any]) -> Ack | ErrorFrame:
    request_id = frame.get("id")
    known_id = request_id if _whole(request_id) else None
    error = frame.get("error")
    if isinstance(error, dict):
        return ErrorFrame(str(error.get("code", ""))[:20], str(error.get("msg", ""))[:200],
                          known_id)
    if "code" in frame and "msg" in frame:
        return ErrorFrame(str(frame["code"])[:20], str(frame["msg"])[:200], known_id)
    if "result" in frame and known_id is not None:
        return Ack(known_id)
    raise FrameError("unknown_type", str(sorted(frame))[:80])


def _book_ticker(symbol: str, data: dict[str, Any], market: SymbolType) -> Tick:
    bid = exchange_price(data.get("b"), "b")
    ask = exchange_price(data.get("a"), "a")
    if bid is None or ask is None:
        raise FrameError("missing_fields", "b or a")
    if bid > ask:
        raise FrameError("bad_price", f"bid {bid} above ask {ask}")
    if not _whole(data.get("u")):  # not used, but a wrong one is a bad frame
        raise FrameError("missing_fields", f"u {data.get('u')!r}"[:80])
    time_ms = None
    if market is SymbolType.FUTURES:
        if data.get("e") != BOOK_TICKER or not _whole(data.get("E")):
            raise FrameError("missing_fields", "e or E")
        time_ms = data["E"]
    mid = mid_price(bid, ask)
    return Tick(symbol=symbol, price=mid, best_bid=bid, best_ask=ask, time_ms=time_ms,
                venue=Venue.BINANCE, symbol_type=market)


def _mark_price(symbol: str, data: dict[str, Any]) -> MarkPrice:
    if data.get("e") != "markPriceUpdate":
        raise FrameError("unknown_type", f"e {data.get('e')!r}"[:80])
    mark = exchange_price(data.get("p"), "p")
    rate = parse_decimal_string(data.get("r"))  # "" for a delivery contract
    next_funding, event = data.get("T"), data.get("E")
    if mark is None:
        raise FrameError("missing_fields", "p")
    if rate is None or abs(rate) >= 1:
        raise FrameError("bad_price", f"r {data.get('r')!r}"[:80])
    if not _whole(next_funding) or not _whole(event):
        raise FrameError("missing_fields", "T or E")
    assert isinstance(next_funding, int) and isinstance(event, int)
    return MarkPrice(symbol=symbol, mark_price=mark, funding_rate=rate,
                     next_funding_ms=next_funding, time_ms=event)


def _whole(raw: object) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool) and raw > 0
