"""Credentials -> an `Identity`: API keys, JWTs (HS256, or RS256/ES256 from a JWKS file)
and mTLS client-certificate common names, as configured in `[auth]`.

Only hashes of API keys are configured; a presented key is hashed and compared with
every configured hash in constant time. Failures say nothing that helps an attacker:
the caller learns "missing or invalid credentials", the log learns why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

import jwt
import msgspec

from server.access.roles import check_roles
from server.config import AuthConfig, RateLimitConfig
from server.errors import InvalidInput, Unauthenticated

log = logging.getLogger(__name__)
API_KEY_HEADER = "x-api-key"
AUTH_HEADER = "authorization"
_GENERIC = "missing or invalid credentials"


class Identity(msgspec.Struct, frozen=True):
    id: str  # "key:gateway-1", "jwt:<sub>", "mtls:<common name>"
    roles: frozenset[str]
    via: str  # api_key | jwt | mtls
    rate_per_s: float = 0.0  # 0 = the roles' limit
    burst: float = 0.0

    @property
    def name(self) -> str:
        """The bare id (an agent's id in Agent calls)."""
        return self.id.split(":", 1)[1]


class _Key(msgspec.Struct, frozen=True):
    digest: bytes
    identity: Identity


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(self, cfg: AuthConfig) -> None:
        self._keys: list[_Key] = []
        for k in cfg.api_keys:
            try:
                digest = bytes.fromhex(k.sha256)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise InvalidInput(f"auth.api_keys {k.id!r}: sha256 must be 64 hex characters")
            roles = check_roles(k.roles, f"auth.api_keys {k.id!r}")
            self._keys.append(_Key(digest, Identity(f"key:{k.id}", roles, "api_key",
                                                    k.rate_per_s, k.burst)))
        self._mtls = {m.common_name: Identity(f"mtls:{m.common_name}",
                                              check_roles(m.roles, f"auth.mtls {m.common_name!r}"),
                                              "mtls", m.rate_per_s, m.burst)
                      for m in cfg.mtls}
        self._jwt = cfg.jwt
        self._hs_secret = _read(cfg.jwt.hs256_secret_file, "auth.jwt.hs256_secret_file")
        jwks = _read(cfg.jwt.jwks_file, "auth.jwt.jwks_file")
        self._jwks: jwt.PyJWKSet | None = None
        if jwks:
            try:
                self._jwks = jwt.PyJWKSet.from_json(jwks.decode())
            except (jwt.PyJWKSetError, ValueError) as exc:
                raise InvalidInput(f"auth.jwt.jwks_file is not a usable JWKS: {exc}") from exc
        self._limits: Mapping[str, RateLimitConfig] = cfg.rate_limits
        for role in self._limits:
            check_roles([role], "auth.rate_limits")

    def authenticate(self, metadata: Mapping[str, str], peer_common_name: str = "") -> Identity:
        """The caller's identity, or Unauthenticated. A presented credential that fails
        is a failure: there is no falling back to a weaker one."""
        key = metadata.get(API_KEY_HEADER)
        if key is not None:
            return self._by_key(key)
        auth = metadata.get(AUTH_HEADER)
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated(_GENERIC)
            return self._by_jwt(token.strip())
        if peer_common_name and peer_common_name in self._mtls:
            return self._mtls[peer_common_name]
        raise Unauthenticated(_GENERIC)

    def limit_for(self, ident: Identity) -> tuple[float, float]:
        """(rate per second, burst) for this identity: its own, else the most generous
        of its roles' limits; (0, 0) = unlimited."""
        if ident.rate_per_s > 0:
            return ident.rate_per_s, ident.burst or ident.rate_per_s
        best = (0.0, 0.0)
        for role in ident.roles:
            lim = self._limits.get(role)
            if lim is None or lim.rate_per_s <= 0:
                return (0.0, 0.0)  # one unlimited role: the caller is unlimited
            if lim.rate_per_s > best[0]:
                best = (lim.rate_per_s, lim.burst or lim.rate_per_s)
        return best

    def _by_key(self, key: str) -> Identity:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: Identity | None = None
        for k in self._keys:  # no early exit: the time does not depend on which key
            if hmac.compare_digest(digest, k.digest):
                found = k.identity
        if found is None:
            log.info("auth: unknown API key")
            raise Unauthenticated(_GENERIC)
        return found

    def _by_jwt(self, token: str) -> Identity:
        cfg = self._jwt
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg", "")
            key: Any
            if alg == "HS256" and self._hs_secret:
                key = self._hs_secret
            elif alg in ("RS256", "ES256") and self._jwks is not None:
                key = self._jwk(header.get("kid"))
            else:
                raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not configured")
            claims = jwt.decode(
                token, key, algorithms=[alg], leeway=cfg.leeway_s,
                issuer=cfg.issuer or None, audience=cfg.audience or None,
                options={"require": ["exp"], "verify_aud": bool(cfg.audience),
                         "verify_iss": bool(cfg.issuer)},
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:  # Type: key/alg
            log.info("auth: JWT refused (%s)", exc.__class__.__name__)
            raise Unauthenticated(_GENERIC) from None
        raw = claims.get(cfg.roles_claim, [])
        roles = raw.split() if isinstance(raw, str) else [r for r in raw if isinstance(r, str)]
        known = frozenset(roles) & {"client", "agent", "admin"}
        sub = str(claims.get("sub") or "")
        if not sub:
            raise Unauthenticated(_GENERIC)
        return Identity(f"jwt:{sub}", known, "jwt")

    def _jwk(self, kid: str | None) -> Any:
        assert self._jwks is not None
        keys = self._jwks.keys
        if kid is None:
            if len(keys) != 1:
                raise KeyError("kid")
            return keys[0].key
        return self._jwks[kid].key


def _read(path: str, what: str) -> bytes:
    if not path:
        return b""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{what}: cannot read {path}: {exc.strerror}") from exc
    return data.strip()


_current: ContextVar[Identity | None] = ContextVar("aftercare_identity", default=None)


def current_identity() -> Identity | None:
    """The authenticated caller of the RPC being served (None with auth off)."""
    return _current.get()


def set_identity(ident: Identity | None) -> Token[Identity | None]:
    return _current.set(ident)
