"""The Binance connection managers against the local Binance, over real WebSockets."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

from cogmora_core.model import Tick
from cogmora_core.venues import SymbolType, Venue
from localkucoin.binance import LocalBinance
from tests.support.aio import eventually
from worker.metrics import Metrics
from worker.venues.base import Funding, MarkPrice
from worker.venues.binance.feed import BinanceFeed

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.3, "message_interval": 0.0}


async def started(market: str, **options: Any) -> tuple[LocalBinance, BinanceFeed, list[Tick],
                                                        Metrics]:
    exchange = LocalBinance(market, **options.pop("server", {}))
    url = await exchange.start()
    ticks: list[Tick] = []
    metrics = Metrics()
    feed = BinanceFeed(SymbolType(market), url, ticks.append, metrics, **{**FAST, **options})
    feed.start()
    return exchange, feed, ticks, metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def receives(exchange: LocalBinance, ticks: list[Tick], symbol: str, bid: str,
                   ask: str) -> None:
    """Publish until the feed has the tick (a fresh subscription may still be in flight)."""
    for _ in range(250):
        await exchange.publish(symbol, D(bid), D(bid), D(ask))
        await asyncio.sleep(0.02)
        if any(t.symbol == symbol and t.best_bid == D(bid) for t in ticks):
            return
    raise AssertionError(f"{symbol} {bid}/{ask} never arrived")


def test_spot_subscribes_with_ids_receives_exact_ticks_and_unsubscribes_in_place() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started("spot")
        assert feed.healthy
        await asyncio.sleep(0.2)
        assert exchange.connections == 0  # no connection until something is armed
        feed.update_desired({"BTCUSDT", "ETHUSDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT", "ETHUSDT"})
        assert exchange.streams() == {"btcusdt@bookTicker", "ethusdt@bookTicker"}
        assert exchange.subscribe_messages[0] == {
            "method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "ethusdt@bookTicker"],
            "id": 1}
        assert value(metrics, "cogmora_subscribed_symbols", feed="binance-spot-0") == 2

        assert await exchange.publish("BTCUSDT", D("87956.1"), D("87956.1"),
                                      D("87956.2")) == 1
        await eventually(lambda: ticks)
        assert ticks[0] == Tick("BTCUSDT", D("87956.15"), D("87956.1"), D("87956.2"), None)
        assert (ticks[0].venue, ticks[0].symbol_type) == (Venue.BINANCE, SymbolType.SPOT)

        feed.update_desired({"ETHUSDT"})
        await eventually(lambda: feed.subscribed() == {"ETHUSDT"})
        assert exchange.streams() == {"ethusdt@bookTicker"}
        assert exchange.subscribe_messages[-1] == {
            "method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2}
        assert exchange.connections == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_futures_book_and_mark_streams_go_to_their_own_routes_and_funding_settles() -> None:
    async def scenario() -> None:
        exchange = LocalBinance("futures")
        url = await exchange.start()
        ticks: list[Tick] = []
        marks: list[MarkPrice] = []
        settled: list[Funding] = []
        announced: list[list[str]] = []
        feed = BinanceFeed(SymbolType.FUTURES, url, ticks.append, Metrics(),
                           on_funding=settled.append, on_mark_price=marks.append,
                           on_subscribed=announced.append, **FAST)
        feed.start()
        feed.update_desired({"BTCUSDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT"}
                         and "btcusdt@markPrice@1s" in exchange.streams())
        routes = {s.route: s.streams for s in exchange.sessions}
        assert routes == {"public": {"btcusdt@bookTicker"}, "market": {"btcusdt@markPrice@1s"}}
        assert announced == [["BTCUSDT"]]

        assert await exchange.publish("BTCUSDT", D("84826.9"), D("84826.9"), D("84827")) == 1
        await eventually(lambda: ticks)
        assert (ticks[0].price, ticks[0].best_bid, ticks[0].best_ask) == (
            D("84826.95"), D("84826.9"), D("84827"))
        assert ticks[0].symbol_type is SymbolType.FUTURES
        assert ticks[0].time_ms is not None and ticks[0].time_ms > 1_700_000_000_000

        funding_time = int(time.time() * 1000) + 300
        assert await exchange.publish_mark("BTCUSDT", D("84827.2"), D("0.0001"),
                                           funding_time) == 1
        await asyncio.sleep(0.4)  # the funding time passes
        assert await exchange.publish_mark("BTCUSDT", D("84900"), D("0.00005"),
                                           funding_time + 8 * 3_600_000) == 1
        await eventually(lambda: settled)
        assert settled == [Funding("BTCUSDT", D("0.0001"), funding_time, D("84827.2"))]
        assert marks[0] == MarkPrice("BTCUSDT", D("84827.2"), D("0.0001"), funding_time,
                                     marks[0].time_ms)

        await exchange.drop_connections()
        await eventually(lambda: len(announced) == 2 and feed.subscribed() == {"BTCUSDT"})
        assert announced[1] == ["BTCUSDT"]  # the gap since the drop is recovered
        await receives(exchange, ticks, "BTCUSDT", "84800", "84800.1")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_more_streams_than_a_connection_holds_open_more_connections() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started("spot", stream_limit=2,
                                                 server={"stream_limit": 2})
        symbols = {"AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT"}
        feed.update_desired(symbols)
        await eventually(lambda: feed.subscribed() == symbols)
        assert len(exchange.sessions) == 3
        assert all(len(s.streams) <= 2 for s in exchange.sessions)
        await receives(exchange, ticks, "EUSDT", "1.5", "1.6")
        feed.update_desired(symbols | {"FUSDT"})  # fills the connection with room
        await eventually(lambda: feed.subscribed() == symbols | {"FUSDT"})
        assert len(exchange.sessions) == 3
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_paces_control_messages_under_the_servers_limit() -> None:
    async def scenario(interval: float) -> int:
        # 650 streams take 7 messages of 100: the server cuts a connection sending
        # more than 5 a second; the feed spaces them 0.3 s.
        exchange, feed, _, _ = await started("spot", message_interval=interval)
        symbols = {f"S{n}USDT" for n in range(650)}
        feed.update_desired(symbols)
        if interval:
            await eventually(lambda: feed.subscribed() == symbols, timeout=15)
            assert exchange.connections == 1
        else:
            await eventually(lambda: exchange.cut_for_rate > 0)
        await feed.stop()
        await exchange.stop()
        return exchange.cut_for_rate

    assert asyncio.run(scenario(0.3)) == 0
    assert asyncio.run(scenario(0.0)) > 0  # unpaced, the same burst is cut


def test_reconnects_after_a_drop_a_close_and_a_shutdown_notice() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started("spot")
        feed.update_desired({"BTCUSDT", "SOLUSDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT", "SOLUSDT"})

        await exchange.drop_connections()
        await eventually(lambda: exchange.connections == 2
                         and exchange.subscribed() == {"BTCUSDT", "SOLUSDT"})
        await receives(exchange, ticks, "BTCUSDT", "87000", "87000.5")

        await exchange.close_connections()
        await eventually(lambda: exchange.connections == 3
                         and exchange.subscribed() == {"BTCUSDT", "SOLUSDT"})

        await exchange.shutdown_notice()
        await eventually(lambda: exchange.connections == 4
                         and exchange.subscribed() == {"BTCUSDT", "SOLUSDT"})
        await receives(exchange, ticks, "SOLUSDT", "140.1", "140.2")
        assert feed.healthy
        assert value(metrics, "cogmora_reconnects_total", feed="binance-spot-0") == 3
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_reconnects_when_the_server_ends_the_connections_lifetime() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started("spot", server={"lifetime": 0.5})
        feed.update_desired({"BTCUSDT"})
        await eventually(lambda: exchange.connections >= 3, timeout=5)
        await receives(exchange, ticks, "BTCUSDT", "87000", "87000.5")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_reconnects_before_its_own_lifetime_ends() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started("futures", max_age=0.5)
        feed.update_desired({"ETHUSDT"})
        await eventually(lambda: exchange.connections >= 3, timeout=5)  # 2 routes, renewed
        await eventually(lambda: feed.subscribed() == {"ETHUSDT"})
        await receives(exchange, ticks, "ETHUSDT", "3000", "3000.1")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_garbage_and_refused_streams_are_counted_and_never_take_the_feed_down() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started("spot")
        feed.update_desired({"BTCUSDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT"})

        await exchange.send_garbage()
        await eventually(lambda: value(metrics, "cogmora_exchange_errors_total",
                                       feed="binance-spot-0", code="2") == 1)
        for reason in ("invalid_json", "not_an_object", "unknown_type", "unknown_topic",
                       "bad_price"):
            assert value(metrics, "cogmora_frames_rejected_total", feed="binance-spot-0",
                         reason=reason) == 1, reason
        await receives(exchange, ticks, "BTCUSDT", "87000", "87000.5")

        # A symbol no stream name can carry refuses its whole message: the rest are
        # asked for again one by one, the bad one is left out.
        feed.update_desired({"BTCUSDT", "ETHUSDT", "BAD-USDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT", "ETHUSDT"})
        await asyncio.sleep(0.3)
        assert "bad-usdt@bookTicker" not in exchange.streams()
        assert exchange.connections == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_answers_the_servers_pings_and_stays_connected() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started("futures", server={"ping_interval": 0.2})
        feed.update_desired({"BTCUSDT"})
        await eventually(lambda: feed.subscribed() == {"BTCUSDT"})
        await asyncio.sleep(1.5)  # several ping rounds
        assert exchange.connections == 1  # no markPrice route: nothing follows funding
        assert feed.healthy
        await receives(exchange, ticks, "BTCUSDT", "84000", "84000.1")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())
