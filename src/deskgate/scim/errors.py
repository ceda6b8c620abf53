"""SCIM errors: scim2-models' exception classes, plus the Error body helpers.

Every failure the core reports is a :class:`SCIMException` (scim2-models 0.12
hierarchy). An HTTP layer only needs :func:`error_body` and ``exc.status``.
scim2-models has no class for 405, so :class:`MethodNotAllowedException` adds it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from scim2_models import (
    ConflictException,
    Context,
    Error,
    ForbiddenException,
    InvalidFilterException,
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    InvalidVersionException,
    MutabilityException,
    NoTargetException,
    NotFoundException,
    NotImplementedException,
    PathNotFoundException,
    PayloadTooLargeException,
    PreconditionFailedException,
    SCIMException,
    SensitiveException,
    TooManyException,
    UnauthorizedException,
    UniquenessException,
)

__all__ = [
    "ConflictException",
    "ForbiddenException",
    "InvalidFilterException",
    "InvalidPathException",
    "InvalidSyntaxException",
    "InvalidValueException",
    "InvalidVersionException",
    "MethodNotAllowedException",
    "MutabilityException",
    "NoTargetException",
    "NotFoundException",
    "NotImplementedException",
    "PathNotFoundException",
    "PayloadTooLargeException",
    "PreconditionFailedException",
    "SCIMException",
    "SensitiveException",
    "TooManyException",
    "UnauthorizedException",
    "UniquenessException",
    "error_body",
    "error_body_for_status",
    "exception_for_status",
    "exception_from_validation_error",
]


class MethodNotAllowedException(SCIMException):
    """The endpoint does not support the HTTP method (405, no scimType).

    RFC 7644 §3.12 lists 405 among the statuses an Error may carry; scim2-models
    0.12 has no class for it.
    """

    status = 405
    _default_detail = "The endpoint does not support the requested operation"


_BY_STATUS: dict[int, type[SCIMException]] = {
    400: InvalidValueException,
    401: UnauthorizedException,
    403: ForbiddenException,
    404: NotFoundException,
    405: MethodNotAllowedException,
    409: ConflictException,
    412: PreconditionFailedException,
    413: PayloadTooLargeException,
    501: NotImplementedException,
}


def exception_for_status(status: int, detail: str | None = None) -> SCIMException:
    """The exception for an HTTP status: 400 (invalidValue), 401, 403, 404, 405, 409,
    412, 413 or 501. Any other status gives a bare SCIMException carrying it."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(detail=detail)
    exc = SCIMException(detail=detail)
    exc.status = status
    return exc


def error_body(exc: SCIMException) -> dict[str, Any]:
    """The JSON body of an Error response (RFC 7644 §3.12) for an exception.

    ``status`` is a string, ``scimType`` is present only when the error has one.
    """
    error = exc.to_error()
    # The status an exception carries is authoritative (to_error builds from it,
    # except for exceptions made with from_error, whose Error is kept as is).
    if error.status is None:
        error = error.model_copy(update={"status": exc.status})
    return error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def error_body_for_status(
    status: int, detail: str | None = None, scim_type: str | None = None
) -> dict[str, Any]:
    """The Error body for a status, e.g. ``error_body_for_status(404, "No such user")``.

    ``scim_type`` overrides the exception's own (400 defaults to invalidValue).
    """
    exc = exception_for_status(status, detail)
    if scim_type is not None:
        exc.scim_type = scim_type
    return error_body(exc)


def exception_from_validation_error(error: ValidationError) -> SCIMException:
    """Turn a pydantic ValidationError raised by scim2-models into a SCIMException.

    The first error decides the scimType (scim2-models maps a malformed structure
    to ``invalidSyntax`` and a bad value to ``invalidValue``, and keeps the
    scimType of SCIM errors raised inside validators); the details of all errors
    are joined.
    """
    errors = Error.from_validation_errors(error)
    if not errors:  # pragma: no cover - pydantic never raises an empty error
        return InvalidValueException()
    first = errors[0]
    detail = "; ".join(e.detail for e in errors if e.detail) or None
    merged = Error(status=first.status or 400, scim_type=first.scim_type, detail=detail)
    return SCIMException.from_error(merged)
