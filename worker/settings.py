"""Worker settings, from the environment (DESIGN.md §4)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment."""

    kucoin_spot_api: str = "https://api.kucoin.com"
    kucoin_futures_api: str = "https://api-futures.kucoin.com"
    backpack_ws_url: str = "wss://ws.backpack.exchange"
    port: int = 8080
    #: Seconds between full resyncs of the index with Firestore (the safety net).
    resync_seconds: float = 300.0
    #: Topics per connection before another connection is opened.
    topic_limit: int = 300
    #: Marks written at once.
    mark_concurrency: int = 16
    #: Recorded on every mark as `source`.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment, defaults where unset."""
        defaults = cls()
        return cls(
            kucoin_spot_api=os.environ.get("KUCOIN_SPOT_API") or defaults.kucoin_spot_api,
            kucoin_futures_api=os.environ.get("KUCOIN_FUTURES_API")
            or defaults.kucoin_futures_api,
            backpack_ws_url=os.environ.get("BACKPACK_WS_URL") or defaults.backpack_ws_url,
            port=int(os.environ.get("PORT") or defaults.port),
            resync_seconds=_float("RESYNC_SECONDS", defaults.resync_seconds),
            topic_limit=int(os.environ.get("TOPIC_LIMIT") or defaults.topic_limit),
            mark_concurrency=int(os.environ.get("MARK_CONCURRENCY")
                                 or defaults.mark_concurrency),
            worker_id=os.environ.get("WORKER_ID") or defaults.worker_id,
        )
