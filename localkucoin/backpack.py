"""A local Backpack market-data WebSocket on aiohttp, speaking the exchange's wire format.

WebSocket at `/` (the value of BACKPACK_WS_URL is `ws://host:port`):
`{"method":"SUBSCRIBE"|"UNSUBSCRIBE","params":[streams]}`, no acknowledgement;
streams `bookTicker.<symbol>` and `markPrice.<symbol>`; data frames
`{"data":{…},"stream":"<name>"}` exactly as recorded from Backpack (prices as
strings, `u` an integer, `E`/`T` in microseconds, `n` in milliseconds). The
server pings every `ping_interval` seconds and drops a client that does not
answer. REST at the same address (the value of BACKPACK_API): `GET
/api/v1/klines` answers one-minute candles of the mid prices published, in
Backpack's shape, for gap recovery. Fault switches (methods, and `POST
/_control/...` for other processes): drop connections, close them cleanly,
send garbage.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from localkucoin.serving import CANDLE_MS, LocalServer, decimal_or_none, send_quietly, wire

STREAM_KINDS = ("bookTicker", "markPrice")
SYMBOL = re.compile(r"[A-Z0-9]{1,20}_[A-Z0-9]{1,20}(_PERP)?")
#: Klines per answer at most; the worker pages past it.
KLINE_ROWS = 1000


@dataclass(eq=False)
class BackpackSession:
    """One client connection and the streams it subscribed."""

    ws: web.WebSocketResponse
    streams: set[str] = field(default_factory=set)


class LocalBackpack(LocalServer):
    """Backpack's public market-data stream, for spot (`X_USDC`) and perpetuals (`X_USDC_PERP`)."""

    close_message = b"server shutting down"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 ping_interval: float = 60.0) -> None:
        super().__init__(host, port)
        self.ping_interval = ping_interval
        self._update_ids = itertools.count(6932035996)
        #: Symbols this exchange does not list (every other well-formed one is listed).
        self.unlisted: set[str] = set()

    @property
    def ws_url(self) -> str:
        """Return the WebSocket URL, the value of BACKPACK_WS_URL."""
        return f"ws://{self.host}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self._websocket), web.get("/api/v1/klines", self._klines),
                web.get("/api/v1/market", self._market)]

    # --- REST ---------------------------------------------------------------

    async def _market(self, request: web.Request) -> web.Response:
        """`GET /api/v1/market?symbol`: the market, or 404 when it is not listed."""
        symbol = request.query.get("symbol", "")
        if symbol in self.unlisted or "_" not in symbol:
            return web.json_response({"code": "RESOURCE_NOT_FOUND",
                                      "message": "Market not found"}, status=404)
        base, quote = symbol.split("_", 2)[:2]
        return web.json_response({
            "symbol": symbol, "baseSymbol": base, "quoteSymbol": quote,
            "marketType": "PERP" if symbol.endswith("_PERP") else "SPOT",
            "orderBookState": "Open"})

    async def _klines(self, request: web.Request) -> web.Response:
        """`GET /api/v1/klines?symbol&interval=1m&startTime=<s>[&endTime=<s>]`: objects with
        `start`/`end` as UTC "YYYY-MM-DD HH:MM:SS" and prices as strings, oldest first."""
        query = request.query
        try:
            symbol, start_s = query["symbol"], int(query["startTime"])
            end_s = int(query.get("endTime", time.time()))
        except (KeyError, ValueError):
            return _client_error("symbol and startTime (seconds) are required")
        if not SYMBOL.fullmatch(symbol):
            return _client_error(f"Invalid symbol {symbol[:40]!r}")
        if query.get("interval") != "1m":
            return _client_error(f"interval {query.get('interval')!r} is not served here")
        rows = self.candles(symbol, start_s * 1000, end_s * 1000)[:KLINE_ROWS]
        return web.json_response([
            {"start": _utc(start), "end": _utc(start + CANDLE_MS), "open": wire(o),
             "high": wire(h), "low": wire(low), "close": wire(c), "volume": str(n),
             "quoteVolume": wire(c * n), "trades": str(n)}
            for start, o, h, low, c, n in rows])

    async def start(self) -> str:
        """Start serving; return the WebSocket URL."""
        await self.serve()
        return self.ws_url

    # --- WebSocket ----------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        # heartbeat: a ping every interval; no pong within half of it closes the socket.
        ws = web.WebSocketResponse(autoping=True, heartbeat=self.ping_interval)
        await ws.prepare(request)
        self.connections += 1
        session = BackpackSession(ws)
        self.sessions.add(session)
        try:
            await self.read_frames(session)
        finally:
            self.sessions.discard(session)
        return ws

    async def _on_message(self, session: BackpackSession, text: str) -> None:
        try:
            message = orjson.loads(text)
            method, params = message["method"], message["params"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._error(session, "INVALID_CLIENT_REQUEST", "Invalid request")
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            await self._error(session, "INVALID_CLIENT_REQUEST", f"Invalid method {method}")
            return
        self.subscribe_messages.append(message)
        streams = [p for p in params if isinstance(p, str)]
        unknown = [s for s in streams if s.partition(".")[0] not in STREAM_KINDS
                   or not s.partition(".")[2]]
        if unknown:
            await self._error(session, "INVALID_CLIENT_REQUEST", f"Invalid stream {unknown[0]}")
            return
        if method == "SUBSCRIBE":
            session.streams.update(streams)
        else:
            session.streams.difference_update(streams)

    @staticmethod
    async def _error(session: BackpackSession, code: str, message: str) -> None:
        await send_quietly(session.ws, orjson.dumps(
            {"id": None, "error": {"code": code, "message": message}}).decode())

    # --- market data --------------------------------------------------------

    def book_ticker_frame(self, symbol: str, bid: Decimal, ask: Decimal) -> dict[str, Any]:
        """Return a bookTicker frame for `symbol` exactly as Backpack sends it."""
        now_us = time.time_ns() // 1000
        return {"data": {"A": "1.28080", "B": "3.08745", "E": now_us, "T": now_us - 348,
                         "a": wire(ask), "b": wire(bid), "e": "bookTicker", "s": symbol,
                         "u": next(self._update_ids)},
                "stream": f"bookTicker.{symbol}"}

    @staticmethod
    def mark_price_frame(symbol: str, mark: Decimal, funding_rate: Decimal,
                         next_funding_ms: int, index: Decimal | None = None) -> dict[str, Any]:
        """Return a markPrice frame for `symbol` exactly as Backpack sends it."""
        now_us = time.time_ns() // 1000
        return {"data": {"E": now_us, "T": now_us - 472, "e": "markPrice",
                         "f": wire(funding_rate), "i": wire(index if index is not None else mark),
                         "n": next_funding_ms, "p": wire(mark), "s": symbol},
                "stream": f"markPrice.{symbol}"}

    async def publish(self, symbol: str, price: Decimal, bid: Decimal | None = None,
                      ask: Decimal | None = None) -> int:
        """Send a bookTicker to every connection subscribed to it; return how many.

        bookTicker has no last price: `price` stands for a missing bid or ask. The
        mid price is recorded, connected clients or not, for the klines endpoint.
        """
        bid = bid if bid is not None else price
        ask = ask if ask is not None else price
        self.record(symbol, (bid + ask) / 2)  # the condition price, for the candles
        return await self._broadcast(self.book_ticker_frame(symbol, bid, ask))

    async def publish_mark(self, symbol: str, mark: Decimal, funding_rate: Decimal,
                           next_funding_ms: int) -> int:
        """Send a markPrice to every connection subscribed to it; return how many."""
        return await self._broadcast(
            self.mark_price_frame(symbol, mark, funding_rate, next_funding_ms))

    async def _broadcast(self, frame: dict[str, Any]) -> int:
        text = orjson.dumps(frame).decode()
        receivers = [s for s in self.sessions if frame["stream"] in s.streams
                     and not s.ws.closed]
        for session in receivers:
            await send_quietly(session.ws, text)
        return len(receivers)

    def subscribed(self) -> set[str]:
        """Return every symbol whose bookTicker some connection is subscribed to."""
        return {s.partition(".")[2] for s in self.streams() if s.startswith("bookTicker.")}

    def streams(self) -> set[str]:
        """Return every stream some connection is subscribed to."""
        return set().union(*(s.streams for s in self.sessions)) if self.sessions else set()

    # --- faults -------------------------------------------------------------

    def junk(self) -> list[str]:
        """Return bad JSON, unknown streams, bad prices and an error frame."""
        return [
            "{not json", "[]", '{"result":null}',
            '{"stream":"depth.SOL_USDC","data":{"s":"SOL_USDC"}}',
            '{"stream":"bookTicker.SOL_USDC","data":{"s":"SOL_USDC","a":"-1","b":"1"}}',
            '{"id":null,"error":{"code":"INVALID_CLIENT_REQUEST","message":"junk"}}',
        ]

    async def control(self, action: str, body: dict[str, Any]) -> web.Response | None:
        if action == "tick":
            price = decimal_or_none(body.get("price"))
            bid = decimal_or_none(body.get("bid")) or price
            ask = decimal_or_none(body.get("ask")) or price
            if bid is None or ask is None:
                raise web.HTTPBadRequest(text="tick needs bid and ask (or price)")
            sent = await self.publish(body["symbol"], bid, bid, ask)
            return web.json_response({"sent": sent})
        if action == "mark":
            sent = await self.publish_mark(body["symbol"], Decimal(str(body["price"])),
                                           Decimal(str(body.get("fundingRate", "0"))),
                                           int(body.get("nextFundingMs", 0)))
            return web.json_response({"sent": sent})
        if action == "state":
            return web.json_response({"streams": sorted(self.streams()),
                                      "connections": self.connections,
                                      "open": len(self.sessions)})
        return None


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _client_error(message: str) -> web.Response:
    return web.json_response({"code": "INVALID_CLIENT_REQUEST", "message": message},
                             status=400)
