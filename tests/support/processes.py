"""Processes of the whole system for tests and benchmarks: local KuCoin, Backpack, the worker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from cogmora_core.venues import DEFAULT_VENUE, VENUES, SymbolType, Venue
from localkucoin.venues import LOCAL_VENUES, BackpackVenue, KucoinVenue, LocalVenue

ROOT = Path(__file__).resolve().parents[2]


class Exchange:
    """Every registered venue's local stand-in, on a loop in a background thread."""

    def __init__(self, spot_port: int = 0, futures_port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.venues: dict[Venue, LocalVenue] = {
            venue: factory(fast=True) for venue, factory in LOCAL_VENUES.items()}
        kucoin = self.venues[Venue.KUCOIN]
        assert isinstance(kucoin, KucoinVenue)
        kucoin.spot.port, kucoin.futures.port = spot_port, futures_port
        for local in self.venues.values():
            self.call(local.start())
        self.spot, self.futures = kucoin.spot, kucoin.futures
        backpack = self.venues[Venue.BACKPACK]
        assert isinstance(backpack, BackpackVenue)
        self.backpack = backpack.backpack

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def environ(self) -> dict[str, str]:
        """Return the worker's settings that point at every local venue."""
        return {name: value for local in self.venues.values()
                for name, value in local.environ().items()}

    def market(self, symbol: str, venue: str | None = None,
               symbol_type: str | None = None) -> Any:
        """Return the server that carries `symbol` (its venue and market from its form
        unless given)."""
        if venue is None:
            venue = next((v for v, spec in VENUES.items() if spec.market_of(symbol)),
                         DEFAULT_VENUE)
        market = SymbolType(symbol_type) if symbol_type else VENUES[Venue(venue)].market_of(
            symbol)
        assert market is not None, f"{symbol} is no {venue} symbol"
        return self.venues[Venue(venue)].server(market)

    def publish(self, symbol: str, price: str, bid: str | None = None,
                ask: str | None = None, venue: str | None = None,
                symbol_type: str | None = None) -> int:
        """Publish one ticker (Backpack: a bookTicker); return how many connections got it."""
        return int(self.call(self.market(symbol, venue, symbol_type).publish(
            symbol, Decimal(price), Decimal(bid) if bid else None,
            Decimal(ask) if ask else None)))

    def send_raw(self, market: str, text: str) -> int:
        """Send one raw text frame to every connection of `market` (spot or futures)."""
        return int(self.call((self.spot if market == "spot" else self.futures).send_raw(text)))

    def close(self) -> None:
        for local in self.venues.values():
            self.call(local.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """`python -m worker` as Cloud Run would run it, against the local exchange."""

    def __init__(self, exchange: Exchange, name: str, **extra_env: str) -> None:
        self.port = free_port()
        self.name = name
        env = {
            **os.environ,
            "PORT": str(self.port),
            **exchange.environ(),
            "RESYNC_SECONDS": "5",
            "WORKER_ID": name,
            "GOOGLE_CLOUD_PROJECT": os.environ.get("GCLOUD_PROJECT", "demo-cogmora"),
            **extra_env,
        }
        (ROOT / ".cache").mkdir(exist_ok=True)
        self.log = open(ROOT / ".cache" / f"{name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not healthy within {timeout} s")

    def armed(self, path: str) -> bool:
        return httpx.get(f"{self.url}/debug/armed", params={"path": path},
                         timeout=5).status_code == 200

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        key = f"{name}{{{wanted}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> int:
        """Stop with SIGTERM (graceful); return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no goodbye, as a crashed instance."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()
