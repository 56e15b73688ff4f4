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

from localkucoin.backpack import LocalBackpack
from localkucoin.server import LocalKucoin

ROOT = Path(__file__).resolve().parents[2]


class Exchange:
    """The local KuCoin (spot and futures) and Backpack, on a loop in a background thread."""

    def __init__(self, spot_port: int = 0, futures_port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.spot = LocalKucoin("spot", port=spot_port, ping_interval_ms=2000,
                                ping_timeout_ms=2000)
        self.futures = LocalKucoin("futures", port=futures_port, ping_interval_ms=2000,
                                   ping_timeout_ms=2000)
        self.call(self.spot.start())
        self.call(self.futures.start())
        self.backpack = LocalBackpack()
        self.call(self.backpack.start())

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def market(self, symbol: str) -> LocalKucoin | LocalBackpack:
        if "_USDC" in symbol:
            return self.backpack
        return self.futures if symbol.endswith("USDTM") else self.spot

    def publish(self, symbol: str, price: str, bid: str | None = None,
                ask: str | None = None) -> int:
        """Publish one ticker (Backpack: a bookTicker); return how many connections got it."""
        return self.call(self.market(symbol).publish(
            symbol, Decimal(price), Decimal(bid) if bid else None,
            Decimal(ask) if ask else None))

    def send_raw(self, market: str, text: str) -> int:
        """Send one raw text frame to every connection of `market` (spot or futures)."""
        return self.call((self.spot if market == "spot" else self.futures).send_raw(text))

    def close(self) -> None:
        self.call(self.spot.stop())
        self.call(self.futures.stop())
        self.call(self.backpack.stop())
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
            "KUCOIN_SPOT_API": exchange.spot.base_url,
            "KUCOIN_FUTURES_API": exchange.futures.base_url,
            "BACKPACK_WS_URL": exchange.backpack.ws_url,
            "BACKPACK_API": exchange.backpack.base_url,
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
