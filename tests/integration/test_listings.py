"""The venues' symbol listings, asked of the local exchange over real HTTP (issue 13, item 5)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cogmora_core.venues import SymbolType
from localkucoin.backpack import LocalBackpack
from localkucoin.binance import LocalBinance
from localkucoin.server import LocalKucoin
from tests.support.aio import eventually
from worker.listings import Listings
from worker.venues import backpack as backpack_venue
from worker.venues import binance as binance_venue
from worker.venues import kucoin as kucoin_venue
from worker.venues.backpack.listings import backpack_listed
from worker.venues.binance.listings import binance_listed
from worker.venues.kucoin.listings import kucoin_listed


def test_answers_are_read_exactly() -> None:
    assert kucoin_listed("spot", "BTC-USDT", {"code": "200000", "data": {
        "symbol": "BTC-USDT", "enableTrading": True}})
    assert not kucoin_listed("spot", "BTC-USDT", {"code": "200000", "data": {
        "symbol": "BTC-USDT", "enableTrading": False}})
    assert not kucoin_listed("spot", "BTC-USDT", {"code": "200000", "data": None})
    assert not kucoin_listed("spot", "BTC-USDT", {"code": "200000", "data": {
        "symbol": "ETH-USDT", "enableTrading": True}})
    assert kucoin_listed("futures", "XBTUSDTM", {"code": "200000", "data": {
        "symbol": "XBTUSDTM", "status": "Open"}})
    assert not kucoin_listed("futures", "XBTUSDTM", {"code": "200000", "data": {
        "symbol": "XBTUSDTM", "status": "Paused"}})
    assert not kucoin_listed("futures", "XBTUSDTM", ["not", "an", "answer"])
    assert backpack_listed("SOL_USDC", {"symbol": "SOL_USDC", "orderBookState": "Open"})
    assert not backpack_listed("SOL_USDC", {"symbol": "SOL_USDC", "orderBookState": "Closed"})
    assert not backpack_listed("SOL_USDC", {"code": "RESOURCE_NOT_FOUND"})


def test_the_worker_asks_each_venue_once_per_symbol_and_caches_the_answer() -> None:
    async def scenario() -> None:
        spot, futures, backpack = LocalKucoin("spot"), LocalKucoin("futures"), LocalBackpack()
        await backpack.start()
        kucoin = kucoin_venue.Adapter({"KUCOIN_SPOT_API": await spot.start(),
                                       "KUCOIN_FUTURES_API": await futures.start()})
        lookups = {"kucoin": kucoin.listed,
                   "backpack": backpack_venue.Adapter({"BACKPACK_API": backpack.base_url}).listed}
        futures.unlisted.add("FAKEUSDTM")
        backpack.unlisted.add("FAKE_USDC")
        answers: list[int] = []
        async with httpx.AsyncClient(timeout=5) as client:
            listings = Listings(lookups, lambda: answers.append(1), client)
            keys = [("kucoin", "spot", "BTC-USDT"), ("kucoin", "futures", "XBTUSDTM"),
                    ("kucoin", "futures", "FAKEUSDTM"), ("backpack", "spot", "SOL_USDC"),
                    ("backpack", "spot", "FAKE_USDC")]
            assert [listings.listed(k) for k in keys] == [None] * 5  # being asked
            await eventually(lambda: len(answers) == 5)
            assert [listings.listed(k) for k in keys] == [True, True, False, True, False]
            assert len(answers) == 5  # cached: nobody asked again
            # A venue that cannot be asked does not stop trading.
            unreachable = kucoin_venue.Adapter({"KUCOIN_SPOT_API": "http://127.0.0.1:9"})
            down = Listings({"kucoin": unreachable.listed}, lambda: None, client)
            assert down.listed(("kucoin", "spot", "ETH-USDT")) is None
            await eventually(lambda: down.listed(("kucoin", "spot", "ETH-USDT")) is True)
        for server in (spot, futures, backpack):
            await server.stop()

    asyncio.run(scenario())


def test_binance_answers_are_read_exactly() -> None:
    spot = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}]}
    assert binance_listed(SymbolType.SPOT, "BTCUSDT", spot)
    assert not binance_listed(SymbolType.SPOT, "ETHUSDT", spot)
    assert not binance_listed(SymbolType.SPOT, "BTCUSDT", {"symbols": [
        {"symbol": "BTCUSDT", "status": "BREAK"}]})
    assert not binance_listed(SymbolType.SPOT, "BTCUSDT", {"code": -1121,
                                                          "msg": "Invalid symbol."})
    futures = {"symbols": [
        {"symbol": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING"},
        {"symbol": "ETHUSDT_260925", "contractType": "CURRENT_QUARTER", "status": "TRADING"},
        {"symbol": "OLDUSDT", "contractType": "PERPETUAL", "status": "SETTLING"}]}
    assert binance_listed(SymbolType.FUTURES, "BTCUSDT", futures)
    assert not binance_listed(SymbolType.FUTURES, "ETHUSDT_260925", futures)
    assert not binance_listed(SymbolType.FUTURES, "OLDUSDT", futures)
    assert not binance_listed(SymbolType.FUTURES, "BTCUSDT", ["not", "an", "answer"])


def test_binance_is_asked_per_market_and_the_same_symbol_can_differ_between_them() -> None:
    async def scenario() -> None:
        spot, futures = LocalBinance("spot"), LocalBinance("futures")
        await spot.start()
        await futures.start()
        adapter = binance_venue.Adapter({"BINANCE_SPOT_API": spot.base_url,
                                         "BINANCE_FUTURES_API": futures.base_url})
        spot.unlisted.add("FAKEUSDT")
        async with httpx.AsyncClient(timeout=5) as client:
            listings = Listings({"binance": adapter.listed}, lambda: None, client)
            keys = [("binance", "spot", "BTCUSDT"), ("binance", "futures", "BTCUSDT"),
                    ("binance", "spot", "FAKEUSDT"), ("binance", "spot", "NEWUSDT"),
                    ("binance", "futures", "NEWUSDT"), ("binance", "futures", "OLDUSDT")]
            for key in keys:
                listings.listed(key)
            await eventually(lambda: all(listings.listed(k) is not None for k in keys))
            # NEWUSDT trades spot but has no perpetual; OLDUSDT's perpetual is settling.
            assert [listings.listed(k) for k in keys] == [True, True, False, True, False,
                                                          False]
            futures.perpetuals.add("NEWUSDT")  # listed now: a refusal is asked afresh
            assert await adapter.listed(client, SymbolType.FUTURES, "NEWUSDT")
            unreachable = binance_venue.Adapter({"BINANCE_FUTURES_API": "http://127.0.0.1:9"})
            with pytest.raises(httpx.HTTPError):
                await unreachable.listed(client, SymbolType.FUTURES, "BTCUSDT")
        await spot.stop()
        await futures.stop()

    asyncio.run(scenario())
