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
from datetime import UTC, datetime
from typing import Any

from api_handler import contract

from .callback_url import check_callback_url
from .callers import Caller
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
from .json_input import parse_json
from .model_name import requested_model
from .settings import INVOCATION_TIMEOUT_RANGE, REQUEST_TTL_RANGE, Settings

# ------------------------------------------------------------------------- contract
IDEMPOTENCY_HEADER = "idempotency-key"
TIMEOUT_HEADER = "x-invocation-timeout-seconds"
TTL_HEADER = "x-request-ttl-seconds"
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
REPLAYED_HEADER = "Idempotent-Replayed"
CALLBACK_HEADER = "x-callback-url"

UPLOAD_PREFIX = contract.UPLOAD_PREFIX

# Every pattern here is used with fullmatch: `$` would also accept a trailing newline.
# Inference ids: "k" + 32 hex (derived from caller + Idempotency-Key) or "r" + 32 hex (random).
# Both are valid SageMaker InferenceIds (1-64 printable characters) and safe in S3 keys and URLs.
INFERENCE_ID = re.compile(r"[kr][0-9a-f]{32}")
UPLOAD_ID = re.compile(r"u[0-9a-f]{32}")
# Printable ASCII without spaces, like most idempotency-key conventions (UUIDs, ULIDs...).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#&^_.+-]*/[a-z0-9][a-z0-9!#&^_.+-]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?", re.ASCII)
_PATH_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")
# Whole seconds in ASCII digits only: str.isdigit() is also True for '²' or Arabic-Indic
# digits, which int() then refuses or reads as something the client never wrote.
_SECONDS = re.compile(r"[0-9]{1,9}")
# SageMaker's Header shapes (ContentType, Accept) and CustomAttributesHeader: at most 1024
# characters of pattern \p{ASCII}* (botocore's sagemaker-runtime service-2.json); custom
# attributes are documented as "visible US-ASCII characters" (RFC 7230 field values), so
# visible ASCII and spaces it is, for all three: anything else cannot travel as an HTTP header.
MAX_HEADER_CHARS = 1024
_HEADER_TEXT = re.compile(r"[\x20-\x7e]{1,1024}")
# HTTP's optional whitespace (RFC 9110 OWS): str.strip() would also drop U+00A0, U+2028...
_HTTP_SPACE = " \t"

THROTTLED_RETRY_AFTER = 2
UNAVAILABLE_RETRY_AFTER = 5


