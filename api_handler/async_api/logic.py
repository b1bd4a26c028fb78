"""Pure functions of the client API: parsing, identifiers, idempotency, status rendering.

Nothing here does I/O, so every rule is testable without AWS and without the handler.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import (
    ApiError,
    BadRequest,
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    Throttled,
    Unavailable,
    UnsupportedMediaType,
)
from .settings import INVOCATION_TIMEOUT_RANGE, REQUEST_TTL_RANGE, Settings

# ------------------------------------------------------------------------- contract
IDEMPOTENCY_HEADER = "idempotency-key"
TIMEOUT_HEADER = "x-invocation-timeout-seconds"
TTL_HEADER = "x-request-ttl-seconds"
REPLAYED_HEADER = "Idempotent-Replayed"

INPUT_PREFIX = "requests/"  # == inference_constructs.storage.INPUT_PREFIX
UPLOAD_PREFIX = "uploads/"  # == inference_constructs.storage.UPLOAD_PREFIX

# Inference ids: "k" + 32 hex (derived from an Idempotency-Key) or "r" + 32 hex (random).
# Both are valid SageMaker InferenceIds (1-64 printable characters) and safe in S3 keys and URLs.
INFERENCE_ID = re.compile(r"^[kr][0-9a-f]{32}$")
UPLOAD_ID = re.compile(r"^u[0-9a-f]{32}$")
# Printable ASCII without spaces, like most idempotency-key conventions (UUIDs, ULIDs...).
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#&^_.+-]*/[a-z0-9][a-z0-9!#&^_.+-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$")
_PATH_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")
# SageMaker's Header shapes (ContentType, Accept) allow at most 1024 characters.
MAX_HEADER_CHARS = 1024

THROTTLED_RETRY_AFTER = 2
UNAVAILABLE_RETRY_AFTER = 5


# ------------------------------------------------------------------------- headers
def lower_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Case-insensitive view of the request headers (last value wins)."""
    headers: dict[str, str] = {}
    for source in (event.get("multiValueHeaders"), event.get("headers")):
        if not isinstance(source, Mapping):
            continue
        for name, value in source.items():
            if isinstance(value, list):
                value = value[-1] if value else None
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    return headers


def media_type(content_type: str | None) -> str:
    """'Application/JSON; charset=utf-8' -> 'application/json'; '' when not a media type."""
    if not content_type:
        return ""
    value = content_type.split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) else ""


def is_allowed(content_type: str | None, allowed: tuple[str, ...]) -> bool:
    value = media_type(content_type)
    if not value:
        return False
    kind = value.split("/", 1)[0]
    return any(item == value or item == f"{kind}/*" for item in allowed)


def is_json(content_type: str | None) -> bool:
    value = media_type(content_type)
    return value == "application/json" or value.endswith("+json")


def require_content_type(content_type: str | None, allowed: tuple[str, ...]) -> str:
    if not content_type or not content_type.strip():
        raise UnsupportedMediaType("the Content-Type header is required; allowed: " + ", ".join(allowed))
    if len(content_type) > MAX_HEADER_CHARS or not content_type.isprintable():
        raise BadRequest(f"Content-Type must be at most {MAX_HEADER_CHARS} printable characters")
    if not is_allowed(content_type, allowed):
        raise UnsupportedMediaType(
            f"Content-Type {content_type[:100]!r} is not accepted; allowed: " + ", ".join(allowed)
        )
    return content_type.strip()


def model_accept(accept: str | None) -> str | None:
    """The Accept header passed to the model, or None to let the container choose.

    `*/*` (what curl and most HTTP libraries send by default) means no preference.
    """
    if accept is None or not accept.strip() or accept.strip() == "*/*":
        return None
    if len(accept) > MAX_HEADER_CHARS or not accept.isprintable():
        raise BadRequest(f"Accept must be at most {MAX_HEADER_CHARS} printable characters")
    return accept.strip()


def int_header(headers: Mapping[str, str], name: str, bounds: tuple[int, int], default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    low, high = bounds
    text = raw.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"header {display(name)} must be a whole number of seconds from {low} to {high}, got {raw[:40]!r}")
    return int(text)


