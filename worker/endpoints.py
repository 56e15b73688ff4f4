"""The worker's HTTP surface for Cloud Run: health, metrics, and an armed-document probe."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from worker.book import PriceIndex
from worker.metrics import Metrics


def make_app(health: Callable[[], dict[str, bool]], metrics: Metrics,
             index: PriceIndex) -> web.Application:
    """Return the aiohttp app: `/healthz` (503 while a part is down), `/metrics`, `/debug/armed`."""

    async def healthz(request: web.Request) -> web.Response:
        parts = health()
        status = 200 if all(parts.values()) else 503
        return web.json_response({"ok": status == 200, "parts": parts}, status=status)

    async def metrics_text(request: web.Request) -> web.Response:
        body = metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def armed(request: web.Request) -> web.Response:
        path = request.query.get("path", "")
        found = index.get(path)
        if found is None:
            return web.json_response({"armed": False}, status=404)
        return web.json_response({"armed": True, "symbol": found.symbol, "kind": found.kind,
                                  "immediate": found.immediate})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics_text),
                    web.get("/debug/armed", armed)])
    return app
