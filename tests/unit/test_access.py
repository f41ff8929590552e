"""Credentials, roles and rate limits (server/access)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.access.credentials import Authenticator, hash_key
from server.access.ratelimit import RateLimiter, TokenBucket
from server.access.roles import allowed, is_open
from server.config import load_config
from server.errors import InvalidInput, Unauthenticated

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def _auth(tmp_path: Path, **extra: object) -> Authenticator:
    secret = tmp_path / "hs256.secret"
    secret.write_text(SECRET + "\n")
    cfg = {"enabled": True, "api_keys": [
        {"id": "gw", "sha256": hash_key("key-client"), "roles": ["client"]},
        {"id": "ops", "sha256": hash_key("key-admin"), "roles": ["admin"], "rate_per_s": 5},
    ], "jwt": {"hs256_secret_file": str(secret), **extra.pop("jwt", {})},  # type: ignore[dict-item]
        "mtls": [{"common_name": "agent-desk", "roles": ["agent"]}], **extra}
    return Authenticator(load_config(None, {"auth": cfg}, environ={}).auth)


def _token(claims: dict, key: object = SECRET, alg: str = "HS256", **headers: str) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers or None)  # type: ignore[arg-type]


def test_api_keys_map_to_their_roles(tmp_path: Path) -> None:
    a = _auth(tmp_path)
    ident = a.authenticate({"x-api-key": "key-client"})
    assert ident.id == "key:gw" and ident.roles == {"client"} and ident.via == "api_key"
    assert a.authenticate({"x-api-key": "key-admin"}).roles == {"admin"}
    for bad in ({"x-api-key": "key-clien"}, {"x-api-key": ""}, {}):
        with pytest.raises(Unauthenticated, match=r"^missing or invalid credentials$"):
            a.authenticate(bad)


def test_a_bad_key_is_not_rescued_by_a_weaker_credential(tmp_path: Path) -> None:
    a = _auth(tmp_path)
    with pytest.raises(Unauthenticated):
        a.authenticate({"x-api-key": "nope"}, peer_common_name="agent-desk")
    assert a.authenticate({}, peer_common_name="agent-desk").roles == {"agent"}
    with pytest.raises(Unauthenticated):
        a.authenticate({}, peer_common_name="someone-else")


def test_hs256_jwt_claims_are_checked(tmp_path: Path) -> None:
    a = _auth(tmp_path, jwt={"issuer": "https://idp", "audience": "aftercare",
                              "leeway_s": 5})
    now = int(time.time())
    good = {"sub": "alice", "roles": ["agent"], "exp": now + 60, "iss": "https://idp",
            "aud": "aftercare"}
    ident = a.authenticate({"authorization": f"Bearer {_token(good)}"})
    assert ident.id == "jwt:alice" and ident.roles == {"agent"} and ident.name == "alice"
    # space-separated roles (OAuth scope style), unknown roles ignored
    ident = a.authenticate({"authorization": "Bearer " + _token(
        {**good, "roles": "client admin wizard"})})
    assert ident.roles == {"client", "admin"}
    bad = [
        {**good, "exp": now - 60},  # expired beyond the leeway
        {**good, "nbf": now + 60},  # not yet valid
        {**good, "iss": "https://evil"},
        {**good, "aud": "other"},
        {k: v for k, v in good.items() if k != "exp"},  # exp is required
        {**good, "sub": ""},
    ]
    for claims in bad:
        with pytest.raises(Unauthenticated):
            a.authenticate({"authorization": f"Bearer {_token(claims)}"})
    with pytest.raises(Unauthenticated):  # signed with another secret
        other = "another-secret-of-enough-length-0123456789"
        a.authenticate({"authorization": "Bearer " + _token(good, other)})
    with pytest.raises(Unauthenticated):
        a.authenticate({"authorization": "Basic abc"})
    with pytest.raises(Unauthenticated):
        a.authenticate({"authorization": "Bearer not.a.jwt"})
    # within the clock skew
    a.authenticate({"authorization": "Bearer " + _token({**good, "exp": now - 2})})


def test_rs256_and_es256_from_a_jwks_file(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key, alg in (("r1", rsa_key, jwt.algorithms.RSAAlgorithm),
                          ("e1", ec_key, jwt.algorithms.ECAlgorithm)):
        jwk = json.loads(alg.to_jwk(key.public_key()))  # type: ignore[attr-defined]
        keys.append({**jwk, "kid": kid})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    a = _auth(tmp_path, jwt={"jwks_file": str(tmp_path / "jwks.json")})
    claims = {"sub": "svc", "roles": ["client"], "exp": int(time.time()) + 60}
    assert a.authenticate({"authorization": "Bearer " + _token(
        claims, rsa_key, "RS256", kid="r1")}).id == "jwt:svc"
    assert a.authenticate({"authorization": "Bearer " + _token(
        claims, ec_key, "ES256", kid="e1")}).roles == {"client"}
    with pytest.raises(Unauthenticated):  # right key, wrong kid
        a.authenticate({"authorization": "Bearer " + _token(claims, rsa_key, "RS256",
                                                             kid="e1")})
    with pytest.raises(Unauthenticated):  # alg none is never accepted
        a.authenticate({"authorization": "Bearer " + jwt.encode(claims, None, algorithm="none")})


def test_config_errors_are_caught_at_startup(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown roles"):
        Authenticator(load_config(None, {"auth": {"api_keys": [
            {"id": "x", "sha256": hash_key("k"), "roles": ["admn"]}]}}, environ={}).auth)
    with pytest.raises(InvalidInput, match="64 hex"):
        Authenticator(load_config(None, {"auth": {"api_keys": [
            {"id": "x", "sha256": "abc", "roles": ["admin"]}]}}, environ={}).auth)
    with pytest.raises(InvalidInput, match="cannot read"):
        Authenticator(load_config(None, {"auth": {"jwt": {
            "hs256_secret_file": str(tmp_path / "missing")}}}, environ={}).auth)


def test_roles_table() -> None:
    assert allowed("/aftercare.v1.Support/Classify", frozenset({"client"}))
    assert allowed("/aftercare.v1.Support/Classify", frozenset({"agent"}))
    assert not allowed("/aftercare.v1.Agent/ListHandoffs", frozenset({"client"}))
    assert allowed("/aftercare.v1.Agent/ListHandoffs", frozenset({"agent"}))
    assert not allowed("/aftercare.v1.Admin/ListModels", frozenset({"agent", "client"}))
    assert allowed("/aftercare.v1.Admin/ListModels", frozenset({"admin"}))
    assert allowed("/inference.GRPCInferenceService/ModelInfer", frozenset({"client"}))
    assert not allowed("/inference.GRPCInferenceService/ModelInfer", frozenset({"agent"}))
    assert not allowed("/some.Unknown/Method", frozenset({"client", "agent"}))
    assert is_open("/grpc.health.v1.Health/Check")
    assert is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not is_open("/aftercare.v1.Support/Respond")


def test_token_bucket_refills_at_its_rate() -> None:
    b = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(0.0) == pytest.approx(0.5)  # one token needs half a second
    assert b.take(0.5) == 0.0
    assert b.take(0.5) > 0
    assert b.take(10.0) == 0.0  # refilled, capped at the burst
    assert sum(b.take(10.0) == 0.0 for _ in range(5)) == 2


def test_rate_limiter_is_per_identity_and_limits_resolve(tmp_path: Path) -> None:
    t = [0.0]
    lim = RateLimiter(clock=lambda: t[0])
    assert lim.check("a", 1.0, 1.0) == 0.0
    assert lim.check("a", 1.0, 1.0) > 0
    assert lim.check("b", 1.0, 1.0) == 0.0  # another caller has its own bucket
    assert lim.check("c", 0.0, 0.0) == 0.0  # unlimited
    a = _auth(tmp_path, rate_limits={"client": {"rate_per_s": 50, "burst": 100}})
    assert a.limit_for(a.authenticate({"x-api-key": "key-client"})) == (50, 100)
    assert a.limit_for(a.authenticate({"x-api-key": "key-admin"})) == (5, 5)  # per key
    assert a.limit_for(a.authenticate({}, "agent-desk")) == (0.0, 0.0)  # agent: no limit
