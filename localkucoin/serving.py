"""What every local exchange server shares: serving on aiohttp, its connections, faults.

A server lists its routes and its own control actions; this base starts and
stops it, keeps the open connections, cuts or closes them, sends raw frames,
and answers the control actions every server has (`drop`, `close`,
`garbage`) at `POST /_control/{action}`.
"""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

#: Candles are one minute, as the worker asks for them.
CANDLE_MS = 60_000
#: A candle: start (ms), open, high, low, close, number of prices in it.
Candle = tuple[int, Decimal, Decimal, Decimal, Decimal, int]


class LocalServer:
    """An aiohttp server of WebSocket connections with fault switches."""

    #: The message a clean close (`close_connections`) sends with its code.
    close_message = b"server restarting"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        #: The open connections: the server's own session objects, each with a `ws`.
        self.sessions: set[Any] = set()
        #: Connections accepted since the start.
        self.connections = 0
        #: Every subscribe or unsubscribe message received, in order.
        self.subscribe_messages: list[dict[str, Any]] = []
        #: Every published price (ms, price) by symbol, connected clients or not:
        #: the source of the candle endpoints.
        self.trades: dict[str, list[tuple[int, Decimal]]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """Return the HTTP base URL (REST and control endpoints)."""
        return f"http://{self.host}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        """Return the server's own routes (the control route is added to them)."""
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([*self.routes(), web.post("/_control/{action}", self._control)])
        return app

    async def serve(self) -> None:
        """Start serving; an ephemeral port (0) is replaced by the one bound."""
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection and stop serving."""
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- connections --------------------------------------------------------

    async def read_frames(self, session: Any) -> None:
        """Hand each text frame of `session` to `_on_message` until the connection ends."""
        async for message in session.ws:
            if message.type == WSMsgType.TEXT:
                await self._on_message(session, message.data)
            elif message.type == WSMsgType.ERROR:
                break

    async def _on_message(self, session: Any, text: str) -> None:
        """Answer one text frame of a client (each server speaks its own protocol)."""
        raise NotImplementedError

    # --- candles ------------------------------------------------------------

    def record(self, symbol: str, price: Decimal) -> None:
        """Remember a published price, now, for the candle endpoint."""
        self.trades.setdefault(symbol, []).append((int(time.time() * 1000), price))

    def candles(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Return the one-minute candles overlapping [start_ms, end_ms], oldest first."""
        buckets: dict[int, list[Decimal]] = {}
        for at, price in self.trades.get(symbol, []):
            start = at - at % CANDLE_MS
            if start_ms <= start + CANDLE_MS - 1 and start <= end_ms:
                buckets.setdefault(start, []).append(price)
        return [(start, prices[0], max(prices), min(prices), prices[-1], len(prices))
                for start, prices in sorted(buckets.items())]

    # --- faults -------------------------------------------------------------

    async def drop_connections(self) -> None:
        """Cut every connection abruptly (no close handshake)."""
        for session in list(self.sessions):
            transport = session.ws._req.transport if session.ws._req else None
            if transport is not None:
                transport.abort()
            self.sessions.discard(session)

    async def close_connections(self, code: int = 1001) -> None:
        """Close every connection cleanly, as a server restart does."""
        for session in list(self.sessions):
            await session.ws.close(code=code, message=self.close_message)

    async def send_raw(self, text: str) -> int:
        """Send one text frame, exactly as given, to every connection; return how many."""
        sessions = list(self.sessions)
        for session in sessions:
            await send_quietly(session.ws, text)
        return len(sessions)

    def junk(self) -> list[str]:
        """Return the frames `send_garbage` sends: ones no client can use."""
        raise NotImplementedError

    async def send_garbage(self) -> None:
        """Send every connection frames no client can use (see `junk`)."""
        for text in self.junk():
            await self.send_raw(text)

    async def control(self, action: str, body: dict[str, Any]) -> web.Response | None:
        """Run one of the server's own control actions; None when it has no such action."""
        return None

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        answer = await self.control(action, body)
        if answer is not None:
            return answer
        if action == "drop":
            await self.drop_connections()
        elif action == "close":
            await self.close_connections()
        elif action == "garbage":
            await self.send_garbage()
        else:
            raise web.HTTPNotFound(text=f"no control action {action}")
        return web.json_response({"ok": True})


async def send_quietly(ws: web.WebSocketResponse, text: str) -> None:
    """Send a text frame; a connection that went away meanwhile is not an error."""
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_str(text)


def wire(value: Decimal) -> str:
    """Return a decimal as the exchanges write numbers: plain digits, never exponents."""
    return format(value, "f")


def decimal_or_none(value: object) -> Decimal | None:
    """Return a JSON number or string as a Decimal (None stays None)."""
    return Decimal(str(value)) if value is not None else None
