"""Client channels to one aftercare server or to many replicas, for the CLI commands.

A target (`--server`) is one of:
- `host:port`: one server (a Kubernetes Service's cluster IP counts as one);
- `dns:///name:port`: every address the name resolves to, e.g. the headless Service
  `dns:///aftercare-headless:50051` (one A record per ready pod). grpc resolves the
  name again whenever a connection closes, so the set follows scale-up and -down
  once servers close connections now and then (`server.max_connection_age_ms`);
- `host1:port,host2:port`: a fixed list. grpc has no resolver for a list of names, so
  the list is resolved here, once, into one `ipv4:` (else `ipv6:`) multi-address target
  and grpc's own balancer takes it from there. One channel per host rotated by hand
  would redo what the balancer already does, reconnects and health included;
- any other grpc target URI (`ipv4:a:p,b:p`, `ipv6:`, `unix:`), as it is.

Every channel balances with `round_robin`: a connection to each address, calls
spread over the ready ones (grpc's default, pick_first, sends them all to the first).
Client-side health checking (`healthCheckConfig`) takes a replica out of the rotation
while it reports NOT_SERVING: warming up, or draining on shutdown.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import grpc

from server.access.credentials import API_KEY_HEADER
from server.errors import InvalidInput

API_KEY_ENV = "AFTERCARE_API_KEY"

SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},  # the server's overall health
})
# Targets grpc resolves itself; the rest is `host:port[,host:port...]`.
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")
SERVER_HELP = ("HOST:PORT, a comma-separated list of them, or dns:///NAME:PORT; calls are "
               "spread round_robin over every address")


def open_channel(targets: str, *, api_key: str | None = None) -> grpc.Channel:
    """A blocking channel to `targets` (see the module docstring). Every call carries
    `api_key` as `x-api-key` (None: $AFTERCARE_API_KEY; "" or unset: no key)."""
    target, options = channel_args(targets)
    channel = grpc.insecure_channel(target, options=options)
    key = os.environ.get(API_KEY_ENV, "") if api_key is None else api_key
    return grpc.intercept_channel(channel, _WithMetadata(((API_KEY_HEADER, key),))) if key \
        else channel


def channel_args(targets: str) -> tuple[str, list[tuple[str, Any]]]:
    """The grpc target and channel options for `targets` (also for grpc.aio channels)."""
    spec = targets.strip()
    options: list[tuple[str, Any]] = [("grpc.service_config", SERVICE_CONFIG)]
    if not spec:
        raise InvalidInput("no server given: name HOST:PORT, a list of them or dns:///NAME:PORT")
    if spec.startswith(_SCHEMES) or "," not in spec:
        return spec, options
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    # The :authority of a multi-address target: the first host.
    options.append(("grpc.default_authority", entries[0]))
    return _address_target([_host_port(e) for e in entries]), options


def fans_out(targets: str) -> bool:
    """Whether `targets` may reach more than one server: a list, or a DNS name taken
    with all its addresses."""
    spec = targets.strip()
    return "," in spec or spec.startswith("dns:")


def _host_port(entry: str) -> tuple[str, int]:
    try:
        parts = urlsplit(f"//{entry}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise InvalidInput(f"{entry!r}: expected HOST:PORT (an IPv6 address as [ADDR]:PORT)")
    return host, port


def _address_target(hosts: list[tuple[str, int]]) -> str:
    """`ipv4:a:p,b:p` with every address of every host, or `ipv6:[a]:p,...` when some
    host has no IPv4 address (a URI holds one family)."""
    found = [_addresses(host, port) for host, port in hosts]
    for family, scheme in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        if all(family in by_family for by_family in found):
            addresses = dict.fromkeys(a for by_family in found for a in by_family[family])
            return f"{scheme}:{','.join(addresses)}"
    raise InvalidInput("the servers listed have no address family in common (IPv4 or IPv6): "
                       "list them all by IPv4 or all by IPv6 address")


def _addresses(host: str, port: int) -> dict[int, list[str]]:
    """Every address of `host` as `addr:port` (IPv6 as `[addr]:port`), by family."""
    try:
        literal = ipaddress.ip_address(host)
        infos = [(socket.AF_INET if literal.version == 4 else socket.AF_INET6, str(literal))]
    except ValueError:
        try:
            infos = [(info[0], str(info[4][0])) for info in
                     socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
        except OSError as exc:
            raise InvalidInput(f"cannot resolve {host}: {exc}") from None
    out: dict[int, list[str]] = {}
    for family, address in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            shown = address if family == socket.AF_INET else f"[{address}]"
            out.setdefault(family, []).append(f"{shown}:{port}")
    return out


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _WithMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds fixed metadata (the API key) to every call."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._pairs = pairs

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(details.method, details.timeout,
                            (*(details.metadata or ()), *self._pairs), details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any,
                              request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any,
                               request: Any) -> Any:
        return continuation(self._details(details), request)