# ------------------------------------------------------------------------- headers
def lower_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Case-insensitive view of the request headers (last value wins)."""
    headers: dict[str, str] = {}
    for source in (event.get("multiValueHeaders"), event.get("headers")):
        if not isinstance(source, Mapping):
            continue
        for name, raw in source.items():
            value = (raw[-1] if raw else None) if isinstance(raw, list) else raw
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    return headers


def media_type(content_type: str | None) -> str:
    """'Application/JSON; charset=utf-8' -> 'application/json'; '' when not a media type."""
    if not content_type:
        return ""
    value = content_type.split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else ""


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
    if not _HEADER_TEXT.fullmatch(content_type):
        raise BadRequest(f"Content-Type must be at most {MAX_HEADER_CHARS} printable ASCII characters")
    if not is_allowed(content_type, allowed):
        raise UnsupportedMediaType(
            f"Content-Type {content_type[:100]!r} is not accepted; allowed: " + ", ".join(allowed)
        )
    return content_type.strip()


def model_accept(accept: str | None) -> str | None:
    """The Accept header passed to the model, or None to let the container choose.

    `*/*` (what curl and most HTTP libraries send by default) means no preference.
    """
    if accept is None or not accept.strip(_HTTP_SPACE) or accept.strip(_HTTP_SPACE) == "*/*":
        return None
    if not _HEADER_TEXT.fullmatch(accept):
        raise BadRequest(f"Accept must be at most {MAX_HEADER_CHARS} printable ASCII characters")
    return accept.strip()


def custom_attributes(headers: Mapping[str, str]) -> str | None:
    """X-Amzn-SageMaker-Custom-Attributes, forwarded verbatim to the model (None when absent)."""
    raw = headers.get(CUSTOM_ATTRIBUTES_HEADER)
    if raw is None or not raw.strip(_HTTP_SPACE):
        return None
    if not _HEADER_TEXT.fullmatch(raw):
        raise BadRequest(
            f"header X-Amzn-SageMaker-Custom-Attributes must be at most {MAX_HEADER_CHARS} visible ASCII "
            f"characters (and spaces); got {len(raw)} characters starting {raw[:40]!r}"
        )
    return raw


def int_header(headers: Mapping[str, str], name: str, bounds: tuple[int, int], default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    low, high = bounds
    text = raw.strip(_HTTP_SPACE)
    if not _SECONDS.fullmatch(text) or not low <= int(text) <= high:
        raise BadRequest(
            f"header {display(name)} must be a whole number of seconds from {low} to {high}, got {raw[:40]!r}"
        )
    return int(text)


def display(header: str) -> str:
    return "-".join(part.upper() if part in {"ttl", "x"} else part.capitalize() for part in header.split("-"))


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise BadRequest("header Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return raw


# ------------------------------------------------------------------------- identifiers
def inference_id_for_key(caller: Caller, key: str) -> str:
    """Deterministic per caller: the same caller's Idempotency-Key always names the same
    inference, and the same key from another caller names a different one (keys are not
    guessable handles on someone else's work)."""
    source = b"idempotency-key\n" + caller.key.encode("utf-8", "surrogatepass") + b"\n" + key.encode("ascii")
    return "k" + hashlib.sha256(source).hexdigest()[:32]


def new_inference_id() -> str:
    return "r" + uuid.uuid4().hex


def new_upload_id() -> str:
    return "u" + uuid.uuid4().hex


def receipt_key(inference_id: str) -> str:
    return contract.request_key(inference_id, contract.RECEIPT_FILE)


def input_key(inference_id: str, payload_sha256: str) -> str:
    # Content-addressed under the inference: two concurrent submits with the same key and
    # different payloads can never overwrite each other's input before SageMaker reads it.
    return contract.request_key(inference_id, f"input-{payload_sha256[:32]}")


def upload_key(caller: Caller, upload_id: str) -> str:
    # Under the caller's own folder: another caller naming this upload id finds nothing.
    return f"{UPLOAD_PREFIX}{caller.digest}/{upload_id}"


def upload_policy_conditions(content_type: str, max_bytes: int) -> list[Any]:
    """Conditions of the upload form's POST policy, beside the bucket and key conditions
    botocore adds itself. S3 refuses a POST that breaks any of them
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html):
    exactly this Content-Type, and a file of 1 to max_bytes bytes."""
    return [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]


def upload_claim_key(upload_id: str) -> str:
    # Under requests/ (written by the API only, never by an upload form), in a folder of its own.
    return contract.request_key(upload_id, "claim.json")


def upload_input_key(inference_id: str, attempt: str) -> str:
    # A new name per attempt: an object SageMaker may already read is never overwritten.
    return contract.request_key(inference_id, f"upload-{attempt}")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/(.+)", uri or "", re.DOTALL)
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
    custom_attributes: str | None = None  # X-Amzn-SageMaker-Custom-Attributes, verbatim
    # X-Callback-Url or the upload reference's callbackUrl, checked (callback_url.py). Not part
    # of the fingerprint: a replay with the same key keeps the first submit's callback.
    callback_url: str | None = None
    # The model named by path, query or header (model_name.py); None: the endpoint's only model.
    model: str | None = None

    @property
    def fingerprint(self) -> str:
        """What must match for a repeated Idempotency-Key to be the same request."""
        if self.upload_id is not None:
            source = f"upload\n{self.upload_id}"
        else:
            source = f"inline\n{self.content_type.lower()}\n{payload_sha256(self.payload or b'')}"
        if self.model is not None:  # only then: fingerprints of requests naming no model stay as they were
            source += f"\nmodel\n{self.model}"
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
    try:
        return body.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside the escape range: no bytes mean it
        raise BadRequest("the request body is not valid UTF-8 text") from None


def parse_upload_reference(payload: bytes, content_type: str) -> str | None:
    """The upload id when the body is exactly `{"uploadId": "..."}` (JSON), else None."""
    return parse_upload_document(payload, content_type)[0]


# An upload reference with a callback: the id, the longest callback URL and the JSON around them.
_UPLOAD_REFERENCE_MAX_BYTES = 256 + 2048


def parse_upload_document(payload: bytes, content_type: str) -> tuple[str | None, str | None]:
    """(upload id, callbackUrl) when the body is exactly `{"uploadId": "..."}` or
    `{"uploadId": "...", "callbackUrl": "..."}` (JSON), else (None, None).

    Any other JSON document is a model input. A model input of exactly that shape must be
    sent through the upload flow itself (docs/api.md). A body declared JSON must parse:
    a malformed one would otherwise wait in the queue and fail on a GPU (400 here, with
    the parser's message).
    """
    if not is_json(content_type):
        return None, None
    document = parse_json(payload, what="the request body (declared JSON by its Content-Type)")
    if (
        len(payload) > _UPLOAD_REFERENCE_MAX_BYTES
        or not isinstance(document, dict)
        or set(document) not in ({"uploadId"}, {"uploadId", "callbackUrl"})
    ):
        return None, None
    upload_id = document["uploadId"]
    if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
        raise BadRequest("uploadId must be the id returned by POST /uploads ('u' and 32 hex digits)")
    callback = document.get("callbackUrl")
    if "callbackUrl" in document and not isinstance(callback, str):
        raise BadRequest("callbackUrl must be a string: the https:// URL to POST the completion event to")
    return upload_id, callback


def parse_submit(event: Mapping[str, Any], settings: Settings, path_model: str | None = None) -> SubmitRequest:
    headers = lower_headers(event)
    model = requested_model(event, headers, path_model)
    if model is None and settings.hosting_mode == "multimodel":
        raise BadRequest(
            "this endpoint hosts many models: name one with POST /models/{model}/invocations, ?model=NAME or header "
            "X-Amzn-SageMaker-Target-Model (the model's tarball under the endpoint's prefix, e.g. 'customer-a.tar.gz')"
        )
    key = idempotency_key(headers)
    timeout = int_header(headers, TIMEOUT_HEADER, INVOCATION_TIMEOUT_RANGE, settings.default_invocation_timeout_seconds)
    ttl = int_header(headers, TTL_HEADER, REQUEST_TTL_RANGE, settings.default_request_ttl_seconds)
    content_type = require_content_type(headers.get("content-type"), settings.allowed_content_types)
    accept = model_accept(headers.get("accept"))
    attributes = custom_attributes(headers)
    payload = decode_body(event)
    if len(payload) > settings.max_request_bytes:
        raise PayloadTooLarge(
            f"the body has {len(payload)} bytes; inline requests take at most {settings.max_request_bytes}. "
            "Use POST /uploads for larger payloads (up to 1 GB)."
        )
    if not payload:
        raise BadRequest("the request body is empty: send the model input as the body")
    upload_id, document_callback = parse_upload_document(payload, content_type)
    header_callback = headers.get(CALLBACK_HEADER)
    if header_callback is not None and document_callback is not None and header_callback != document_callback:
        raise BadRequest("X-Callback-Url and the upload reference's callbackUrl differ; send one of them")
    callback = header_callback if header_callback is not None else document_callback
    if callback is not None:
        if not settings.callbacks_enabled:
            raise BadRequest(
                "callbacks are not available here: they need the async hosting mode with callbacks enabled "
                "(in realtime/serverless mode the answer to this request is the result)"
            )
        callback = check_callback_url(callback.strip(_HTTP_SPACE), settings.callback_policy)
    return SubmitRequest(
        content_type=content_type,
        accept=accept,
        idempotency_key=key,
        invocation_timeout_seconds=timeout,
        request_ttl_seconds=ttl,
        payload=None if upload_id else payload,
        upload_id=upload_id,
        custom_attributes=attributes,
        callback_url=callback,
        model=model,
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
    # Version 2: receipts record their caller; a receipt without one (version 1, written
    # before inferences were per caller) answers to nobody and expires with the bucket.
    caller: str | None = None
    callerArn: str | None = None
    customAttributes: str | None = None
    # Where the notifier POSTs the completion event; None: no callback.
    callbackUrl: str | None = None
    model: str | None = None  # the model the request named (model_name.py)
    version: int = 2

    def belongs_to(self, caller: Caller) -> bool:
        return self.caller is not None and self.caller == caller.key

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
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------- answers
def status_url(event: Mapping[str, Any], inference_id: str) -> str:
    """Absolute URL of GET /invocations/{id} as the client called us, else a relative one.

    requestContext.path is the path the client used (with the stage, or a custom domain's
    base path); event.path is the resource path. Their difference is the prefix.
    """
    context = _mapping(event.get("requestContext"))
    resource_path = _text(event.get("path"))
    client_path = _text(context.get("path"))
    prefix = ""
    if resource_path and client_path.endswith(resource_path):
        candidate = client_path[: len(client_path) - len(resource_path)]
        prefix = candidate if _PATH_PREFIX.fullmatch(candidate) else ""
    relative = f"{prefix}/invocations/{inference_id}"
    domain = context.get("domainName")
    if isinstance(domain, str) and _HOSTNAME.fullmatch(domain) and "." in domain:
        return f"{_scheme(event)}://{domain}{relative}"
    return relative


def _mapping(value: object) -> Mapping[str, Any]:
    """An event member that should be an object; anything else counts as empty."""
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _scheme(event: Mapping[str, Any]) -> str:
    """https, unless a proxy in front (a local adapter, a load balancer) says plain http."""
    headers = _mapping(event.get("headers"))
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
        except (ValueError, RecursionError):  # nested too deeply for the parser: shown as text
            pass
    if (
        declared.startswith("text/")
        or declared in {"application/jsonlines", "application/x-ndjson"}
        or is_json(declared)
    ):
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
