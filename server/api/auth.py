"""The access interceptor: credentials -> identity -> role check -> rate limit.

Installed ahead of the error interceptor when `[auth] enabled`. Health and reflection
stay open. Missing or bad credentials are UNAUTHENTICATED, a caller without the role
PERMISSION_DENIED, an exhausted bucket RESOURCE_EXHAUSTED with `retry-after-ms`; no
answer says more than that. In Agent calls the acting agent is the credential's
identity: an empty `agent_id` is filled in from it, and naming another agent is
PERMISSION_DENIED (admins may act for any agent). Servicers read the identity with
`server.access.credentials.current_identity()` (audit records), never credentials.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from server.access.credentials import Authenticator, Identity, set_identity
from server.access.ratelimit import RateLimiter
from server.access.roles import allowed, is_open, service_of
from server.api.wrapping import HandlerWrapper, as_generator, replaced
from server.errors import AftercareError, Overloaded, PermissionDenied

_AGENT_SERVICE = "aftercare.v1.Agent"


def _peer_common_name(context: aio.ServicerContext) -> str:
    names = list(context.auth_context().get("x509_common_name") or [])
    return names[0].decode("utf-8", "replace") if names else ""


class AuthInterceptor(HandlerWrapper):
    def __init__(self, authenticator: Authenticator,
                 limiter: RateLimiter | None = None) -> None:
        self._auth = authenticator
        self._limiter = limiter or RateLimiter()
        super().__init__()

    def wraps(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return not is_open(method)  # health and reflection stay open

    def admit(self, method: str, request: Any, metadata: dict[str, str],
              common_name: str) -> Identity:
        """The caller's identity, or the AftercareError that refuses the call."""
        ident = self._auth.authenticate(metadata, common_name)
        if not allowed(method, ident.roles):
            raise PermissionDenied("permission denied")
        rate, burst = self._auth.limit_for(ident)
        wait = self._limiter.check(ident.id, rate, burst)
        if wait > 0:
            raise Overloaded(f"rate limit exceeded; retry in {math.ceil(wait * 1000)} ms",
                             retry_after_ms=math.ceil(wait * 1000))
        if service_of(method) == _AGENT_SERVICE and hasattr(request, "agent_id"):
            if not request.agent_id:
                request.agent_id = ident.name
            elif request.agent_id != ident.name and "admin" not in ident.roles:
                raise PermissionDenied("permission denied")
        return ident

    async def _refuse(self, context: aio.ServicerContext, exc: AftercareError) -> None:
        retry = getattr(exc, "retry_after_ms", None)
        trailers = (("retry-after-ms", str(retry)),) if retry else ()
        await context.abort(grpc.StatusCode[exc.code_name], str(exc), trailing_metadata=trailers)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        def admit(request: Any, context: aio.ServicerContext) -> Identity | AftercareError:
            metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())
                        if isinstance(v, str)}
            try:
                return self.admit(method, request, metadata, _peer_common_name(context))
            except AftercareError as exc:
                return exc

        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: aio.ServicerContext) -> Any:
                ident = admit(request, context)
                if isinstance(ident, AftercareError):
                    await self._refuse(context, ident)
                set_identity(ident)  # type: ignore[arg-type]
                return await inner(request, context)

            return replaced(handler, unary=unary)
        if handler.unary_stream is not None:
            inner_stream: Any = as_generator(handler.unary_stream)

            async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
                ident = admit(request, context)
                if isinstance(ident, AftercareError):
                    await self._refuse(context, ident)
                set_identity(ident)  # type: ignore[arg-type]
                async for item in inner_stream(request, context):
                    yield item

            return replaced(handler, stream=stream)
        return handler
