"""Whether KuCoin lists a symbol: spot `GET /api/v2/symbols/{symbol}` (`data.enableTrading`),
futures `GET /api/v1/contracts/{symbol}` (`data.status == "Open"`)."""

from __future__ import annotations

import httpx

from cogmora_core.venues import SymbolType
from worker.venues.base import raise_if_busy


def kucoin_listed(market: str, symbol: str, body: object) -> bool:
    """Return whether a KuCoin symbol-detail answer says `symbol` is listed and trading."""
    if not isinstance(body, dict) or body.get("code") != "200000":
        return False
    data = body.get("data")
    if not isinstance(data, dict) or data.get("symbol") != symbol:
        return False
    if market == SymbolType.SPOT:
        return data.get("enableTrading") is True
    return data.get("status") == "Open"


async def lookup(client: httpx.AsyncClient, api: str, market: SymbolType, symbol: str) -> bool:
    """Ask KuCoin whether it lists `symbol`; raise when it cannot say (busy, failing)."""
    path = (f"/api/v2/symbols/{symbol}" if market == SymbolType.SPOT
            else f"/api/v1/contracts/{symbol}")
    response = await client.get(f"{api}{path}")
    raise_if_busy(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    return kucoin_listed(market, symbol, body)
