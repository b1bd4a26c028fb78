"""Request decoding and response encoding for the default (non user-code) path.

The payload follows the Hugging Face toolkit: ``{"inputs": ..., "parameters": {...}}``
as JSON, or a bare text body. Decoding is strict so that a malformed request is
a 400 here, not a confusing 500 from inside the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON = "application/json"
TEXT = "text/plain"
_ACCEPTABLE = {"*/*", "application/*", JSON}


@dataclass(frozen=True)
class Payload:
    inputs: list[Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    # A single input gets a single output back; a list gets a list of the same length.
    is_batch: bool = False


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def check_accept(header: str | None) -> None:
    """Raise 406 unless the client accepts JSON (or sent no Accept at all)."""
    if not header or not header.strip():
        return
    for part in header.split(","):
        kind, _, params = part.partition(";")
        # "application/json;q=0" explicitly refuses JSON (RFC 9110 section 12.4.2).
        refused = any(p.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params.split(";"))
        if kind.strip().lower() in _ACCEPTABLE and not refused:
            return
    raise NotAcceptable(f"cannot produce {header!r}: responses are {JSON}")


def check_content_type(header: str | None) -> str:
    kind = media_type(header)
    # No Content-Type at all: the toolkit's default was JSON, keep it.
    if kind in ("", JSON):
        return JSON
    if kind == TEXT:
        return TEXT
    raise UnsupportedMediaType(f"unsupported Content-Type {header!r}: use {JSON} or {TEXT}")


def decode(body: bytes, content_type: str) -> Payload:
    if content_type == TEXT:
        try:
            return Payload(inputs=[body.decode("utf-8")])
        except UnicodeDecodeError as exc:
            raise BadRequest(f"text/plain body is not UTF-8: {exc}") from None
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise BadRequest('the JSON body must be an object with "inputs"')
    inputs = doc["inputs"]
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be a JSON object')
    if isinstance(inputs, list):
        if not inputs:
            raise BadRequest('"inputs" must not be an empty list')
        return Payload(inputs=inputs, parameters=parameters, is_batch=True)
    return Payload(inputs=[inputs], parameters=parameters)


def encode(outputs: list[Any], is_batch: bool) -> bytes:
    body = outputs if is_batch else outputs[0]
    # default=_jsonable: pipelines return numpy scalars and arrays.
    return json.dumps(body, ensure_ascii=False, default=_jsonable).encode("utf-8")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def parameters_key(parameters: dict[str, Any]) -> str:
    """Requests batch together only when this key is equal."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"))
