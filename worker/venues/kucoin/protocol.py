"""KuCoin's public WebSocket protocol, Sans-I/O: messages out, frames in.

Spot: `/market/ticker:{symbols}` (subject `trade.ticker`: last trade price
plus best bid/ask). Futures: `/contractMarket/ticker:{symbol}` (subject
`ticker`): it carries the last trade price (conditions are detected on it)
and the best bid/ask at that trade (fills use them), in one topic per symbol.
`tickerV2` was not chosen: it has no last price, and pairing it with the
trade topic would double the topics per connection for little gain, since a
condition only changes when a trade prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cogmora_core.model import Tick
from cogmora_core.money import parse_number
from cogmora_core.venues import SymbolType, Venue
from worker.venues.base import FrameError, Funding, exchange_price, json_object

SPOT = "spot"
FUTURES = "futures"
SPOT_TICKER = "/market/ticker:"
FUTURES_TICKER = "/contractMarket/ticker:"
#: Futures funding settlements: subjects `funding.begin` / `funding.end` with
#: {symbol, fundingTime (ms), fundingRate, timestamp}.
FUNDING_TOPIC = "/contract/announcement:"
FUNDING_SUBJECTS = frozenset({"funding.begin", "funding.end"})
#: Symbols per subscribe message (KuCoin answers 509 past it).
MAX_SYMBOLS_PER_MESSAGE = 100


@dataclass(frozen=True, slots=True)
class Control:
    """A protocol frame that is not market data: welcome, pong, ack or error."""

    type: str
    id: str
    code: int | None = None
    data: Any = None


def subscribe_messages(market: str, symbols: list[str], op: str, ids: Iterator[int],
                       funding: bool = False) -> list[dict[str, Any]]:
    """Return the messages that (un)subscribe `symbols`, ≤ 100 symbols per spot message.

    Futures ticker topics take one symbol each; with `funding`, the futures
    funding-settlement topics of the symbols instead.
    """
    if funding:
        topics = [FUNDING_TOPIC + symbol for symbol in symbols] if market == FUTURES else []
    elif market == SPOT:
        batches = [symbols[i:i + MAX_SYMBOLS_PER_MESSAGE]
                   for i in range(0, len(symbols), MAX_SYMBOLS_PER_MESSAGE)]
        topics = [SPOT_TICKER + ",".join(batch) for batch in batches]
    else:
        topics = [FUTURES_TICKER + symbol for symbol in symbols]
    return [
        {"id": next(ids), "type": op, "topic": topic, "privateChannel": False,
         "response": True}
        for topic in topics
    ]


def symbols_of(message: dict[str, Any]) -> list[str]:
    """Return the symbols a (un)subscribe message names."""
    topic = str(message["topic"])
    return topic.split(":", 1)[1].split(",")


def ping_message(ping_id: int) -> dict[str, Any]:
    """Return a keep-alive ping."""
    return {"id": str(ping_id), "type": "ping"}


def parse_frame(raw: str | bytes, market: str) -> Tick | Funding | Control:
    """Return the tick or control frame in `raw`, or raise `FrameError`."""
    frame = json_object(raw)
    kind = frame.get("type")
    if kind == "message":
        topic = frame.get("topic")
        if market == FUTURES and isinstance(topic, str) and topic.startswith(FUNDING_TOPIC):
            return _parse_funding(frame)
        return _parse_ticker(frame, market)
    if kind in ("welcome", "pong", "ack", "error"):
        return Control(kind, str(frame.get("id", ""))[:64], _error_code(frame.get("code")),
                       frame.get("data"))
    raise FrameError("unknown_type", repr(kind)[:80])


def _error_code(code: object) -> int | None:
    """Return an error frame's code (a JSON integer or a string of ASCII digits), else None.

    `str.isdigit` also accepts digits `int` refuses (`"²"`): only ASCII digits count.
    """
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and 0 < len(code) <= 9 and code.isascii() and code.isdigit():
        return int(code)
    return None


def _parse_ticker(frame: dict[str, Any], market: str) -> Tick:
    topic = frame.get("topic")
    data = frame.get("data")
    if not isinstance(topic, str) or not isinstance(data, dict):
        raise FrameError("missing_fields", "topic or data")
    if market == SPOT:
        if not topic.startswith(SPOT_TICKER):
            raise FrameError("unknown_topic", topic[:80])
        symbol = topic[len(SPOT_TICKER):]
        if symbol == "all":
            symbol = frame.get("subject")  # type: ignore[assignment]
        bid, ask, time_ms = data.get("bestBid"), data.get("bestAsk"), data.get("time")
    else:
        if not topic.startswith(FUTURES_TICKER):
            raise FrameError("unknown_topic", topic[:80])
        symbol = topic[len(FUTURES_TICKER):]
        bid, ask = data.get("bestBidPrice"), data.get("bestAskPrice")
        ts = data.get("ts")
        time_ms = ts // 1_000_000 if isinstance(ts, int) else None
    if not isinstance(symbol, str) or not symbol or "," in symbol:
        raise FrameError("missing_fields", "symbol")
    price = exchange_price(data.get("price"), "price")
    if price is None:
        raise FrameError("missing_fields", "price")
    return Tick(
        symbol=symbol,
        price=price,
        best_bid=exchange_price(bid, "bestBid"),
        best_ask=exchange_price(ask, "bestAsk"),
        time_ms=time_ms if isinstance(time_ms, int) else None,
        venue=Venue.KUCOIN,
        symbol_type=SymbolType.SPOT if market == SPOT else SymbolType.FUTURES,
    )


def _parse_funding(frame: dict[str, Any]) -> Funding:
    data = frame.get("data")
    subject = frame.get("subject")
    if not (isinstance(subject, str) and subject in FUNDING_SUBJECTS and isinstance(data, dict)):
        raise FrameError("unknown_subject", str(frame.get("subject"))[:80])
    symbol = data.get("symbol")
    funding_time = data.get("fundingTime")
    rate = parse_number(data.get("fundingRate"))
    if not isinstance(symbol, str) or not symbol or symbol != frame["topic"].split(":", 1)[1]:
        raise FrameError("missing_fields", "symbol")
    if not isinstance(funding_time, int) or isinstance(funding_time, bool) or funding_time <= 0:
        raise FrameError("missing_fields", "fundingTime")
    if rate is None or abs(rate) >= 1:
        raise FrameError("bad_price", f"fundingRate {data.get('fundingRate')!r}"[:80])
    return Funding(symbol=symbol, rate=rate, funding_time_ms=funding_time)

