"""Client of the async inference API: a library (``InferenceClient``) and a CLI (``python -m inference_client``)."""

from inference_client.client import (
    ApiError,
    ClientError,
    InferenceClient,
    InferenceFailed,
    NotReady,
    Result,
    WaitTimeout,
)

__all__ = ["ApiError", "ClientError", "InferenceClient", "InferenceFailed", "NotReady", "Result", "WaitTimeout"]
