"""Gap candles fetched over real HTTP from the local KuCoin, Backpack and Binance, paged, exact."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import httpx
import pytest

from cogmora_core.venues import SymbolType
from localkucoin import backpack as local_backpack
from localkucoin.backpack import LocalBackpack
from localkucoin.binance import LocalBinance
from localkucoin.server import LocalKucoin
from localkucoin.serving import LocalServer
from worker.gaps import MINUTE_MS, Candle, CandleError
from worker.venues import backpack, binance, kucoin
from worker.venues.base import VenueAdapter
from worker.venues.binance import candles as binance_candles

T0 = 1_763_251_200_000  # 2025-11-16 00:00:00 UTC
#: Prices at seconds after T0: minutes 0, 1, 3 (2 is quiet), and 700 (past one page).
PRICES = [(5, "100"), (20, "101.5"), (50, "99.25"), (65, "98"), (119, "98.5"),
          (185, "97.75"), (700 * 60 + 1, "120")]
EXPECTED = [
    Candle(T0, D("100"), D("101.5"), D("99.25"), D("99.25")),
    Candle(T0 + MINUTE_MS, D("98"), D("98.5"), D("98"), D("98.5")),
    Candle(T0 + 3 * MINUTE_MS, D("97.75"), D("97.75"), D("97.75"), D("97.75")),
    Candle(T0 + 700 * MINUTE_MS, D("120"), D("120"), D("120"), D("120")),
]


def recorded(server: LocalServer, symbol: str) -> LocalServer:
    """Give `server` a past of prices for `symbol` (its candle endpoints serve them)."""
    server.trades[symbol] = [(T0 + seconds * 1000, D(price)) for seconds, price in PRICES]
    return server


def adapter_at(venue: str, url: str) -> VenueAdapter:
    """Return the venue's adapter with every REST API of it at `url`."""
    if venue == "backpack":
        return backpack.Adapter({"BACKPACK_API": url})
    if venue == "binance":
        return binance.Adapter({"BINANCE_SPOT_API": url, "BINANCE_FUTURES_API": url})
    return kucoin.Adapter({"KUCOIN_SPOT_API": url, "KUCOIN_FUTURES_API": url})


async def fetched(server: LocalServer, venue: str, market: str, symbol: str,
                  start_ms: int = T0, end_ms: int = T0 + 800 * MINUTE_MS) -> list[Candle]:
    await server.serve()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            return await adapter_at(venue, server.base_url).fetch_candles(
                client, SymbolType(market), symbol, start_ms, end_ms)
    finally:
        await server.stop()


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_kucoin_candles_across_pages_come_back_exact_and_oldest_first(market: str) -> None:
    # Futures pages hold 500 minutes: minute 700 is on the second page.
    server = recorded(LocalKucoin(market), "SOLUSDTM")
    assert asyncio.run(fetched(server, "kucoin", market, "SOLUSDTM")) == EXPECTED


def test_backpack_klines_cut_short_by_the_server_are_paged_past(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_backpack, "KLINE_ROWS", 2)  # every answer is cut short
    server = recorded(LocalBackpack(), "SOL_USDC")
    assert asyncio.run(fetched(server, "backpack", "spot", "SOL_USDC")) == EXPECTED


def test_only_the_window_asked_for_is_returned() -> None:
    server = recorded(LocalBackpack(), "SOL_USDC_PERP")
    window = asyncio.run(fetched(server, "backpack", "futures", "SOL_USDC_PERP",
                                 T0 + MINUTE_MS + 1, T0 + 3 * MINUTE_MS))
    assert window == EXPECTED[1:3]


def test_an_error_answer_is_a_candle_error_not_an_empty_gap() -> None:
    with pytest.raises(CandleError, match="HTTP 400"):
        asyncio.run(fetched(LocalKucoin("spot"), "kucoin", "futures", "SOLUSDTM"))
    with pytest.raises(CandleError, match="HTTP 400"):
        asyncio.run(fetched(LocalBackpack(), "backpack", "spot", ""))


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_binance_klines_across_pages_come_back_exact_and_oldest_first(
        market: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 minutes a request: the 800-minute window takes three, minute 700 on the last.
    monkeypatch.setitem(binance_candles.ROWS, SymbolType(market), 300)
    server = recorded(LocalBinance(market), "BTCUSDT")
    server.perpetuals.add("BTCUSDT")
    assert asyncio.run(fetched(server, "binance", market, "BTCUSDT")) == EXPECTED


def test_a_binance_symbol_it_does_not_list_is_a_candle_error() -> None:
    server = LocalBinance("futures")
    server.unlisted.add("GONEUSDT")
    with pytest.raises(CandleError, match="-1121"):
        asyncio.run(fetched(server, "binance", "futures", "GONEUSDT"))
