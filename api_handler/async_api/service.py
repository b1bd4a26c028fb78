"""The I/O of the client API: S3 and the SageMaker runtime, behind three operations.

boto3 clients are created once per execution environment with short timeouts and
bounded retries; a per-request Deadline refuses to start a call that could outlive
API Gateway's 29 s integration timeout (answering 503 + Retry-After instead of letting
API Gateway answer a bare 504).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import logic
from .errors import ApiError, BadRequest, IdempotencyConflict, NotFound, PayloadTooLarge, Unavailable
from .logic import Receipt, SubmitRequest
from .settings import MAX_ASYNC_PAYLOAD_BYTES, Settings

# total_max_attempts counts the first try (max_attempts would count retries only).
# Per attempt: connect + read timeout. Standard retry mode backs off 50 ms * 2^n for
# errors and up to 1 s * 2^n for throttling. Worst cases per call (seconds):
#   S3:        2 attempts * (1 + 4) + 1       = 11
#   SageMaker: 3 attempts * (1 + 3) + 1 + 2   = 15
S3_CONFIG = Config(
    connect_timeout=1, read_timeout=4, retries={"mode": "standard", "total_max_attempts": 2}, signature_version="s3v4"
)
SAGEMAKER_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3})
S3_WORST_CASE_SECONDS = 11.0
SAGEMAKER_WORST_CASE_SECONDS = 15.0
# API Gateway waits 29 s; the Lambda timeout is 28 s. Answer before then.
REQUEST_BUDGET_SECONDS = 27.0
FAILURE_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Clients:
    s3: Any
    sagemaker: Any


def build_clients(settings: Settings) -> Clients:
    return Clients(
        s3=boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=S3_CONFIG),
        sagemaker=boto3.client(
            "sagemaker-runtime", endpoint_url=settings.sagemaker_runtime_endpoint_url, config=SAGEMAKER_CONFIG
        ),
    )


class Deadline:
    """Time left for this request; `remaining` is Lambda's context clock when there is one."""

    def __init__(self, remaining: Callable[[], float] | None = None, budget: float = REQUEST_BUDGET_SECONDS) -> None:
        start = time.monotonic()
        self._remaining = remaining or (lambda: budget - (time.monotonic() - start))

    def require(self, seconds: float, what: str) -> None:
        if self._remaining() < seconds:
            raise Unavailable(f"not enough time left to {what} safely; retry", retry_after=logic.UNAVAILABLE_RETRY_AFTER)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class InferenceService:
    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.settings = settings
        self.s3 = clients.s3
        self.sagemaker = clients.sagemaker

    # ------------------------------------------------------------------ S3 helpers
    def _s3(self, deadline: Deadline, operation: str, **params: Any) -> Any:
        deadline.require(S3_WORST_CASE_SECONDS, f"call S3 {operation}")
        try:
            return getattr(self.s3, operation)(**params)
        except ClientError as error:
            raise _mapped("S3", error) from error
        except BotoCoreError as error:  # timeouts, connection errors after retries
            raise Unavailable("S3 is unreachable; retry later", retry_after=logic.UNAVAILABLE_RETRY_AFTER) from error

    def _head(self, deadline: Deadline, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return self._s3(deadline, "head_object", Bucket=bucket, Key=key)
        except ApiError as error:
            if _is_missing(error.__cause__):
                return None
            raise

    def _read(self, deadline: Deadline, bucket: str, key: str, limit: int | None = None) -> bytes | None:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if limit is not None:
            params["Range"] = f"bytes=0-{limit}"
        try:
            response = self._s3(deadline, "get_object", **params)
        except ApiError as error:
            if _is_missing(error.__cause__):
                return None
            raise
        return response["Body"].read()

    def read_receipt(self, deadline: Deadline, inference_id: str) -> Receipt | None:
        data = self._read(deadline, self.settings.input_bucket, logic.receipt_key(inference_id))
        return None if data is None else Receipt.from_json(data)

    def _write_receipt(self, deadline: Deadline, receipt: Receipt) -> bool:
        """True when written; False when a receipt for this id already exists (HTTP 412)."""
        try:
            self._s3(
                deadline,
                "put_object",
                Bucket=self.settings.input_bucket,
                Key=logic.receipt_key(receipt.inferenceId),
                Body=receipt.to_json(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ApiError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and _status(cause) in {409, 412}:
                return False  # 409: a concurrent conditional write to the same key is in flight
            raise
        return True

    # ------------------------------------------------------------------ operations
    def submit(self, request: SubmitRequest, deadline: Deadline) -> tuple[Receipt, bool]:
        """Store the input, start the inference, persist its receipt. Returns (receipt, replayed)."""
        if request.idempotency_key is not None:
            inference_id = logic.inference_id_for_key(request.idempotency_key)
            existing = self.read_receipt(deadline, inference_id)
            if existing is not None:
                return _replay(existing, request), True
        else:
            inference_id = logic.new_inference_id()

        content_type, input_location = self._store_input(deadline, inference_id, request)
        deadline.require(SAGEMAKER_WORST_CASE_SECONDS, "start the inference")
        params: dict[str, Any] = {
            "EndpointName": self.settings.endpoint_name,
            "InputLocation": input_location,
            "ContentType": content_type,
            "InferenceId": inference_id,
            "RequestTTLSeconds": request.request_ttl_seconds,
            "InvocationTimeoutSeconds": request.invocation_timeout_seconds,
        }
        if request.accept:
            params["Accept"] = request.accept
        try:
            started = self.sagemaker.invoke_endpoint_async(**params)
        except ClientError as error:
            raise _mapped("SageMaker", error) from error
        except BotoCoreError as error:
            raise Unavailable("SageMaker is unreachable; retry later", retry_after=logic.UNAVAILABLE_RETRY_AFTER) from error

        receipt = Receipt(
            inferenceId=inference_id,
            fingerprint=request.fingerprint,
            contentType=content_type,
            accept=request.accept,
            inputLocation=input_location,
            outputLocation=started["OutputLocation"],
            failureLocation=started.get("FailureLocation"),
            invocationTimeoutSeconds=request.invocation_timeout_seconds,
            requestTtlSeconds=request.request_ttl_seconds,
            createdAt=logic.utc_now(),
            uploadId=request.upload_id,
        )
        # No deadline check from here on: the inference has started and its receipt must at
        # least be attempted (the Lambda timeout is the hard stop). If it is lost anyway, a
        # retry with the same key starts a duplicate run: at-least-once, never lost.
        unbounded = Deadline(lambda: float("inf"))
        if self._write_receipt(unbounded, receipt):
            return receipt, False
        # A concurrent request with the same Idempotency-Key won the race.
        winner = self.read_receipt(unbounded, inference_id)
        if winner is None:  # pragma: no cover - the object existed a moment ago
            raise Unavailable("a concurrent request is in progress; retry", retry_after=logic.UNAVAILABLE_RETRY_AFTER)
        return _replay(winner, request), True

    def _store_input(self, deadline: Deadline, inference_id: str, request: SubmitRequest) -> tuple[str, str]:
        """(content type, S3 URI) of the stored input. Inline bodies are written FIRST, before any invoke."""
        bucket = self.settings.input_bucket
        if request.upload_id is not None:
            key = logic.upload_key(request.upload_id)
            head = self._head(deadline, bucket, key)
            if head is None:
                raise BadRequest(
                    f"upload {request.upload_id} has no object yet: PUT the payload to the uploadUrl first"
                )
            size = int(head.get("ContentLength", 0))
            if size == 0:
                raise BadRequest(f"upload {request.upload_id} is empty")
            if size > MAX_ASYNC_PAYLOAD_BYTES:
                raise PayloadTooLarge(f"upload {request.upload_id} has {size} bytes; SageMaker accepts at most 1 GB")
            content_type = logic.require_content_type(head.get("ContentType"), self.settings.allowed_content_types)
            return content_type, logic.s3_uri(bucket, key)
        payload = request.payload or b""
        key = logic.input_key(inference_id, logic.payload_sha256(payload))
        self._s3(deadline, "put_object", Bucket=bucket, Key=key, Body=payload, ContentType=request.content_type)
        return request.content_type, logic.s3_uri(bucket, key)

    def create_upload(self, content_type: str, deadline: Deadline) -> dict[str, Any]:
        upload_id = logic.new_upload_id()
        expires = self.settings.upload_url_expiry_seconds
        deadline.require(1, "sign the upload URL")
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.settings.input_bucket,
                "Key": logic.upload_key(upload_id),
                "ContentType": content_type,
            },
            ExpiresIn=expires,
            HttpMethod="PUT",
        )
        return {
            "uploadId": upload_id,
            "uploadUrl": url,
            "method": "PUT",
            "headers": {"Content-Type": content_type},
            "expiresAt": _in_seconds(expires),
            "maxBytes": MAX_ASYNC_PAYLOAD_BYTES,
        }

    def status(self, inference_id: str, url: str, deadline: Deadline) -> Answer:
        receipt = self.read_receipt(deadline, inference_id)
        if receipt is None:
            raise NotFound(f"no inference with id {inference_id}")
        base = {"inferenceId": inference_id, "statusUrl": url, "createdAt": receipt.createdAt}

        out_bucket, out_key = logic.parse_s3_uri(receipt.outputLocation)
        head = self._head(deadline, out_bucket, out_key)
        if head is not None:
            size = int(head.get("ContentLength", 0))
            body: dict[str, Any] = {
                **base,
                "status": "Completed",
                "contentType": head.get("ContentType"),
                "outputBytes": size,
            }
            data = None
            if size <= self.settings.inline_result_max_bytes:
                data = self._read(deadline, out_bucket, out_key)
            if data is not None and len(data) <= self.settings.inline_result_max_bytes:
                body.update(logic.render_output(data, head.get("ContentType"), receipt.accept))
            else:
                expires = self.settings.result_url_expiry_seconds
                body["outputUrl"] = self.s3.generate_presigned_url(
                    "get_object", Params={"Bucket": out_bucket, "Key": out_key}, ExpiresIn=expires
                )
                body["outputUrlExpiresAt"] = _in_seconds(expires)
            return Answer(200, body, {})

        if receipt.failureLocation:
            fail_bucket, fail_key = logic.parse_s3_uri(receipt.failureLocation)
            data = self._read(deadline, fail_bucket, fail_key, limit=FAILURE_BODY_LIMIT)
            if data is not None:
                text, truncated = logic.failure_text(data, FAILURE_BODY_LIMIT)
                return Answer(200, {**base, "status": "Failed", "failureReason": text, "failureTruncated": truncated}, {})

        reason = logic.expired_reason(receipt, datetime.now(timezone.utc))
        if reason is not None:
            return Answer(200, {**base, "status": "Failed", "failureReason": reason, "failureTruncated": False}, {})
        retry = str(self.settings.status_retry_after_seconds)
        return Answer(202, {**base, "status": "InProgress"}, {"Retry-After": retry})


def _replay(existing: Receipt, request: SubmitRequest) -> Receipt:
    if existing.fingerprint != request.fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different payload or Content-Type; use a new key"
        )
    return existing


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_missing(error: BaseException | None) -> bool:
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code")
    return code in {"NoSuchKey", "404", "NotFound"} or _status(error) == 404


def _mapped(service: str, error: ClientError) -> ApiError:
    details = error.response.get("Error", {})
    return logic.map_aws_error(service, str(details.get("Code", "")), str(details.get("Message", "")), _status(error))


def _in_seconds(seconds: int) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
