"""Which roles may call which service.

| service                          | roles                  |
|----------------------------------|------------------------|
| aftercare.v1.Support             | client, agent, admin   |
| aftercare.v1.Agent               | agent, admin           |
| aftercare.v1.Admin               | admin                  |
| inference.GRPCInferenceService   | client, admin          |
| health, reflection               | open (no credential)   |
| anything else                    | admin                  |
"""

from __future__ import annotations

ROLES = ("client", "agent", "admin")
_ALLOWED: dict[str, frozenset[str]] = {
    "aftercare.v1.Support": frozenset({"client", "agent", "admin"}),
    "aftercare.v1.Agent": frozenset({"agent", "admin"}),
    "aftercare.v1.Admin": frozenset({"admin"}),
    "inference.GRPCInferenceService": frozenset({"client", "admin"}),
}
# Kubernetes probes and tooling must reach these without credentials.
OPEN_SERVICES = frozenset({
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})
_ADMIN_ONLY = frozenset({"admin"})


def service_of(method: str) -> str:
    """'/aftercare.v1.Support/Classify' -> 'aftercare.v1.Support'."""
    return method.lstrip("/").split("/", 1)[0]


def is_open(method: str) -> bool:
    return service_of(method) in OPEN_SERVICES


def allowed(method: str, roles: frozenset[str]) -> bool:
    return bool(roles & _ALLOWED.get(service_of(method), _ADMIN_ONLY))


def check_roles(roles: list[str], where: str) -> frozenset[str]:
    """Config validation: every role is one we know (a typo must not grant nothing)."""
    from server.errors import InvalidInput

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(f"{where}: unknown roles {unknown}; expected some of {list(ROLES)}")
    return frozenset(roles)
