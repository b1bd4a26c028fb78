"""The I/O of the client API: S3 and the SageMaker runtime, behind three operations.

boto3 clients are created once per execution environment with short timeouts and
bounded retries; a per-request Deadline refuses to start a call that could outlive
API Gateway's 29 s integration timeout (answering 503 + Retry-After instead of letting
API Gateway answer a bare 504).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import logic
from .callback_state import CallbackState, state_key
from .callback_url import refusal_at_submit
from .callers import Caller
from .errors import (
    ApiError,
    BadRequest,
    IdempotencyConflict,
    InternalError,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UploadAlreadyUsed,
)
from .logic import Receipt, SubmitRequest
from .model_name import forwarded_attributes
from .settings import Settings

log = logging.getLogger(__name__)

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
# CopyObject of an upload (up to 1 GB) is a server-side copy that takes seconds; S3 keeps
# the connection busy meanwhile. One attempt with a long read timeout: a retry is the
# client's (same Idempotency-Key), and the claim makes it resume, not copy twice.
S3_COPY_CONFIG = Config(
    connect_timeout=1, read_timeout=18, retries={"mode": "standard", "total_max_attempts": 1}, signature_version="s3v4"
)
S3_COPY_WORST_CASE_SECONDS = 19.0
# API Gateway waits 29 s; the Lambda timeout is 28 s. Answer before then.
REQUEST_BUDGET_SECONDS = 27.0
FAILURE_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Clients:
    s3: Any
    sagemaker: Any
    s3_copy: Any = None  # defaults to s3


def build_clients(settings: Settings) -> Clients:
    return Clients(
        s3=boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=S3_CONFIG),
        sagemaker=boto3.client(
            "sagemaker-runtime", endpoint_url=settings.sagemaker_runtime_endpoint_url, config=SAGEMAKER_CONFIG
        ),
        s3_copy=boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=S3_COPY_CONFIG),
    )


class Deadline:
    """Time left for this request; `remaining` is Lambda's context clock when there is one."""

    def __init__(self, remaining: Callable[[], float] | None = None, budget: float = REQUEST_BUDGET_SECONDS) -> None:
        start = time.monotonic()
        self._remaining = remaining or (lambda: budget - (time.monotonic() - start))

    def require(self, seconds: float, what: str) -> None:
        if self._remaining() < seconds:
            raise Unavailable(
                f"not enough time left to {what} safely; retry", retry_after=logic.UNAVAILABLE_RETRY_AFTER
            )


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class InferenceService:
    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.settings = settings
        self.s3 = clients.s3
        self.s3_copy = clients.s3_copy or clients.s3
        self.sagemaker = clients.sagemaker

    # ------------------------------------------------------------------ S3 helpers
    def _s3(self, deadline: Deadline, operation: str, **params: Any) -> Any:
        copy = operation == "copy_object"
        deadline.require(S3_COPY_WORST_CASE_SECONDS if copy else S3_WORST_CASE_SECONDS, f"call S3 {operation}")
        try:
            return getattr(self.s3_copy if copy else self.s3, operation)(**params)
        except ClientError as error:
            raise _mapped("S3", error) from error
        except BotoCoreError as error:  # timeouts, connection errors after retries
            raise Unavailable("S3 is unreachable; retry later", retry_after=logic.UNAVAILABLE_RETRY_AFTER) from error

    def _head(self, deadline: Deadline, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._s3(deadline, "head_object", Bucket=bucket, Key=key)
        except ApiError as error:
            if _is_missing(error.__cause__):
                return None
            raise
        return head

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
        body: bytes = response["Body"].read()
        return body

    def read_callback_state(self, deadline: Deadline, inference_id: str) -> CallbackState:
        """The completion callback's delivery state (Pending until the notifier writes one)."""
        return CallbackState.from_json(self._read(deadline, self.settings.input_bucket, state_key(inference_id)))

    def read_receipt(self, deadline: Deadline, inference_id: str) -> Receipt | None:
        data = self._read(deadline, self.settings.input_bucket, logic.receipt_key(inference_id))
        return None if data is None else Receipt.from_json(data)

    def _create(self, deadline: Deadline, key: str, body: bytes) -> bool:
        """Write a JSON object only if `key` does not exist: True when written, False when it
        did (HTTP 412), or a concurrent conditional write to it is in flight (409)."""
        try:
            self._s3(
                deadline,
                "put_object",
                Bucket=self.settings.input_bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ApiError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and _status(cause) in {409, 412}:
                return False
            raise
        return True

    def _write_receipt(self, deadline: Deadline, receipt: Receipt) -> bool:
        return self._create(deadline, logic.receipt_key(receipt.inferenceId), receipt.to_json())

    def _delete_quietly(self, key: str, why: str) -> None:
        """Best-effort cleanup: a leftover object expires with the bucket's lifecycle."""
        try:
            self.s3.delete_object(Bucket=self.settings.input_bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            log.warning("could not delete %s (%s): %s", key, why, error)

    # ------------------------------------------------------------------ operations
    def submit(self, request: SubmitRequest, caller: Caller, deadline: Deadline) -> tuple[Receipt, bool]:
        """Store the input, start the inference, persist its receipt. Returns (receipt, replayed)."""
        if request.callback_url is not None:
            refusal = refusal_at_submit(request.callback_url, self.settings.callback_policy)
            if refusal:
                raise BadRequest(f"callback URL refused: {refusal}")
        if request.idempotency_key is not None:
            inference_id = logic.inference_id_for_key(caller, request.idempotency_key)
            existing = self.read_receipt(deadline, inference_id)
            if existing is not None:
                return _replay(existing, request, caller), True
        else:
            inference_id = logic.new_inference_id()

        if request.upload_id is not None:
            upload = self._take_upload(deadline, inference_id, request.upload_id, caller)
            content_type, input_location = upload.content_type, upload.input_location
        else:
            upload = None
            content_type, input_location = self._store_inline(deadline, inference_id, request)
        try:
            started = self._invoke(deadline, inference_id, content_type, input_location, request)
        except ApiError:
            if upload is not None:  # nothing started: the upload may be used again
                self._delete_quietly(upload.claim_key, "release the claim of an upload after a failed start")
            raise
        if upload is not None:
            # SageMaker reads the copy; the upload itself is spent. A re-POST to the upload form
            # (valid until it expires) recreates an object nothing will ever read: the claim
            # refuses a second inference from the same upload id.
            self._delete_quietly(upload.upload_key, "remove a used upload")

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
            caller=caller.key,
            callerArn=caller.arn,
            customAttributes=request.custom_attributes,
            callbackUrl=request.callback_url,
            model=request.model,
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
        return _replay(winner, request, caller), True

    def _invoke(
        self, deadline: Deadline, inference_id: str, content_type: str, input_location: str, request: SubmitRequest
    ) -> dict[str, Any]:
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
        # InvokeEndpointAsync has no TargetModel: a named model travels as custom attribute model=<name>.
        attributes = forwarded_attributes(request.model, request.custom_attributes)
        if attributes:
            params["CustomAttributes"] = attributes
        try:
            started: dict[str, Any] = self.sagemaker.invoke_endpoint_async(**params)
        except ClientError as error:
            raise _mapped("SageMaker", error) from error
        except BotoCoreError as error:
            raise Unavailable(
                "SageMaker is unreachable; retry later", retry_after=logic.UNAVAILABLE_RETRY_AFTER
            ) from error
        return started

    def _store_inline(self, deadline: Deadline, inference_id: str, request: SubmitRequest) -> tuple[str, str]:
        """(content type, S3 URI) of the stored inline body: written FIRST, before any invoke."""
        bucket = self.settings.input_bucket
        payload = request.payload or b""
        key = logic.input_key(inference_id, logic.payload_sha256(payload))
        self._s3(deadline, "put_object", Bucket=bucket, Key=key, Body=payload, ContentType=request.content_type)
        return request.content_type, logic.s3_uri(bucket, key)

    # ------------------------------------------------------------------ uploads
    def _take_upload(self, deadline: Deadline, inference_id: str, upload_id: str, caller: Caller) -> TakenUpload:
        """Claim the caller's upload for this inference, copy it to the inference's own key,
        validate the copy. What SageMaker reads is that copy: no client can write there.

        The claim (`requests/<upload id>/claim.json`, created only if absent) makes an upload
        single use; the same inference (a retry with the same Idempotency-Key) resumes it.
        """
        bucket = self.settings.input_bucket
        source = logic.upload_key(caller, upload_id)
        claim_key = logic.upload_claim_key(upload_id)
        claim = self._read_claim(deadline, claim_key)
        if claim is None:
            if self._head(deadline, bucket, source) is None:
                raise _no_upload(upload_id)
            claim = {
                "inferenceId": inference_id,
                "caller": caller.key,
                "inputKey": logic.upload_input_key(inference_id, uuid.uuid4().hex),
            }
            if not self._create(deadline, claim_key, json.dumps(claim, sort_keys=True).encode()):
                claim = self._read_claim(deadline, claim_key)
                if claim is None:  # a concurrent submit's conditional write is still in flight (409)
                    raise Unavailable(
                        f"upload {upload_id} is being submitted by a concurrent request; retry",
                        retry_after=logic.UNAVAILABLE_RETRY_AFTER,
                    )
        if claim.get("caller") != caller.key:
            raise _no_upload(upload_id)  # someone else's upload id: as if it did not exist
        if claim.get("inferenceId") != inference_id:
            raise UploadAlreadyUsed(
                f"upload {upload_id} already started inference {claim.get('inferenceId')}; "
                "each upload starts one inference: POST /uploads again for another"
            )
        input_key = str(claim["inputKey"])
        copied = self._head(deadline, bucket, input_key) is None
        if copied:  # copied once, never overwritten: a resumed submit finds the copy in place
            try:
                self._s3(
                    deadline,
                    "copy_object",
                    Bucket=bucket,
                    Key=input_key,
                    CopySource={"Bucket": bucket, "Key": source},
                    MetadataDirective="COPY",
                )
            except ApiError as error:
                self._delete_quietly(claim_key, "release the claim of an upload that could not be copied")
                if _is_missing(error.__cause__):
                    raise _no_upload(upload_id) from None
                raise
        try:
            content_type = self._validate_copy(deadline, upload_id, input_key)
        except ApiError:
            if copied:  # a copy from an earlier attempt may already be what SageMaker reads
                self._delete_quietly(input_key, "remove a refused upload copy")
                self._delete_quietly(claim_key, "release the claim of a refused upload")
            raise
        return TakenUpload(claim_key, source, content_type, logic.s3_uri(bucket, input_key))

    def _read_claim(self, deadline: Deadline, key: str) -> dict[str, Any] | None:
        data = self._read(deadline, self.settings.input_bucket, key)
        if data is None:
            return None
        try:
            claim = json.loads(data)
        except ValueError as error:
            raise InternalError(f"unreadable upload claim {key}: {error}") from None
        return claim if isinstance(claim, dict) else {}

    def _validate_copy(self, deadline: Deadline, upload_id: str, input_key: str) -> str:
        """The copy's content type, once its size and type are what the API accepts."""
        head = self._head(deadline, self.settings.input_bucket, input_key)
        if head is None:  # pragma: no cover - copied a moment ago
            raise Unavailable("the upload copy is not visible yet; retry", retry_after=logic.UNAVAILABLE_RETRY_AFTER)
        size = int(head.get("ContentLength", 0))
        if size == 0:
            raise BadRequest(f"upload {upload_id} is empty")
        limit = self.settings.max_upload_bytes
        if size > limit:
            raise PayloadTooLarge(f"upload {upload_id} has {size} bytes; uploads take at most {limit} bytes")
        return logic.require_content_type(head.get("ContentType"), self.settings.allowed_content_types)

    def create_upload(self, content_type: str, caller: Caller, deadline: Deadline) -> dict[str, Any]:
        """A presigned POST (an HTML-form upload) whose signed policy bounds what S3 accepts:
        this exact key, this exact Content-Type, 1 to max_upload_bytes bytes
        (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html).
        A presigned PUT cannot bound the size: S3 signs headers, not a range of lengths.
        """
        upload_id = logic.new_upload_id()
        expires = self.settings.upload_url_expiry_seconds
        deadline.require(1, "sign the upload form")
        post = self.s3.generate_presigned_post(
            Bucket=self.settings.input_bucket,
            Key=logic.upload_key(caller, upload_id),
            Fields={"Content-Type": content_type},
            Conditions=logic.upload_policy_conditions(content_type, self.settings.max_upload_bytes),
            ExpiresIn=expires,
        )
        return {
            "uploadId": upload_id,
            "uploadUrl": post["url"],
            "method": "POST",
            "fields": post["fields"],
            "fileField": "file",
            "expiresAt": _in_seconds(expires),
            "maxBytes": self.settings.max_upload_bytes,
        }

    def status(self, inference_id: str, caller: Caller, url: str, deadline: Deadline) -> Answer:
        receipt = self.read_receipt(deadline, inference_id)
        if receipt is None or not receipt.belongs_to(caller):
            # Another caller's inference is answered exactly like an unknown id.
            raise NotFound(f"no inference with id {inference_id}")
        answer = self.document(receipt, url, deadline)
        if receipt.callbackUrl:
            answer.body["callback"] = self.read_callback_state(deadline, inference_id).public()
        return answer

    def document(self, receipt: Receipt, url: str, deadline: Deadline, inline_limit: int | None = None) -> Answer:
        """What GET /invocations/{id} answers for this receipt (without the callback state):
        also the `data` of a callback event (api_handler/notifier). `inline_limit` lowers the
        size up to which a result is inlined (the callback's payload cap)."""
        inference_id = receipt.inferenceId
        inline_max = self.settings.inline_result_max_bytes if inline_limit is None else inline_limit
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
            if size <= inline_max:
                data = self._read(deadline, out_bucket, out_key)
            if data is not None and len(data) <= inline_max:
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
                return Answer(
                    200, {**base, "status": "Failed", "failureReason": text, "failureTruncated": truncated}, {}
                )

        reason = logic.expired_reason(receipt, datetime.now(UTC))
        if reason is not None:
            return Answer(200, {**base, "status": "Failed", "failureReason": reason, "failureTruncated": False}, {})
        retry = str(self.settings.status_retry_after_seconds)
        return Answer(202, {**base, "status": "InProgress"}, {"Retry-After": retry})


@dataclass(frozen=True)
class TakenUpload:
    claim_key: str
    upload_key: str
    content_type: str
    input_location: str


def _no_upload(upload_id: str) -> BadRequest:
    return BadRequest(
        f"upload {upload_id} has no object: POST the payload to the upload form first "
        "(uploads belong to the caller that created them)"
    )


def _replay(existing: Receipt, request: SubmitRequest, caller: Caller) -> Receipt:
    # The id already includes the caller; a receipt of someone else at it would be a hash
    # collision or a pre-caller receipt. Refused like any reuse, revealing nothing.
    if existing.fingerprint != request.fingerprint or not existing.belongs_to(caller):
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
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
