"""Whether Backpack lists a symbol: `GET /api/v1/market?symbol=` (`orderBookState` open)."""

from __future__ import annotations

import httpx

from worker.venues.base import raise_if_busy


def backpack_listed(symbol: str, body: object) -> bool:
    """Return whether a Backpack market answer says `symbol` is listed with an open book."""
    if not isinstance(body, dict) or body.get("symbol") != symbol:
        return False
    return body.get("orderBookState") in ("Open", "PostOnly", "LimitOnly")


async def lookup(client: httpx.AsyncClient, api: str, symbol: str) -> bool:
    """Ask Backpack whether it lists `symbol`; raise when it cannot say (busy, failing)."""
    response = await client.get(f"{api}/api/v1/market", params={"symbol": symbol})
    raise_if_busy(response)
    body = response.json() if response.status_code == 200 else None
    return backpack_listed(symbol, body)
