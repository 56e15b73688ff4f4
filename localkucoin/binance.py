"""A local Binance market (spot or USDⓈ-M futures) on aiohttp, speaking the exchange's wire format.

Taken from Binance's published documentation (spot: web-socket-streams.md and
rest-api.md of binance/binance-spot-api-docs; futures: developers.binance.com,
USDⓈ-M "Websocket Market Streams" and "Market Data" REST), never recorded from
the live exchange; what could not be checked offline is listed in
`worker/venues/binance/__init__.py`.

WebSocket, combined streams (`{"stream": name, "data": payload}`): spot at
`/stream`; futures at `/public/stream` (bookTicker) and `/market/stream`
(markPrice), with unrouted `/stream` serving the public streams only. A stream
sent to the route that does not carry it is acknowledged and pushes nothing.
Streams may be named in the URL (`?streams=a/b`) or by
`{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS", "params": [...],
"id": n}`, answered `{"result": null, "id": n}`; refused requests are answered
`{"error": {"code": 2|3, "msg": …}, "id": n}` (an invalid stream, an unknown
method, a bad id, invalid JSON, more streams than a connection holds). A
connection sending more control messages a second than the market allows
(spot 5, futures 10) is cut, and every connection is closed at its lifetime's
end (24 h; shorter in tests). The server pings (spot every 20 s, futures
every 3 min) and drops a client that does not answer.

Frames exactly as Binance documents them: spot bookTicker `{u, s, b, B, a, A}`
(no event type or time), futures bookTicker `{e, u, E, T, s, b, B, a, A}`,
futures markPrice `{e: "markPriceUpdate", E, s, p, i, P, r, T}`; prices as
strings, times in milliseconds; `!serverShutdown` before a shutdown.

REST at the same address: spot `GET /api/v3/klines` and
`/api/v3/exchangeInfo?symbol=` (HTTP 400 `{"code": -1121, "msg": "Invalid
symbol."}` for a symbol it does not list); futures `GET /fapi/v1/klines` and
`/fapi/v1/exchangeInfo` (every contract: the perpetuals in `perpetuals`, one
quarterly contract and one perpetual that is not trading). Klines are of the
mid prices published. `unlisted` holds symbols neither market lists.

Fault switches (methods, and `POST /_control/...` for other processes):
`drop`, `close`, `garbage`, `shutdown` (a `serverShutdown` then a close),
`tick`, `mark`, `list` (a perpetual), `unlist`, `state`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from localkucoin.serving import CANDLE_MS, LocalServer, decimal_or_none, send_quietly, wire

SPOT, FUTURES = "spot", "futures"
SYMBOL = re.compile(r"[A-Z0-9]{1,20}USDT")
STREAM = re.compile(r"([a-z0-9]{1,30})@(bookTicker|markPrice|markPrice@1s)")
#: Which futures route carries which stream kind (unrouted `/stream` is public).
ROUTE_OF_KIND = {"bookTicker": "public", "markPrice": "market", "markPrice@1s": "market"}
STREAM_LIMITS = {SPOT: 1024, FUTURES: 200}
MESSAGE_LIMITS = {SPOT: 5, FUTURES: 10}
PING_SECONDS = {SPOT: 20.0, FUTURES: 180.0}
KLINE_ROWS = {SPOT: 1000, FUTURES: 1500}
PERPETUALS = {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


@dataclass(eq=False)
class BinanceSession:
    """One client connection: its route and the streams it subscribed."""

    ws: web.WebSocketResponse
    route: str
    streams: set[str] = field(default_factory=set)
    sent: list[float] = field(default_factory=list)


class LocalBinance(LocalServer):
    """One Binance market of the local exchange (`spot` or `futures`)."""

    close_message = b"server restarting"

    def __init__(self, market: str, host: str = "127.0.0.1", port: int = 0,
                 ping_interval: float | None = None, lifetime: float = 24 * 3600,
                 stream_limit: int | None = None, message_limit: int | None = None) -> None:
        super().__init__(host, port)
        self.market = market
        self.ping_interval = ping_interval or PING_SECONDS[market]
        self.lifetime = lifetime
        self.stream_limit = stream_limit or STREAM_LIMITS[market]
        self.message_limit = message_limit or MESSAGE_LIMITS[market]
        self._update_ids = itertools.count(400900217)
        #: Symbols this market does not list (every other well-formed spot symbol is listed).
        self.unlisted: set[str] = set()
        #: The perpetuals futures exchangeInfo lists (it names every contract; publishing lists).
        self.perpetuals: set[str] = set(PERPETUALS)
        #: Connections cut for sending too many messages.
        self.cut_for_rate = 0

    @property
    def ws_url(self) -> str:
        """Return the WebSocket host, the value of BINANCE_SPOT_WS or BINANCE_FUTURES_WS."""
        return f"ws://{self.host}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        if self.market == SPOT:
            return [web.get("/stream", self._websocket),
                    web.get("/api/v3/klines", self._klines),
                    web.get("/api/v3/exchangeInfo", self._spot_exchange_info)]
        return [web.get("/stream", self._websocket), web.get("/public/stream", self._websocket),
                web.get("/market/stream", self._websocket),
                web.get("/fapi/v1/klines", self._klines),
                web.get("/fapi/v1/exchangeInfo", self._futures_exchange_info)]

    async def start(self) -> str:
        """Start serving; return the WebSocket host."""
        await self.serve()
        return self.ws_url

    def listed(self, symbol: str) -> bool:
        """Return whether this market lists `symbol` and trades it."""
        if symbol in self.unlisted or not SYMBOL.fullmatch(symbol):
            return False
        return self.market == SPOT or symbol in self.perpetuals

    # --- REST ---------------------------------------------------------------

    async def _spot_exchange_info(self, request: web.Request) -> web.Response:
        """`GET /api/v3/exchangeInfo?symbol=`: the symbol, or 400 -1121 when not listed."""
        symbol = request.query.get("symbol")
        if symbol is None:
            names = sorted(s for s in self.trades if self.listed(s))
        elif not self.listed(symbol):
            return _invalid_symbol()
        else:
            names = [symbol]
        return web.json_response({
            "timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [{"symbol": s, "status": "TRADING", "baseAsset": s[:-4],
                         "baseAssetPrecision": 8, "quoteAsset": "USDT", "quotePrecision": 8,
                         "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                         "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                         "filters": [], "permissions": [], "permissionSets": [["SPOT"]]}
                        for s in names]})

    async def _futures_exchange_info(self, request: web.Request) -> web.Response:
        """`GET /fapi/v1/exchangeInfo`: every contract (it takes no symbol)."""
        def contract(symbol: str, contract_type: str, status: str) -> dict[str, Any]:
            pair = symbol.split("_")[0]
            return {"symbol": symbol, "pair": pair, "contractType": contract_type,
                    "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
                    "status": status, "baseAsset": pair[:-4], "quoteAsset": "USDT",
                    "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3,
                    "underlyingType": "COIN", "filters": []}

        symbols = [contract(s, "PERPETUAL", "TRADING")
                   for s in sorted(self.perpetuals - self.unlisted)]
        symbols += [contract("BTCUSDT_260925", "CURRENT_QUARTER", "TRADING"),
                    contract("OLDUSDT", "PERPETUAL", "SETTLING")]
        return web.json_response({
            "timezone": "UTC", "serverTime": int(time.time() * 1000), "futuresType": "U_MARGINED",
            "rateLimits": [], "exchangeFilters": [], "assets": [], "symbols": symbols})

    async def _klines(self, request: web.Request) -> web.Response:
        """`GET …/klines?symbol&interval=1m[&startTime][&endTime][&limit]` (times in ms)."""
        query = request.query
        symbol = query.get("symbol", "")
        if not self.listed(symbol):
            return _invalid_symbol()
        if query.get("interval") != "1m":
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        try:
            limit = int(query.get("limit", "500"))
            end_ms = int(query.get("endTime", time.time() * 1000))
            start_ms = int(query.get("startTime", end_ms - limit * CANDLE_MS))
        except ValueError:
            return web.json_response({"code": -1100, "msg": "Illegal characters found in a "
                                      "parameter."}, status=400)
        if not 1 <= limit <= KLINE_ROWS[self.market]:
            return web.json_response({"code": -1130, "msg": "Invalid data sent for a parameter."},
                                     status=400)
        rows = [row for row in self.candles(symbol, start_ms, end_ms)
                if start_ms <= row[0] + CANDLE_MS - 1][:limit]
        return web.json_response([
            [start, wire(o), wire(h), wire(low), wire(c), str(n), start + CANDLE_MS - 1,
             wire(c * n), n, str(n), wire(c * n), "0"]
            for start, o, h, low, c, n in rows])

    # --- WebSocket ----------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=self.ping_interval)
        await ws.prepare(request)
        self.connections += 1
        path = request.path
        route = "spot" if self.market == SPOT else (
            "market" if path.startswith("/market") else "public")
        session = BinanceSession(ws, route)
        named = [s for s in request.query.get("streams", "").split("/") if s]
        session.streams.update(s for s in named if STREAM.fullmatch(s))
        self.sessions.add(session)
        lifetime = asyncio.get_running_loop().call_later(
            self.lifetime, lambda: asyncio.ensure_future(
                ws.close(code=1000, message=b"connection lifetime reached")))
        try:
            await self.read_frames(session)
        finally:
            lifetime.cancel()
            self.sessions.discard(session)
        return ws

    async def _on_message(self, session: BinanceSession, text: str) -> None:
        now = time.monotonic()
        session.sent = [t for t in session.sent if now - t < 1.0] + [now]
        if len(session.sent) > self.message_limit:
            self.cut_for_rate += 1
            await session.ws.close(code=1008, message=b"Too many requests")
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._error(session, 3, "Invalid JSON: expected value at line 1 column 1", None)
            return
        if not isinstance(message, dict):
            await self._error(session, 2, "Invalid request: expected an object", None)
            return
        request_id = message.get("id")
        if not _valid_id(request_id):
            await self._error(session, 2, "Invalid request: request ID must be an unsigned "
                              "integer", None)
            return
        method, params = message.get("method"), message.get("params", [])
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS"):
            await self._error(session, 2, f"Invalid request: unknown variant {method!r}"[:120],
                              request_id)
            return
        self.subscribe_messages.append(message)
        if method == "LIST_SUBSCRIPTIONS":
            await self._answer(session, {"result": sorted(session.streams), "id": request_id})
            return
        if not isinstance(params, list) or not all(
                isinstance(p, str) and self._valid_stream(p) for p in params):
            await self._error(session, 2, "Invalid request: invalid stream", request_id)
            return
        if method == "SUBSCRIBE":
            if len(session.streams | set(params)) > self.stream_limit:
                await self._error(session, 2, "Invalid request: too many streams", request_id)
                return
            session.streams.update(params)
        else:
            session.streams.difference_update(params)
        await self._answer(session, {"result": None, "id": request_id})

    def _valid_stream(self, stream: str) -> bool:
        match = STREAM.fullmatch(stream)
        return match is not None and (self.market == FUTURES or match.group(2) == "bookTicker")

    @staticmethod
    async def _answer(session: BinanceSession, body: dict[str, Any]) -> None:
        await send_quietly(session.ws, orjson.dumps(body).decode())

    @staticmethod
    async def _error(session: BinanceSession, code: int, message: str,
                     request_id: object) -> None:
        await send_quietly(session.ws, orjson.dumps(
            {"error": {"code": code, "msg": message}, "id": request_id}).decode())

    # --- market data --------------------------------------------------------

    def book_ticker_frame(self, symbol: str, bid: Decimal, ask: Decimal) -> dict[str, Any]:
        """Return a bookTicker frame for `symbol` exactly as this market sends it."""
        data: dict[str, Any] = {"u": next(self._update_ids), "s": symbol, "b": wire(bid),
                                "B": "31.21000000", "a": wire(ask), "A": "40.66000000"}
        if self.market == FUTURES:
            now = int(time.time() * 1000)
            data = {"e": "bookTicker", "u": data["u"], "E": now, "T": now - 2, "s": symbol,
                    "b": data["b"], "B": data["B"], "a": data["a"], "A": data["A"]}
        return {"stream": f"{symbol.lower()}@bookTicker", "data": data}

    @staticmethod
    def mark_price_frame(symbol: str, mark: Decimal, funding_rate: Decimal,
                         next_funding_ms: int, speed: str = "@1s") -> dict[str, Any]:
        """Return a markPrice frame for a perpetual exactly as Binance sends it."""
        return {"stream": f"{symbol.lower()}@markPrice{speed}",
                "data": {"e": "markPriceUpdate", "E": int(time.time() * 1000), "s": symbol,
                         "p": wire(mark), "i": wire(mark), "P": wire(mark),
                         "r": wire(funding_rate), "T": next_funding_ms}}

    async def publish(self, symbol: str, price: Decimal, bid: Decimal | None = None,
                      ask: Decimal | None = None) -> int:
        """Send a bookTicker to every connection subscribed to it; return how many.

        bookTicker has no last price: `price` stands for a missing bid or ask.
        The mid price is recorded, connected clients or not, for the klines;
        a perpetual published is listed.
        """
        bid = bid if bid is not None else price
        ask = ask if ask is not None else price
        if self.market == FUTURES and symbol not in self.unlisted:
            self.perpetuals.add(symbol)
        self.record(symbol, (bid + ask) / 2)
        return await self._broadcast(self.book_ticker_frame(symbol, bid, ask))

    async def publish_mark(self, symbol: str, mark: Decimal, funding_rate: Decimal,
                           next_funding_ms: int) -> int:
        """Send a markPrice (both speeds) to every connection subscribed to it; return how many."""
        sent = 0
        for speed in ("@1s", ""):
            sent += await self._broadcast(
                self.mark_price_frame(symbol, mark, funding_rate, next_funding_ms, speed))
        return sent

    async def _broadcast(self, frame: dict[str, Any]) -> int:
        stream = frame["stream"]
        route = ROUTE_OF_KIND[stream.partition("@")[2]] if self.market == FUTURES else "spot"
        text = orjson.dumps(frame).decode()
        receivers = [s for s in self.sessions if stream in s.streams and s.route == route
                     and not s.ws.closed]
        for session in receivers:
            await send_quietly(session.ws, text)
        return len(receivers)

    def subscribed(self) -> set[str]:
        """Return every symbol (upper case) whose bookTicker some connection subscribed."""
        return {s.partition("@")[0].upper() for s in self.streams()
                if s.endswith("@bookTicker")}

    def streams(self) -> set[str]:
        """Return every stream some connection is subscribed to."""
        return set().union(*(s.streams for s in self.sessions)) if self.sessions else set()

    # --- faults -------------------------------------------------------------

    def junk(self) -> list[str]:
        """Return bad JSON, unknown streams, bad prices and an error frame."""
        return [
            "{not json", "[]", '{"result":null}',
            '{"stream":"btcusdt@depth","data":{"s":"BTCUSDT"}}',
            '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","a":"-1"}}',
            '{"error":{"code":2,"msg":"Invalid request: junk"},"id":null}',
        ]

    async def shutdown_notice(self, grace: float = 0.2) -> None:
        """Announce a shutdown to every connection, then close them."""
        frame = {"stream": "!serverShutdown",
                 "data": {"e": "serverShutdown", "E": int(time.time() * 1000)}}
        notified = list(self.sessions)
        for session in notified:
            await send_quietly(session.ws, orjson.dumps(frame).decode())
        await asyncio.sleep(grace)
        for session in notified:  # connections opened since are not going down
            await session.ws.close(code=1001, message=self.close_message)

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
        if action == "list":
            self.perpetuals.add(str(body["symbol"]))
            self.unlisted.discard(str(body["symbol"]))
            return web.json_response({"ok": True})
        if action == "unlist":
            self.unlisted.add(str(body["symbol"]))
            return web.json_response({"ok": True})
        if action == "shutdown":
            await self.shutdown_notice()
            return web.json_response({"ok": True})
        if action == "state":
            return web.json_response({"streams": sorted(self.streams()),
                                      "connections": self.connections,
                                      "open": len(self.sessions)})
        return None


def _valid_id(raw: object) -> bool:
    """Return whether `raw` is a request id Binance takes: an integer, a short
    alphanumeric string, or null."""
    if raw is None:
        return True
    if isinstance(raw, int) and not isinstance(raw, bool):
        return -2**63 <= raw < 2**63
    return isinstance(raw, str) and len(raw) <= 36 and raw.isascii() and raw.isalnum()


def _invalid_symbol() -> web.Response:
    return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
