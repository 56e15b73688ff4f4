"""`python -m localkucoin`: run every venue's local stand-in (`venues.LOCAL_VENUES`) with prices.

By default it replays the recorded SOLUSDTM day on the futures market and
plays deterministic random walks for XBTUSDTM, ETHUSDTM (futures) and
BTC-USDT, ETH-USDT (spot), and on Backpack for SOL_USDC and SOL_USDC_PERP
(bookTicker; a markPrice a second for the perpetual). Control it over HTTP:
`POST /_control/tick`, `drop`, `close`, `stall_pongs`, `token_failures`,
`garbage`, `errors`, `state` on either KuCoin market's port; `tick`, `mark`,
`drop`, `close`, `garbage`, `state` on Backpack's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from decimal import Decimal
from pathlib import Path

from cogmora_core.venues import Venue
from localkucoin.backpack import LocalBackpack
from localkucoin.replay import DEFAULT_REPLAY, Quote, play, random_walk, recorded_day
from localkucoin.server import LocalKucoin
from localkucoin.venues import LOCAL_VENUES, BackpackVenue, KucoinVenue

WALKS = {
    "futures": {"XBTUSDTM": Decimal("60000.0"), "ETHUSDTM": Decimal("3000.00")},
    "spot": {"BTC-USDT": Decimal("87956.1"), "ETH-USDT": Decimal("3000.00")},
    "backpack": {"SOL_USDC": Decimal("140.00"), "SOL_USDC_PERP": Decimal("140.00")},
}


async def publish_marks(backpack: LocalBackpack, symbol: str, latest: dict[str, Quote],
                        funding_rate: Decimal = Decimal("0.0000125")) -> None:
    """Publish a markPrice for a perpetual once a second: the mark is its latest price."""
    while True:
        quote = latest.get(symbol)
        if quote is not None:
            next_hour_ms = (int(time.time()) // 3600 + 1) * 3600 * 1000
            await backpack.publish_mark(symbol, quote.price, funding_rate, next_hour_ms)
        await asyncio.sleep(1.0)


async def serve(args: argparse.Namespace) -> None:
    ports = {Venue.KUCOIN: {"spot_port": args.spot_port, "futures_port": args.futures_port},
             Venue.BACKPACK: {"port": args.backpack_port}}
    venues = {venue: factory(**ports.get(venue, {})) for venue, factory in LOCAL_VENUES.items()}
    for local in venues.values():
        await local.start()
        for name, value in local.environ().items():
            print(f"{name}={value}", flush=True)
    kucoin, backpack_venue = venues[Venue.KUCOIN], venues[Venue.BACKPACK]
    assert isinstance(kucoin, KucoinVenue) and isinstance(backpack_venue, BackpackVenue)
    spot, futures, backpack = kucoin.spot, kucoin.futures, backpack_venue.backpack
    latest: dict[str, Quote] = {}
    tasks = [asyncio.create_task(play(futures, "SOLUSDTM", recorded_day(args.replay),
                                      args.speed, latest))]
    if not args.replay_only:
        markets: tuple[tuple[LocalKucoin | LocalBackpack, dict[str, Decimal]], ...] = (
            (futures, WALKS["futures"]), (spot, WALKS["spot"]), (backpack, WALKS["backpack"]))
        for seed, (market, walks) in enumerate(markets):
            for n, (symbol, start) in enumerate(walks.items()):
                tasks.append(asyncio.create_task(play(
                    market, symbol, random_walk(start, seed * 10 + n), args.speed, latest)))
        tasks.append(asyncio.create_task(publish_marks(backpack, "SOL_USDC_PERP", latest)))
    spot.latest = latest  # type: ignore[attr-defined]
    futures.latest = latest  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)
    for local in venues.values():
        await local.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spot-port", type=int, default=9501)
    parser.add_argument("--futures-port", type=int, default=9502)
    parser.add_argument("--backpack-port", type=int, default=9503)
    parser.add_argument("--replay", type=Path, default=DEFAULT_REPLAY)
    parser.add_argument("--speed", type=float, default=10.0,
                        help="steps per second (the recorded day has one step per second)")
    parser.add_argument("--replay-only", action="store_true", help="no scripted walks")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
