"""Whether Binance lists a symbol.

Spot: `GET /api/v3/exchangeInfo?symbol=` answers the symbol (`status`
`TRADING`), or HTTP 400 `{"code": -1121, "msg": "Invalid symbol."}` for one
it does not know. Futures: `GET /fapi/v1/exchangeInfo` takes no symbol and
answers every contract; a perpetual is listed when its `contractType` is
`PERPETUAL` and its `status` `TRADING`. The futures answer is kept for a
minute, so arming many symbols at once asks once; a symbol it does not list
as trading is asked about afresh.
"""

from __future__ import annotations

import time

import httpx

from cogmora_core.venues import SymbolType
from worker.venues.base import raise_if_busy

#: Seconds a futures exchangeInfo answer is reused.
FUTURES_INFO_SECONDS = 60.0


def binance_listed(market: SymbolType, symbol: str, body: object) -> bool:
    """Return whether an exchangeInfo answer says `symbol` is listed and trading in `market`."""
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        return False
    for entry in body["symbols"]:
        if not isinstance(entry, dict) or entry.get("symbol") != symbol:
            continue
        if market is SymbolType.FUTURES and entry.get("contractType") != "PERPETUAL":
            continue
        if entry.get("status") == "TRADING":
            return True
    return False


def _raise_if_unanswered(response: httpx.Response) -> None:
    """Raise when Binance cannot say now: busy, failing, rate-limited or banning (418, 403)."""
    raise_if_busy(response)
    if response.status_code in (403, 418):
        raise httpx.HTTPStatusError("venue refuses us for now", request=response.request,
                                    response=response)


class ExchangeInfo:
    """Binance's answers about its symbols (the futures list cached for a minute)."""

    def __init__(self) -> None:
        self._futures: tuple[float, object] | None = None

    async def lookup(self, client: httpx.AsyncClient, api: str, market: SymbolType,
                     symbol: str) -> bool:
        """Ask Binance whether it lists `symbol`; raise when it cannot say."""
        if market is SymbolType.SPOT:
            response = await client.get(f"{api}/api/v3/exchangeInfo", params={"symbol": symbol})
            _raise_if_unanswered(response)
            body = response.json() if response.status_code == 200 else None
            return binance_listed(market, symbol, body)
        cached = self._futures
        if (cached is not None and time.monotonic() - cached[0] <= FUTURES_INFO_SECONDS
                and binance_listed(market, symbol, cached[1])):
            return True
        response = await client.get(f"{api}/fapi/v1/exchangeInfo")
        _raise_if_unanswered(response)
        response.raise_for_status()  # the whole list: any other failure says nothing
        body = response.json()
        self._futures = (time.monotonic(), body)
        return binance_listed(market, symbol, body)
