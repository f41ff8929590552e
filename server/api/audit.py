"""Audit interceptor: every admin call that changes something leaves an audit record.

Read-only Admin calls (Get*, List*) are not recorded; of the Open Inference Protocol,
the repository load/unload calls are. The actor is the authenticated identity
when `[auth]` is on, else the peer address. Sits inside the
error interceptor, so it sees the domain error and records it as the result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from google.protobuf import text_format
from grpc import aio

from server.access.credentials import current_identity
from server.api.wrapping import HandlerWrapper, replaced
from server.errors import AftercareError
from server.records.audit import AuditLog

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/aftercare.v1.Admin/"
_MAX_TARGET = 1000
_READ_ONLY = ("Get", "List")
# The Open Inference Protocol's repository calls change what serves: audited too.
_OIP_AUDITED = {"/inference.GRPCInferenceService/RepositoryModelLoad",
                "/inference.GRPCInferenceService/RepositoryModelUnload"}


def audited_action(method: str) -> str | None:
    """The action name an RPC is audited under, or None for reads and data calls."""
    if method in _OIP_AUDITED:
        return method.rsplit("/", 1)[1]
    if method.startswith(ADMIN_PREFIX):
        action = method[len(ADMIN_PREFIX):]
        return None if action.startswith(_READ_ONLY) else action
    return None


def actor_of(context: aio.ServicerContext) -> str:
    """The authenticated identity (auth on), else the peer address."""
    ident = current_identity()
    if ident is not None:
        return ident.id
    return str(context.peer() or "unknown")


class AuditInterceptor(HandlerWrapper):
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        super().__init__()

    def wraps(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return handler.unary_unary is not None and audited_action(method) is not None

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        action = audited_action(method)
        assert action is not None
        return replaced(handler, unary=self._wrap(action, handler.unary_unary))

    def _wrap(self, action: str, fn: Any) -> Any:
        async def handler(request: Any, context: aio.ServicerContext) -> Any:
            # A short prefix: an audit row names what was asked, not a 4 MB payload.
            target = text_format.MessageToString(request, as_one_line=True)[:_MAX_TARGET]
            try:
                response = await fn(request, context)
            except asyncio.CancelledError:
                await self._write(context, action, target, "cancelled")
                raise
            except AftercareError as exc:
                await self._write(context, action, target, f"{exc.code_name}: {exc}")
                raise
            except Exception:
                await self._write(context, action, target, "INTERNAL")
                raise
            await self._write(context, action, target, "OK")
            return response

        return handler

    async def _write(self, context: aio.ServicerContext, action: str, target: str,
                     result: str) -> None:
        try:
            await self._audit.record(actor_of(context), action, target, result)
        except Exception:  # the audit must not turn a done action into an error
            log.exception("writing the audit record of %s failed", action)