def display(header: str) -> str:
    return "-".join(part.upper() if part in {"ttl", "x"} else part.capitalize() for part in header.split("-"))


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.match(raw):
        raise BadRequest("header Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return raw


# ------------------------------------------------------------------------- identifiers
def inference_id_for_key(key: str) -> str:
    """Deterministic: the same Idempotency-Key always names the same inference."""
    return "k" + hashlib.sha256(b"idempotency-key\n" + key.encode("ascii")).hexdigest()[:32]


def new_inference_id() -> str:
    return "r" + uuid.uuid4().hex


def new_upload_id() -> str:
    return "u" + uuid.uuid4().hex


def receipt_key(inference_id: str) -> str:
    return f"{INPUT_PREFIX}{inference_id}/receipt.json"


def input_key(inference_id: str, payload_sha256: str) -> str:
    # Content-addressed under the inference: two concurrent submits with the same key and
    # different payloads can never overwrite each other's input before SageMaker reads it.
    return f"{INPUT_PREFIX}{inference_id}/input-{payload_sha256[:32]}"


def upload_key(upload_id: str) -> str:
    return f"{UPLOAD_PREFIX}{upload_id}"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri or "")
    if not match:
        raise InternalError(f"not an S3 URI: {uri!r}")
    return match.group(1), match.group(2)


# ------------------------------------------------------------------------- submit
@dataclass(frozen=True)
class SubmitRequest:
    content_type: str
    accept: str | None
    idempotency_key: str | None
    invocation_timeout_seconds: int
    request_ttl_seconds: int
    payload: bytes | None = None  # inline body
    upload_id: str | None = None  # or a completed upload

    @property
    def fingerprint(self) -> str:
        """What must match for a repeated Idempotency-Key to be the same request."""
        if self.upload_id is not None:
            source = f"upload\n{self.upload_id}"
        else:
            source = f"inline\n{self.content_type.lower()}\n{payload_sha256(self.payload or b'')}"
        return hashlib.sha256(source.encode()).hexdigest()


def payload_sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def decode_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadRequest("the request body could not be read")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the request body is not valid base64") from None
    return body.encode("utf-8", errors="surrogateescape")


def parse_upload_reference(payload: bytes, content_type: str) -> str | None:
    """The upload id when the body is exactly `{"uploadId": "..."}` (JSON), else None.

    Any other JSON document is a model input. A model input of exactly that shape must be
    sent through the upload flow itself (docs/api.md).
    """
    if not is_json(content_type) or len(payload) > 256:
        return None
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict) or set(document) != {"uploadId"}:
        return None
    upload_id = document["uploadId"]
    if not isinstance(upload_id, str) or not UPLOAD_ID.match(upload_id):
        raise BadRequest("uploadId must be the id returned by POST /uploads ('u' and 32 hex digits)")
    return upload_id


def parse_submit(event: Mapping[str, Any], settings: Settings) -> SubmitRequest:
    headers = lower_headers(event)
    key = idempotency_key(headers)
    timeout = int_header(headers, TIMEOUT_HEADER, INVOCATION_TIMEOUT_RANGE, settings.default_invocation_timeout_seconds)
    ttl = int_header(headers, TTL_HEADER, REQUEST_TTL_RANGE, settings.default_request_ttl_seconds)
    content_type = require_content_type(headers.get("content-type"), settings.allowed_content_types)
    accept = model_accept(headers.get("accept"))
    payload = decode_body(event)
    if len(payload) > settings.max_request_bytes:
        raise PayloadTooLarge(
            f"the body has {len(payload)} bytes; inline requests take at most {settings.max_request_bytes}. "
            "Use POST /uploads for larger payloads (up to 1 GB)."
        )
    if not payload:
        raise BadRequest("the request body is empty: send the model input as the body")
    upload_id = parse_upload_reference(payload, content_type)
    return SubmitRequest(
        content_type=content_type,
        accept=accept,
        idempotency_key=key,
        invocation_timeout_seconds=timeout,
        request_ttl_seconds=ttl,
        payload=None if upload_id else payload,
        upload_id=upload_id,
    )


# ------------------------------------------------------------------------- receipts
@dataclass(frozen=True)
class Receipt:
    """What InvokeEndpointAsync answered, persisted next to the input.

    Status lookups read OutputLocation/FailureLocation from here instead of guessing
    SageMaker's object names; written with If-None-Match it is also the idempotency record.
    """

    inferenceId: str
    fingerprint: str
    contentType: str
    accept: str | None
    inputLocation: str
    outputLocation: str
    failureLocation: str | None
    invocationTimeoutSeconds: int
    requestTtlSeconds: int
    createdAt: str
    uploadId: str | None = None
    version: int = 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Receipt:
        try:
            raw = json.loads(data)
            return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})
        except (ValueError, TypeError) as error:
            raise InternalError(f"unreadable receipt: {error}") from None


