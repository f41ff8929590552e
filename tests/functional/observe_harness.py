"""A test server with metrics on a free port and tracing into an in-memory exporter."""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.functional.harness import ServerThread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def observed_server(overrides: dict[str, Any]) -> tuple[ServerThread, InMemorySpanExporter]:
    srv = ServerThread({**overrides,
                        "metrics": {"host": "127.0.0.1", "port": free_port()},
                        "tracing": {"enabled": True, "exporter": "none"}}).start()
    assert srv.app is not None and srv.app.observe.tracer_provider is not None
    spans = InMemorySpanExporter()
    srv.app.observe.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    return srv, spans


def http_get(port: int, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    status, ctype, body = http_get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))
