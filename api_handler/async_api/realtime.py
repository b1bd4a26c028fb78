"""POST /invocations answered synchronously, for real-time and serverless endpoints.

Same route, auth, caller scoping, idempotency, uploads and error shapes as the async mode:
only the start of the inference differs. Instead of InvokeEndpointAsync (which queues the
request and names where its result will appear), InvokeEndpoint runs the model now and
returns its answer; the answer is then written where an async result would be
(responses/<id>.out, or failures/<id>.err for a model error), so the receipt, GET
/invocations/{id}, idempotent replays and large results (a presigned URL instead of an
inline body) work exactly as in async mode.

InvokeEndpoint's limits: payload up to 6 MB, the container answers within 60 s
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html);
API Gateway gives the whole request 29 s, so the model gets at most SYNC_READ_TIMEOUT_SECONDS.
A model error (SageMaker's ModelError: the container answered non-2xx) is the inference's
result - status Failed with the container's message - not an error of the API.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from api_handler import contract

from . import logic
from .errors import PayloadTooLarge, Unavailable
from .logic import SubmitRequest
from .model_name import forwarded_attributes
from .service import Clients, Deadline, InferenceService, _mapped, build_clients
from .settings import Settings

log = logging.getLogger(__name__)

# Where SageMaker puts async results: the handler writes a synchronous answer there too.
OUTPUT_PREFIX = contract.OUTPUT_PREFIX
FAILURE_PREFIX = contract.FAILURE_PREFIX
# InvokeEndpoint's request payload limit (6 MB).
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
# Per endpoint type: serverless endpoints take at most 4 MB
# (https://docs.aws.amazon.com/sagemaker/latest/dg/deploy-model-options.html).
MAX_SERVERLESS_PAYLOAD_BYTES = 4 * 1024 * 1024


def payload_limit(hosting_mode: str) -> int:
    """The largest request body InvokeEndpoint accepts for this kind of endpoint."""
    return MAX_SERVERLESS_PAYLOAD_BYTES if hosting_mode == "serverless" else MAX_SYNC_PAYLOAD_BYTES


# One attempt: a retried inference would run the model twice within the caller's 29 s.
# Read timeout: what is left of API Gateway's 29 s after storing the input and before
# writing the result and answering.
SYNC_READ_TIMEOUT_SECONDS = 20
SYNC_CONFIG = Config(
    connect_timeout=1, read_timeout=SYNC_READ_TIMEOUT_SECONDS, retries={"mode": "standard", "total_max_attempts": 1}
)
SYNC_WORST_CASE_SECONDS = 1 + SYNC_READ_TIMEOUT_SECONDS + 1
SYNC_MODES = frozenset({"realtime", "serverless", "multimodel"})


def output_key(inference_id: str) -> str:
    return f"{OUTPUT_PREFIX}{inference_id}.out"


def failure_key(inference_id: str) -> str:
    return f"{FAILURE_PREFIX}{inference_id}.err"


def invoke_params(
    settings: Settings, inference_id: str, content_type: str, body: bytes, request: SubmitRequest
) -> dict[str, Any]:
    """InvokeEndpoint's parameters (botocore's sagemaker-runtime model: EndpointName and Body required;
    TargetModel only for a multi-model endpoint, which refuses requests without one)."""
    params: dict[str, Any] = {
        "EndpointName": settings.endpoint_name,
        "Body": body,
        "ContentType": content_type,
        "InferenceId": inference_id,
    }
    if request.accept:
        params["Accept"] = request.accept
    if settings.hosting_mode == "multimodel":
        # A multi-model endpoint: TargetModel names the tarball under its prefix (parse_submit requires one).
        params["TargetModel"] = request.model
        attributes = request.custom_attributes
    else:  # one container serving <name>/ folders: the name rides in the custom attributes (model_name.py)
        attributes = forwarded_attributes(request.model, request.custom_attributes)
    if attributes:
        params["CustomAttributes"] = attributes
    return params


def model_error_text(error: ClientError) -> str:
    """The container's own answer inside SageMaker's ModelError (OriginalStatusCode/OriginalMessage)."""
    details = error.response.get("Error", {})
    original = error.response.get("OriginalMessage") or details.get("OriginalMessage") or details.get("Message", "")
    status = error.response.get("OriginalStatusCode") or details.get("OriginalStatusCode")
    prefix = f"the model answered {status}: " if status else "the model failed: "
    return prefix + str(original)


def build_sync_clients(settings: Settings) -> Clients:
    clients = build_clients(settings)
    sync_runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=settings.sagemaker_runtime_endpoint_url, config=SYNC_CONFIG
    )
    return Clients(s3=clients.s3, sagemaker=sync_runtime, s3_copy=clients.s3_copy)


class SyncInferenceService(InferenceService):
    """InferenceService whose inference runs during the request (InvokeEndpoint)."""

    def _invoke(
        self, deadline: Deadline, inference_id: str, content_type: str, input_location: str, request: SubmitRequest
    ) -> dict[str, Any]:
        body = request.payload
        limit = payload_limit(self.settings.hosting_mode)
        if body is None:  # an upload: its copy under requests/ is the input
            bucket, key = logic.parse_s3_uri(input_location)
            head = self._head(deadline, bucket, key) or {}
            size = int(head.get("ContentLength", 0))
            if size > limit:
                raise PayloadTooLarge(
                    f"the upload has {size} bytes; a {self.settings.hosting_mode} endpoint takes at most "
                    f"{limit} (InvokeEndpoint's limit). Larger inputs need hosting mode 'async'."
                )
            body = self._read(deadline, bucket, key) or b""
        elif len(body) > limit:
            raise PayloadTooLarge(
                f"the body has {len(body)} bytes; a {self.settings.hosting_mode} endpoint takes at most {limit} "
                "(InvokeEndpoint's limit). Larger inputs need hosting mode 'async'."
            )
        deadline.require(SYNC_WORST_CASE_SECONDS, "run the inference")
        bucket_out, bucket_failed = self.settings.output_bucket, self.settings.failure_bucket
        try:
            answer = self.sagemaker.invoke_endpoint(
                **invoke_params(self.settings, inference_id, content_type, body, request)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ModelError":
                raise _mapped("SageMaker", error) from error
            self._store(failure_key(inference_id), bucket_failed, model_error_text(error).encode("utf-8"), "text/plain")
            log.info("model error for %s", inference_id)
            # No output object will ever exist; the receipt points at one nobody writes.
            return {
                "OutputLocation": logic.s3_uri(bucket_out, output_key(inference_id)),
                "FailureLocation": logic.s3_uri(bucket_failed, failure_key(inference_id)),
            }
        except ReadTimeoutError as error:
            raise Unavailable(
                f"the model did not answer within {SYNC_READ_TIMEOUT_SECONDS} s (API Gateway allows 29 s per "
                "request); use hosting mode 'async' for long inferences",
                retry_after=logic.UNAVAILABLE_RETRY_AFTER,
            ) from error
        except BotoCoreError as error:
            raise Unavailable(
                "SageMaker is unreachable; retry later", retry_after=logic.UNAVAILABLE_RETRY_AFTER
            ) from error
        result = answer["Body"].read()
        self._store(
            output_key(inference_id), bucket_out, result, answer.get("ContentType") or "application/octet-stream"
        )
        return {
            "OutputLocation": logic.s3_uri(bucket_out, output_key(inference_id)),
            "FailureLocation": logic.s3_uri(bucket_failed, failure_key(inference_id)),
        }

    def _store(self, key: str, bucket: str, body: bytes, content_type: str) -> None:
        # Unbounded: the model has run; its answer must at least be attempted (Lambda's timeout stops it).
        self._s3(
            Deadline(lambda: float("inf")), "put_object", Bucket=bucket, Key=key, Body=body, ContentType=content_type
        )