# Slack on top of TTL + invocation timeout before a silent request is called expired:
# covers CloudWatch-style delays in SageMaker writing the failure object.
EXPIRY_GRACE_SECONDS = 300


def expired_reason(receipt: Receipt, now: datetime) -> str | None:
    """Why a request with neither output nor failure object can no longer complete.

    SageMaker drops a request that waited longer than RequestTTLSeconds, and one that
    started must finish within InvocationTimeoutSeconds. Past both (plus grace) no
    result can appear, so "InProgress" would be a lie the client polls forever.
    """
    created = datetime.fromisoformat(receipt.createdAt.replace("Z", "+00:00"))
    limit = receipt.requestTtlSeconds + receipt.invocationTimeoutSeconds + EXPIRY_GRACE_SECONDS
    if (now - created).total_seconds() <= limit:
        return None
    return (
        f"RequestExpired: no result within RequestTTLSeconds={receipt.requestTtlSeconds} + "
        f"InvocationTimeoutSeconds={receipt.invocationTimeoutSeconds} (+{EXPIRY_GRACE_SECONDS} s) "
        f"of submission at {receipt.createdAt}; submit it again"
    )


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------- answers
def status_url(event: Mapping[str, Any], inference_id: str) -> str:
    """Absolute URL of GET /invocations/{id} as the client called us, else a relative one.

    requestContext.path is the path the client used (with the stage, or a custom domain's
    base path); event.path is the resource path. Their difference is the prefix.
    """
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    resource_path = event.get("path") if isinstance(event.get("path"), str) else ""
    client_path = context.get("path") if isinstance(context.get("path"), str) else ""
    prefix = ""
    if resource_path and client_path.endswith(resource_path):
        candidate = client_path[: len(client_path) - len(resource_path)]
        prefix = candidate if _PATH_PREFIX.match(candidate) else ""
    relative = f"{prefix}/invocations/{inference_id}"
    domain = context.get("domainName")
    if isinstance(domain, str) and _HOSTNAME.match(domain) and "." in domain:
        return f"{_scheme(event)}://{domain}{relative}"
    return relative


def _scheme(event: Mapping[str, Any]) -> str:
    """https, unless a proxy in front (a local adapter, a load balancer) says plain http."""
    headers = event.get("headers") if isinstance(event.get("headers"), Mapping) else {}
    forwarded = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == "x-forwarded-proto"), None)
    return "http" if forwarded == "http" else "https"


def accepted_body(receipt: Receipt, url: str) -> dict[str, Any]:
    return {"inferenceId": receipt.inferenceId, "status": "InProgress", "statusUrl": url}


def render_output(body: bytes, content_type: str | None, accept: str | None) -> dict[str, Any]:
    """An inline result: parsed JSON, text, or base64 - and which one it is."""
    declared = media_type(content_type)
    if declared in {"", "application/octet-stream", "binary/octet-stream"} and accept:
        declared = media_type(accept)  # SageMaker may store a generic type; the request said what it wanted
    if is_json(declared):
        try:
            return {"output": json.loads(body), "outputEncoding": "json"}
        except ValueError:
            pass
    if declared.startswith("text/") or declared in {"application/jsonlines", "application/x-ndjson"} or is_json(declared):
        try:
            return {"output": body.decode("utf-8"), "outputEncoding": "text"}
        except UnicodeDecodeError:
            pass
    return {"output": base64.b64encode(body).decode("ascii"), "outputEncoding": "base64"}


def failure_text(body: bytes, limit: int) -> tuple[str, bool]:
    return body[:limit].decode("utf-8", errors="replace"), len(body) > limit


# ------------------------------------------------------------------------- AWS errors
_THROTTLING = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
}
_UNAVAILABLE = {
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "SlowDown",
    "RequestTimeout",
}


def map_aws_error(service: str, code: str, message: str, http_status: int | None) -> ApiError:
    """An AWS error (after botocore's bounded retries) as the API's answer.

    Only SageMaker's ValidationError is the client's fault. S3 errors other than
    throttling/availability mean our own configuration is wrong: 500, details logged only.
    """
    if code in _THROTTLING or http_status == 429:
        return Throttled(f"{service} is throttling requests; retry later", retry_after=THROTTLED_RETRY_AFTER)
    if code in _UNAVAILABLE or (http_status is not None and http_status >= 500):
        return Unavailable(f"{service} is unavailable; retry later", retry_after=UNAVAILABLE_RETRY_AFTER)
    if service == "SageMaker" and code == "ValidationError":
        return InvalidRequest(f"SageMaker rejected the request: {message[:500]}")
    return InternalError("the service could not process the request")
