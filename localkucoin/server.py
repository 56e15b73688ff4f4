"""A local KuCoin market (spot or futures) on aiohttp, speaking the exchange's wire format.

REST: `POST /api/v1/bullet-public` answers a token and an instance server
(endpoint, pingInterval, pingTimeout) exactly as KuCoin does; the last
published ticker is served as spot `GET /api/v1/market/orderbook/level1` and
futures `GET /api/v1/ticker` (what the AI agent's risk check reads). WebSocket:
welcome, ping/pong, subscribe/unsubscribe with acks, 509 limits (per message,
per connection, and the uplink limit of 100 messages per 10 s), 404 unknown
topics, 401 bad tokens, ping timeouts, and ticker frames in KuCoin's shape.
Fault switches (methods, and `POST /_control/...` for other processes):
drop connections, close them cleanly, stall pongs, answer the token request
with 429 or 500, send error frames and garbage.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from localkucoin.serving import LocalServer, decimal_or_none, send_quietly, wire

SPOT_TOPIC = "/market/ticker:"
FUTURES_TOPIC = "/contractMarket/ticker:"
#: Futures funding settlements (subjects `funding.begin` and `funding.end`).
FUNDING_TOPIC = "/contract/announcement:"
#: KuCoin's uplink limit: 100 messages per 10 s on one connection (pings included);
#: a message beyond it is answered with error 509 and not carried out.
UPLINK_LIMIT, UPLINK_WINDOW = 100, 10.0


@dataclass(eq=False)
class Session:
    """One client connection."""

    ws: web.WebSocketResponse
    connect_id: str
    symbols: set[str] = field(default_factory=set)
    funding: set[str] = field(default_factory=set)
    last_ping: float = field(default_factory=time.monotonic)
    watchdog: asyncio.Task[None] | None = None
    #: When each of the connection's recent messages arrived (the uplink limit).
    sent: collections.deque[float] = field(default_factory=collections.deque)


class LocalKucoin(LocalServer):
    """One market of the local exchange (`spot` or `futures`)."""

    def __init__(
        self,
        market: str,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval_ms: int = 18000,
        ping_timeout_ms: int = 10000,
        topic_limit: int = 300,
        uplink_limit: int = UPLINK_LIMIT,
        uplink_window: float = UPLINK_WINDOW,
    ) -> None:
        super().__init__(host, port)
        #: Messages one connection may send per `uplink_window` seconds.
        self.uplink_limit, self.uplink_window = uplink_limit, uplink_window
        #: Messages refused for passing it (error 509, nothing done).
        self.refused_for_rate = 0
        self.market = market
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.topic_limit = topic_limit
        self.tokens: set[str] = set()
        self.token_failures: list[int] = []
        self.stall_pongs = False
        self.token_requests = 0
        self._sequence = itertools.count(1)
        #: The last ticker frame's data published for each symbol (the REST tickers).
        self.last_ticker: dict[str, dict[str, Any]] = {}
        #: Symbols this exchange does not list (every other well-formed one is listed).
        self.unlisted: set[str] = set()

    @property
    def topic_prefix(self) -> str:
        return SPOT_TOPIC if self.market == "spot" else FUTURES_TOPIC

    @property
    def base_url(self) -> str:
        """Return the REST base URL, the value of KUCOIN_SPOT_API / KUCOIN_FUTURES_API."""
        return f"http://{self.host}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/bullet-public", self._token),
            web.get("/api/v1/market/candles", self._spot_candles),
            web.get("/api/v1/kline/query", self._futures_candles),
            web.get("/api/v1/market/orderbook/level1", self._spot_level1),
            web.get("/api/v1/ticker", self._futures_ticker),
            web.get("/api/v2/symbols/{symbol}", self._spot_symbol),
            web.get("/api/v1/contracts/{symbol}", self._futures_contract),
            web.get("/endpoint", self._websocket),
        ]

    async def start(self) -> str:
        """Start serving; return the REST base URL."""
        await self.serve()
        return self.base_url

    # --- REST ---------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if self.token_failures:
            status = self.token_failures.pop(0)
            code = "429000" if status == 429 else "500000"
            return web.json_response({"code": code, "msg": "Too Many Requests"
                                      if status == 429 else "Internal Server Error"},
                                     status=status)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response({"code": "200000", "data": {
            "token": token,
            "instanceServers": [{
                "endpoint": f"ws://{self.host}:{self.port}/endpoint",
                "encrypt": False,
                "protocol": "websocket",
                "pingInterval": self.ping_interval_ms,
                "pingTimeout": self.ping_timeout_ms,
            }],
        }})

    async def _spot_candles(self, request: web.Request) -> web.Response:
        """`GET /api/v1/market/candles`: rows of strings [time s, open, close, high, low,
        volume, turnover], newest first."""
        query = request.query
        if self.market != "spot" or query.get("type") != "1min":
            return web.json_response({"code": "400100", "msg": "unsupported"}, status=400)
        rows = self.candles(query["symbol"], int(query["startAt"]) * 1000,
                            int(query["endAt"]) * 1000)[-1500:]
        data = [[str(start // 1000), wire(o), wire(c), wire(h), wire(low), str(n), wire(c * n)]
                for start, o, h, low, c, n in reversed(rows)]
        return web.json_response({"code": "200000", "data": data})

    async def _futures_candles(self, request: web.Request) -> web.Response:
        """`GET /api/v1/kline/query`: rows of numbers [time ms, open, high, low, close,
        volume], oldest first."""
        query = request.query
        if self.market != "futures" or query.get("granularity") != "1":
            return web.json_response({"code": "400100", "msg": "unsupported"}, status=400)
        rows = self.candles(query["symbol"], int(query["from"]), int(query["to"]))[-500:]
        data = [[start, float(o), float(h), float(low), float(c), n]
                for start, o, h, low, c, n in rows]
        return web.json_response({"code": "200000", "data": data})

    async def _spot_level1(self, request: web.Request) -> web.Response:
        """`GET /api/v1/market/orderbook/level1?symbol`: the last ticker, `data: null` before
        the first."""
        if self.market != "spot":
            return web.json_response({"code": "400100", "msg": "unsupported"}, status=400)
        return web.json_response({"code": "200000",
                                  "data": self.last_ticker.get(request.query.get("symbol", ""))})

    async def _futures_ticker(self, request: web.Request) -> web.Response:
        """`GET /api/v1/ticker?symbol`: the last ticker (ts in ns), `data: null` before the
        first."""
        if self.market != "futures":
            return web.json_response({"code": "400100", "msg": "unsupported"}, status=400)
        return web.json_response({"code": "200000",
                                  "data": self.last_ticker.get(request.query.get("symbol", ""))})

    async def _spot_symbol(self, request: web.Request) -> web.Response:
        """`GET /api/v2/symbols/{symbol}`: the symbol's detail, `data: null` when not listed."""
        symbol = request.match_info["symbol"]
        if self.market != "spot" or symbol in self.unlisted or "-" not in symbol:
            return web.json_response({"code": "200000", "data": None})
        base, quote = symbol.split("-", 1)
        return web.json_response({"code": "200000", "data": {
            "symbol": symbol, "name": symbol, "baseCurrency": base, "quoteCurrency": quote,
            "enableTrading": True}})

    async def _futures_contract(self, request: web.Request) -> web.Response:
        """`GET /api/v1/contracts/{symbol}`: the contract, `data: null` when not listed."""
        symbol = request.match_info["symbol"]
        if self.market != "futures" or symbol in self.unlisted or not symbol.endswith("M"):
            return web.json_response({"code": "200000", "data": None})
        return web.json_response({"code": "200000", "data": {
            "symbol": symbol, "rootSymbol": "USDT", "type": "FFWCSX", "status": "Open",
            "quoteCurrency": "USDT", "settleCurrency": "USDT"}})

    # --- WebSocket ----------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connect_id = request.query.get("connectId", "")
        if request.query.get("token") not in self.tokens:
            await self._send(ws, {"id": connect_id, "type": "error", "code": 401,
                                  "data": "token is invalid"})
            await ws.close()
            return ws
        self.connections += 1
        session = Session(ws, connect_id)
        self.sessions.add(session)
        session.watchdog = asyncio.create_task(self._watch_pings(session))
        await self._send(ws, {"id": connect_id, "type": "welcome"})
        try:
            await self.read_frames(session)
        finally:
            self.sessions.discard(session)
            if session.watchdog is not None:
                session.watchdog.cancel()
        return ws

    async def _watch_pings(self, session: Session) -> None:
        limit = (self.ping_interval_ms + self.ping_timeout_ms) / 1000
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            while not session.ws.closed:
                await asyncio.sleep(limit / 4)
                if time.monotonic() - session.last_ping > limit:
                    await self._send(session.ws, {"id": session.connect_id, "type": "error",
                                                  "code": 400, "data": "ping timeout"})
                    await session.ws.close()
                    return

    async def _on_message(self, session: Session, text: str) -> None:
        try:
            message = orjson.loads(text)
            kind = message["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._error(session, "", 415, "invalid command type")
            return
        message_id = str(message.get("id", ""))
        now = time.monotonic()
        while session.sent and now - session.sent[0] >= self.uplink_window:
            session.sent.popleft()
        session.sent.append(now)
        if len(session.sent) > self.uplink_limit:
            self.refused_for_rate += 1
            await self._error(session, message_id, 509, "exceed max permits per second")
            return
        if kind == "ping":
            session.last_ping = time.monotonic()
            if not self.stall_pongs:
                await self._send(session.ws, {"id": message_id, "type": "pong"})
        elif kind in ("subscribe", "unsubscribe"):
            self.subscribe_messages.append(message)
            await self._on_subscription(session, message, kind, message_id)
        else:
            await self._error(session, message_id, 415, "invalid command type")

    async def _on_subscription(self, session: Session, message: dict[str, Any], kind: str,
                               message_id: str) -> None:
        topic = message.get("topic")
        if not isinstance(topic, str) or not topic:
            await self._error(session, message_id, 406, "topic is required")
            return
        if self.market == "futures" and topic.startswith(FUNDING_TOPIC):
            symbol = topic[len(FUNDING_TOPIC):]
            (session.funding.add if kind == "subscribe" else session.funding.discard)(symbol)
            if message.get("response"):
                await self._send(session.ws, {"id": message_id, "type": "ack"})
            return
        if not topic.startswith(self.topic_prefix):
            await self._error(session, message_id, 404, f"topic {topic} is not found")
            return
        symbols = [s for s in topic[len(self.topic_prefix):].split(",") if s]
        if not symbols or (self.market == "futures" and len(symbols) != 1):
            await self._error(session, message_id, 404, f"topic {topic} is not found")
            return
        if len(symbols) > 100:
            await self._error(session, message_id, 509,
                              "exceed max subscription count limitation of 100 per time")
            return
        if kind == "subscribe":
            if len(session.symbols | set(symbols)) > self.topic_limit:
                await self._error(session, message_id, 509,
                                  f"exceed max topic count limitation of {self.topic_limit}")
                return
            session.symbols.update(symbols)
        else:
            session.symbols.difference_update(symbols)
        if message.get("response"):
            await self._send(session.ws, {"id": message_id, "type": "ack"})

    async def _error(self, session: Session, message_id: str, code: int, data: str) -> None:
        await self._send(session.ws, {"id": message_id, "type": "error", "code": code,
                                      "data": data})

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await send_quietly(ws, orjson.dumps(frame).decode())

    # --- market data --------------------------------------------------------

    def ticker_frame(self, symbol: str, price: Decimal, bid: Decimal | None = None,
                     ask: Decimal | None = None) -> dict[str, Any]:
        """Return a ticker frame for `symbol` exactly as KuCoin sends it."""
        sequence = next(self._sequence)
        bid = bid if bid is not None else price
        ask = ask if ask is not None else price
        now_ms = int(time.time() * 1000)
        if self.market == "spot":
            return {"topic": SPOT_TOPIC + symbol, "type": "message", "subject": "trade.ticker",
                    "data": {"bestAsk": wire(ask), "bestAskSize": "1.5", "bestBid": wire(bid),
                             "bestBidSize": "2.25", "price": wire(price),
                             "sequence": str(sequence), "size": "0.01", "time": now_ms}}
        return {"topic": FUTURES_TOPIC + symbol, "type": "message", "subject": "ticker",
                "sn": sequence,
                "data": {"symbol": symbol, "sequence": sequence, "side": "buy",
                         "price": wire(price),
                         "size": 1, "tradeId": f"{sequence:024x}", "bestBidSize": 10,
                         "bestBidPrice": wire(bid), "bestAskPrice": wire(ask), "bestAskSize": 12,
                         "ts": now_ms * 1_000_000}}

    async def publish(self, symbol: str, price: Decimal, bid: Decimal | None = None,
                      ask: Decimal | None = None) -> int:
        """Send a ticker to every connection subscribed to `symbol`; return how many.

        The trade is recorded for the candle endpoints whether anyone listens or not.
        """
        self.record(symbol, price)
        frame = self.ticker_frame(symbol, price, bid, ask)
        self.last_ticker[symbol] = frame["data"]
        text = orjson.dumps(frame).decode()
        receivers = [s for s in self.sessions if symbol in s.symbols and not s.ws.closed]
        for session in receivers:
            await send_quietly(session.ws, text)
        return len(receivers)

    async def publish_funding(self, symbol: str, rate: Decimal, funding_time_ms: int,
                              subject: str = "funding.begin") -> int:
        """Send a funding settlement (`/contract/announcement`) for `symbol`; return how many."""
        frame = {"topic": FUNDING_TOPIC + symbol, "type": "message", "subject": subject,
                 "data": {"symbol": symbol, "fundingTime": funding_time_ms,
                          "fundingRate": float(rate), "timestamp": int(time.time() * 1000)}}
        text = orjson.dumps(frame).decode()
        receivers = [s for s in self.sessions if symbol in s.funding and not s.ws.closed]
        for session in receivers:
            await send_quietly(session.ws, text)
        return len(receivers)

    def subscribed(self) -> set[str]:
        """Return every symbol some connection is subscribed to."""
        return set().union(*(s.symbols for s in self.sessions)) if self.sessions else set()

    # --- faults -------------------------------------------------------------

    def junk(self) -> list[str]:
        """Return bad JSON, unknown types and topics, and a bad price."""
        return [
            "{not json", "[]", '{"type":"surprise"}',
            orjson.dumps({"type": "message", "topic": "/market/level2:BTC-USDT",
                          "data": {}}).decode(),
            orjson.dumps({"type": "message", "topic": self.topic_prefix + "XBTUSDTM",
                          "data": {"price": "-1"}}).decode(),
        ]

    async def send_error_frames(self) -> None:
        """Send unsolicited error frames (a 509 and a 500) to every connection."""
        for session in list(self.sessions):
            await self._error(session, "0", 509, "service busy, please retry later")
            await self._error(session, "0", 500, "system error")

    async def control(self, action: str, body: dict[str, Any]) -> web.Response | None:
        if action == "tick":
            sent = await self.publish(body["symbol"], Decimal(str(body["price"])),
                                      decimal_or_none(body.get("bid")),
                                      decimal_or_none(body.get("ask")))
            return web.json_response({"sent": sent})
        if action == "funding":
            sent = await self.publish_funding(body["symbol"], Decimal(str(body["rate"])),
                                              int(body["fundingTime"]),
                                              body.get("subject", "funding.begin"))
            return web.json_response({"sent": sent})
        if action == "state":
            latest = getattr(self, "latest", {})
            return web.json_response({"subscribed": sorted(self.subscribed()),
                                      "prices": {s: str(q.price) for s, q in latest.items()},
                                      "connections": self.connections,
                                      "open": len(self.sessions),
                                      "tokenRequests": self.token_requests})
        if action == "stall_pongs":
            self.stall_pongs = bool(body.get("on", True))
        elif action == "token_failures":
            self.token_failures.extend(int(c) for c in body.get("codes", []))
        elif action == "errors":
            await self.send_error_frames()
        else:
            return None
        return web.json_response({"ok": True})
