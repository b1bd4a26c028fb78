"""Errors that map to one HTTP status each.

The Hugging Face toolkit answers every failure with 400, which makes a client
retry a hopeless request and hides a sick model behind "your fault". Here each
failure says what it is, with one rule: what the client sent wrong is a 4xx
whose message names the field and what was wrong with it (checked before the
request joins a batch, so a bad request never occupies the model); what failed
inside the model is a 500; running out of memory is a 507 (the status
SageMaker's multi-model contract uses for it), which a client may retry later.
"""

from __future__ import annotations

import sys


class ServerError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServerError):
    status = 400
    title = "Bad Request"


class NotAcceptable(ServerError):
    status = 406
    title = "Not Acceptable"


class PayloadTooLarge(ServerError):
    status = 413
    title = "Payload Too Large"


class UnsupportedMediaType(ServerError):
    status = 415
    title = "Unsupported Media Type"


class NotFound(ServerError):
    """404: a model that is not loaded, or not in the artifact (multi_model.py)."""

    status = 404
    title = "Not Found"


class Conflict(ServerError):
    """409: a model loaded already (SageMaker's multi-model contract)."""

    status = 409
    title = "Conflict"


class UnloadableModel(ServerError):
    """422: a load request whose url holds something that does not load (the request's fault)."""

    status = 422
    title = "Unprocessable Entity"


class ModelError(ServerError):
    status = 500
    title = "Model Error"


class ModelNotReady(ServerError):
    status = 503
    title = "Service Unavailable"


class InsufficientStorage(ServerError):
    """507: what SageMaker's multi-model contract uses for out of memory."""

    status = 507
    title = "Insufficient Storage"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA OOM, Python MemoryError and CPU allocator failures.

    torch is looked up in sys.modules rather than imported: this module is used
    on the event loop, which must never block on importing torch.
    """
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    # The CPU allocator raises a plain RuntimeError ("DefaultCPUAllocator: can't
    # allocate memory"); some CUDA paths raise RuntimeError("CUDA out of memory").
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def from_model_exception(exc: BaseException) -> ServerError:
    """Classify an exception raised while running the model."""
    if isinstance(exc, ServerError):
        return exc
    if is_out_of_memory(exc):
        return InsufficientStorage(f"out of memory: {exc}")
    return ModelError(f"{type(exc).__name__}: {exc}")


def with_status(status: int, message: str) -> ServerError:
    """An error with a status chosen by user code (e.g. a PredictionException's error_code)."""
    for cls in (
        BadRequest,
        NotAcceptable,
        PayloadTooLarge,
        UnsupportedMediaType,
        ModelError,
        ModelNotReady,
        InsufficientStorage,
    ):
        if cls.status == status:
            return cls(message)
    error = ServerError(message)
    error.status = status
    error.title = "Client Error" if status < 500 else "Server Error"
    return error
