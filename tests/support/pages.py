"""A local HTTP server of market pages for scraper tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "pages"
MARKET = (PAGES / "market.html").read_text()
REDESIGNED = (PAGES / "redesigned.html").read_text()


def market_page(symbol: str, price: str = "141.5", change: str = "+2.5", high: str = "142",
                low: str = "134", volume: str = "1.25B", cap: str = "$78,123,456,789") -> str:
    """Return the market page of `symbol` with the given figures."""
    return (MARKET.replace("{symbol}", symbol).replace("{price}", price)
            .replace("{change}", change).replace("{high}", high).replace("{low}", low)
            .replace("{volume}", volume).replace("{cap}", cap))


class PageServer:
    """Serves `/markets/{symbol}` from a dict; counts requests; can be slow or fail."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.slow: dict[str, float] = {}
        self.failures: dict[str, list[int]] = {}
        self.requests: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                symbol = self.path.rsplit("/", 1)[-1]
                server.requests[symbol] += 1
                server.user_agents.add(self.headers.get("User-Agent", ""))
                time.sleep(server.slow.get(symbol, 0))
                queued = server.failures.get(symbol)
                if queued:
                    self.send_error(queued.pop(0))
                    return
                page = server.pages.get(symbol)
                if page is None:
                    self.send_error(404)
                    return
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url_pattern = f"http://127.0.0.1:{self.httpd.server_address[1]}/markets/{{symbol}}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving() -> Iterator[PageServer]:
    """Run a page server for the duration of the block."""
    server = PageServer()
    try:
        yield server
    finally:
        server.close()
