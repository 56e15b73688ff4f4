"""The Backpack connection manager against the local Backpack, over real WebSockets."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D

from cogmora_core.model import Tick
from localkucoin.backpack import LocalBackpack
from tests.support.aio import eventually
from worker.metrics import Metrics
from worker.venues.backpack.feed import BackpackFeed
from worker.venues.backpack.protocol import MarkPrice
from worker.venues.base import Funding

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.3}


async def started(**options: float) -> tuple[LocalBackpack, BackpackFeed, list[Tick],
                                             list[MarkPrice], Metrics]:
    exchange = LocalBackpack()
    url = await exchange.start()
    ticks: list[Tick] = []
    marks: list[MarkPrice] = []
    metrics = Metrics()
    feed = BackpackFeed(url, ticks.append, metrics, on_mark_price=marks.append,
                        **{**FAST, **options})
    feed.start()
    return exchange, feed, ticks, marks, metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def receives(exchange: LocalBackpack, ticks: list[Tick], symbol: str, bid: str,
                   ask: str) -> None:
    """Publish until the feed has the tick (a fresh subscription may still be in flight)."""
    for _ in range(250):
        await exchange.publish(symbol, D(bid), D(bid), D(ask))
        await asyncio.sleep(0.02)
        if any(t.symbol == symbol and t.best_bid == D(bid) for t in ticks):
            return
    raise AssertionError(f"{symbol} {bid}/{ask} never arrived")


def test_subscribes_receives_exact_ticks_and_marks_and_unsubscribes_without_reconnecting() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, marks, metrics = await started()
        assert feed.healthy  # nothing desired yet
        await asyncio.sleep(0.2)
        assert exchange.connections == 0  # no connection until something is armed
        feed.update_desired({"SOL_USDC", "SOL_USDC_PERP"})
        await eventually(lambda: exchange.streams() == {
            "bookTicker.SOL_USDC", "bookTicker.SOL_USDC_PERP", "markPrice.SOL_USDC_PERP"})
        assert feed.subscribed() == {"SOL_USDC", "SOL_USDC_PERP"}
        assert feed.healthy
        assert value(metrics, "cogmora_subscribed_symbols", feed="backpack") == 2

        assert await exchange.publish("SOL_USDC_PERP", D("140.21"), D("140.21"),
                                      D("140.24")) == 1
        await eventually(lambda: ticks)
        assert ticks[0] == Tick("SOL_USDC_PERP", D("140.225"), D("140.21"), D("140.24"),
                                ticks[0].time_ms)
        assert ticks[0].time_ms is not None and ticks[0].time_ms > 1_700_000_000_000
        assert await exchange.publish_mark("SOL_USDC_PERP", D("140.23"), D("0.0000125"),
                                           1791046800000) == 1
        await eventually(lambda: marks)
        assert (marks[0].symbol, marks[0].mark_price, marks[0].funding_rate,
                marks[0].next_funding_ms) == ("SOL_USDC_PERP", D("140.23"), D("0.0000125"),
                                              1791046800000)

        feed.update_desired({"SOL_USDC"})
        await eventually(lambda: exchange.streams() == {"bookTicker.SOL_USDC"})
        assert feed.subscribed() == {"SOL_USDC"}
        assert exchange.connections == 1
        assert exchange.subscribe_messages[-1] == {
            "method": "UNSUBSCRIBE",
            "params": ["bookTicker.SOL_USDC_PERP", "markPrice.SOL_USDC_PERP"]}
        assert value(metrics, "cogmora_ticks_total", feed="backpack") == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_reconnects_and_resubscribes_after_a_drop_and_a_server_close() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _, metrics = await started()
        symbols = {"SOL_USDC", "BTC_USDC_PERP", "ETH_USDC_PERP"}
        feed.update_desired(symbols)
        await eventually(lambda: exchange.subscribed() == symbols)

        await exchange.drop_connections()
        await eventually(lambda: exchange.connections == 2 and exchange.subscribed() == symbols)
        assert "markPrice.BTC_USDC_PERP" in exchange.streams()
        await receives(exchange, ticks, "BTC_USDC_PERP", "84826.9", "84827.0")

        await exchange.close_connections()
        await eventually(lambda: exchange.connections == 3 and exchange.subscribed() == symbols)
        await receives(exchange, ticks, "SOL_USDC", "140.1", "140.2")
        assert feed.healthy
        assert value(metrics, "cogmora_reconnects_total", feed="backpack") == 2
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_is_unhealthy_while_the_exchange_is_down_and_recovers_when_it_returns() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _, _ = await started()
        feed.update_desired({"SOL_USDC"})
        await eventually(lambda: exchange.subscribed() == {"SOL_USDC"})
        port = exchange.port
        await exchange.stop()
        await eventually(lambda: not feed.healthy)
        assert feed.subscribed() == set()

        revived = LocalBackpack(port=port)
        await revived.start()
        await eventually(lambda: revived.subscribed() == {"SOL_USDC"}, timeout=15)
        await eventually(lambda: feed.healthy)
        await receives(revived, ticks, "SOL_USDC", "141", "141.5")
        await feed.stop()
        await revived.stop()

    asyncio.run(scenario())


def test_garbage_is_counted_and_never_takes_the_feed_down() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _, metrics = await started()
        feed.update_desired({"SOL_USDC"})
        await eventually(lambda: exchange.subscribed() == {"SOL_USDC"})

        await exchange.send_garbage()
        await eventually(lambda: value(metrics, "cogmora_exchange_errors_total",
                                       feed="backpack", code="INVALID_CLIENT_REQUEST") == 1)
        for reason, count in (("invalid_json", 1), ("not_an_object", 1), ("unknown_type", 1),
                              ("unknown_topic", 1), ("bad_price", 1)):
            assert value(metrics, "cogmora_frames_rejected_total", feed="backpack",
                         reason=reason) == count, reason
        await receives(exchange, ticks, "SOL_USDC", "140", "140.5")
        assert exchange.connections == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_a_failing_tick_handler_does_not_stop_the_feed() -> None:
    async def scenario() -> None:
        exchange = LocalBackpack()
        url = await exchange.start()
        seen: list[Tick] = []

        def handler(tick: Tick) -> None:
            seen.append(tick)
            raise RuntimeError("downstream bug")

        feed = BackpackFeed(url, handler, Metrics(), **FAST)
        feed.start()
        feed.update_desired({"SOL_USDC"})
        await eventually(lambda: exchange.subscribed() == {"SOL_USDC"})
        await receives(exchange, seen, "SOL_USDC", "140", "140.5")
        await receives(exchange, seen, "SOL_USDC", "139", "139.5")
        assert exchange.connections == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_answers_the_servers_pings_and_stays_connected() -> None:
    async def scenario() -> None:
        # The server pings every 0.2 s and drops a client that has not answered within 0.1 s.
        exchange = LocalBackpack(ping_interval=0.2)
        url = await exchange.start()
        ticks: list[Tick] = []
        feed = BackpackFeed(url, ticks.append, Metrics(), **FAST)
        feed.start()
        feed.update_desired({"SOL_USDC"})
        await eventually(lambda: exchange.subscribed() == {"SOL_USDC"})
        await asyncio.sleep(1.5)  # several ping rounds
        assert (exchange.connections, feed.connected) == (1, True)
        await receives(exchange, ticks, "SOL_USDC", "140", "140.5")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_funding_settles_off_the_mark_price_stream_and_resubscriptions_are_announced() -> None:
    async def scenario() -> None:
        exchange = LocalBackpack()
        url = await exchange.start()
        settled: list[Funding] = []
        announced: list[list[str]] = []
        feed = BackpackFeed(url, lambda tick: None, Metrics(), on_funding=settled.append,
                            on_subscribed=announced.append, **FAST)
        feed.start()
        feed.update_desired({"SOL_USDC_PERP"})
        await eventually(lambda: "markPrice.SOL_USDC_PERP" in exchange.streams())
        assert announced == [["SOL_USDC_PERP"]]

        funding_time = int(time.time() * 1000) + 300
        assert await exchange.publish_mark("SOL_USDC_PERP", D("140.23"), D("0.0000125"),
                                           funding_time) == 1
        await asyncio.sleep(0.4)  # the funding time passes
        assert await exchange.publish_mark("SOL_USDC_PERP", D("140.5"), D("0.00003"),
                                           funding_time + 3_600_000) == 1
        await eventually(lambda: settled)
        assert settled == [Funding("SOL_USDC_PERP", D("0.0000125"), funding_time, D("140.23"))]

        await exchange.drop_connections()
        await eventually(lambda: len(announced) == 2)
        assert announced[1] == ["SOL_USDC_PERP"]  # the gap since the drop is recovered
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())
