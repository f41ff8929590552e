"""The one exception hierarchy of aftercare.

Every error a layer raises on purpose is an `AftercareError`; the API edge maps the
class to a gRPC status code through `STATUS_BY_ERROR` (see server/api/errors.py).
Messages of these errors are written for the caller and are safe to send. Anything
that is not an `AftercareError` is a bug: the edge answers INTERNAL with a request id
and logs the traceback, never the exception text.
"""

from __future__ import annotations


class AftercareError(Exception):
    """Base class: a failure with a message that is safe to show a client."""

    code_name = "INTERNAL"


class InvalidInput(AftercareError):
    """The request is malformed: empty text, oversized input, bad field values."""

    code_name = "INVALID_ARGUMENT"


class NotFound(AftercareError):
    """A named thing (model, customer, product, decision, handoff) does not exist."""

    code_name = "NOT_FOUND"


class Conflict(AftercareError):
    """The thing exists but is not in a state that allows the operation."""

    code_name = "FAILED_PRECONDITION"


class Overloaded(AftercareError):
    """A bounded queue is full, or a rate limit is spent; the client should back off
    and retry after `retry_after_ms` (sent as the `retry-after-ms` trailer)."""

    code_name = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str = "", retry_after_ms: int = 100) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class Unavailable(AftercareError):
    """The server is starting, draining or a backend is down; retry elsewhere or later."""

    code_name = "UNAVAILABLE"


class DeadlineExceeded(AftercareError):
    """The caller's deadline passed before the work could run."""

    code_name = "DEADLINE_EXCEEDED"


class PermissionDenied(AftercareError):
    """The caller is known but its role does not allow the operation."""

    code_name = "PERMISSION_DENIED"


class Unauthenticated(AftercareError):
    """The caller did not present valid credentials."""

    code_name = "UNAUTHENTICATED"


class DataError(AftercareError):
    """Input data (a shop directory, a training CSV) cannot be used as a whole."""

    code_name = "INVALID_ARGUMENT"


class ModelBuildError(AftercareError):
    """A model build failed a validation gate (e.g. int8 cosine below the floor)."""

    code_name = "INTERNAL"


MAX_PATH_BYTES = 4096
_QUOTE_CHARS = 60


def short(value: object, limit: int = _QUOTE_CHARS) -> str:
    """`value` for an error message: repr of at most `limit` characters, so a message
    never echoes a huge input back (clients fail on metadata over their limit)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checked_path(raw: str, what: str = "path") -> str:
    """A caller-given filesystem path, or InvalidInput: NUL bytes and paths longer than
    the OS allows are refused here, before any open() can raise a bare OSError."""
    if "\x00" in raw:
        raise InvalidInput(f"{what} contains a NUL byte")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_PATH_BYTES} bytes")
    return raw
