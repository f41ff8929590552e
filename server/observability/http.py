"""The metrics port: `GET /metrics` (Prometheus text), `/dashboard` (one self-contained
page), and its JSON: `/api/kpis`, `/api/drift`, `/api/traffic`.

A stdlib `ThreadingHTTPServer` in its own daemon threads: the event loop never serves
HTTP. Scrapes read the registry from these threads; KPI and drift reports are computed
by coroutines handed to the server's loop (`run_coroutine_threadsafe`), so state that
belongs to the loop is only touched there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from server.errors import AftercareError, InvalidInput
from server.observability.metrics import CONTENT_TYPE, Metrics
from server.observability.traffic import traffic_summary

log = logging.getLogger(__name__)

JsonFn = Callable[[Mapping[str, str]], Awaitable[Any]]
_TIMEOUT_S = 30.0


def dashboard_html() -> bytes:
    return resources.files("server.observability").joinpath("dashboard.html").read_bytes()


class ObservabilityHttp:
    def __init__(self, host: str, port: int, metrics: Metrics,
                 loop: asyncio.AbstractEventLoop, api: Mapping[str, JsonFn]) -> None:
        self._metrics = metrics
        self._loop = loop
        self._api = dict(api)
        self._page = dashboard_html()
        handler = self._handler_class()
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise InvalidInput(f"cannot serve metrics on {host}:{port}: {exc}; set [metrics] "
                               "port or --metrics-port (0 = off)") from exc
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="aftercare-metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _json(self, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        if path == "/api/traffic":
            return 200, traffic_summary(self._metrics.registry)
        fn = self._api.get(path)
        if fn is None:
            return 404, {"error": f"no such endpoint: {path}"}
        try:
            coro: Any = fn(params)
            fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
            return 200, fut.result(_TIMEOUT_S)
        except AftercareError as exc:
            return (400 if exc.code_name == "INVALID_ARGUMENT" else 503), {"error": str(exc)}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "aftercare"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/metrics":
                    self._send(200, CONTENT_TYPE, outer._metrics.exposition())
                elif url.path in ("/", "/dashboard"):
                    self._send(200, "text/html; charset=utf-8", outer._page)
                elif url.path.startswith("/api/"):
                    params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    try:
                        code, body = outer._json(url.path, params)
                    except Exception:
                        log.exception("GET %s failed", url.path)
                        code, body = 500, {"error": "internal error"}
                    self._send(code, "application/json",
                               json.dumps(body, default=float).encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics http: " + format, *args)

        return Handler
