"""Errors the API answers with: each carries its HTTP status and a stable error code.

Clients branch on `error` (stable), humans read `message` (may change).
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(ApiError):
    status = 400
    code = "BadRequest"


class InvalidRequest(ApiError):
    """SageMaker rejected the parameters (its ValidationError)."""

    status = 400
    code = "ValidationError"


class NotFound(ApiError):
    status = 404
    code = "NotFound"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UnsupportedMediaType"


class UploadAlreadyUsed(ApiError):
    """An upload starts one inference; its id was already used by another."""

    status = 409
    code = "UploadAlreadyUsed"


class IdempotencyConflict(ApiError):
    status = 422
    code = "IdempotencyKeyReused"


class Throttled(ApiError):
    status = 429
    code = "Throttled"


class Unavailable(ApiError):
    status = 503
    code = "ServiceUnavailable"


class InternalError(ApiError):
    status = 500
    code = "InternalError"


# Every status code the API documents (docs/openapi.yaml). The property test holds the
# handler to this set; API Gateway itself may also answer 403 (auth) and 429/5xx.
DOCUMENTED_STATUSES = frozenset({200, 201, 202, 400, 404, 409, 413, 415, 422, 429, 500, 503})
