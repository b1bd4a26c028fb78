"""The API's contract with the stack and the local stack: plain data (standard library only),
and the one rule both sides check the allowed content types with.

It ships inside the Lambda asset (it is part of `api_handler`) and is imported by the
constructs (inference_constructs/api.py, storage.py, callbacks.py, batch_transform.py), the
handler and the notifier, and local_stack. A storage prefix, a route, an environment variable
name, a content type or a limit changes here, and all of them follow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# ------------------------------------------------------------------ storage layout
# Input bucket: requests/<inference id>/receipt.json and the payload beside it (SageMaker reads
# the payload there); uploads/<caller digest>/<upload id> for presigned uploads not yet submitted.
INPUT_PREFIX: Final = "requests/"
UPLOAD_PREFIX: Final = "uploads/"
RECEIPT_FILE: Final = "receipt.json"
# Output and failure buckets: where SageMaker (or the handler itself in the synchronous hosting
# modes) writes a result (AsyncInferenceConfig.OutputConfig.S3OutputPath / S3FailurePath).
OUTPUT_PREFIX: Final = "responses/"
FAILURE_PREFIX: Final = "failures/"


@dataclass(frozen=True)
class ResultPaths:
    """Where SageMaker writes async results, from the output and failure bucket names: the endpoint
    configuration's AsyncInferenceConfig.OutputConfig S3OutputPath and S3FailurePath
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AsyncInferenceOutputConfig.html).
    The stack sets them; the local runtime stand-in writes where they say."""

    output_bucket: str
    failure_bucket: str

    @property
    def s3_output_path(self) -> str:
        # No trailing slash: SageMaker adds "/<inference id>.out" ("/<inference id>-error.out" under
        # the failure path).
        return f"s3://{self.output_bucket}/{OUTPUT_PREFIX.rstrip('/')}"

    @property
    def s3_failure_path(self) -> str:
        return f"s3://{self.failure_bucket}/{FAILURE_PREFIX.rstrip('/')}"


def request_key(folder_id: str, name: str) -> str:
    """`requests/<folder id>/<name>`: an object in the input bucket's folder of one inference
    (or of one upload's claim: upload ids start with "u", inference ids never do)."""
    return f"{INPUT_PREFIX}{folder_id}/{name}"


# ------------------------------------------------------------------ entry points
# Lambda puts the asset root on sys.path; the asset holds the package (inference_constructs/lambda_code.py).
API_HANDLER: Final = "api_handler.app.handler"
NOTIFIER_HANDLER: Final = "api_handler.notifier.handler.handler"


# ------------------------------------------------------------------ routes
@dataclass(frozen=True)
class Route:
    """One method on one resource, in API Gateway's path syntax (`{name}` is a path parameter)."""

    method: str
    path: str

    @property
    def powertools_path(self) -> str:
        """The same path in the Powertools resolver's syntax (`<name>`)."""
        return self.path.replace("{", "<").replace("}", ">")


SUBMIT: Final = Route("POST", "/invocations")
SUBMIT_TO_MODEL: Final = Route("POST", "/models/{model_name}/invocations")
STATUS: Final = Route("GET", "/invocations/{inference_id}")
UPLOAD: Final = Route("POST", "/uploads")
ROUTES: Final = (SUBMIT, SUBMIT_TO_MODEL, STATUS, UPLOAD)


# ------------------------------------------------------------------ the handler's environment
class Env:
    """Names of the environment variables the construct (and the local stack) set for the handler."""

    INPUT_BUCKET: Final = "INPUT_BUCKET"
    OUTPUT_BUCKET: Final = "OUTPUT_BUCKET"
    FAILURE_BUCKET: Final = "FAILURE_BUCKET"
    ENDPOINT_NAME: Final = "ENDPOINT_NAME"
    HOSTING_MODE: Final = "HOSTING_MODE"
    DEFAULT_INVOCATION_TIMEOUT_SECONDS: Final = "DEFAULT_INVOCATION_TIMEOUT_SECONDS"
    DEFAULT_REQUEST_TTL_SECONDS: Final = "DEFAULT_REQUEST_TTL_SECONDS"
    INLINE_RESULT_MAX_BYTES: Final = "INLINE_RESULT_MAX_BYTES"
    MAX_REQUEST_BYTES: Final = "MAX_REQUEST_BYTES"
    MAX_UPLOAD_BYTES: Final = "MAX_UPLOAD_BYTES"
    ALLOWED_CONTENT_TYPES: Final = "ALLOWED_CONTENT_TYPES"
    STATUS_RETRY_AFTER_SECONDS: Final = "STATUS_RETRY_AFTER_SECONDS"
    UPLOAD_URL_EXPIRY_SECONDS: Final = "UPLOAD_URL_EXPIRY_SECONDS"
    RESULT_URL_EXPIRY_SECONDS: Final = "RESULT_URL_EXPIRY_SECONDS"
    CALLBACKS_ENABLED: Final = "CALLBACKS_ENABLED"
    CALLBACK_ALLOWED_HOSTS: Final = "CALLBACK_ALLOWED_HOSTS"
    # Local runs and tests only (moto, the runtime stand-in); the stack never sets them.
    SAGEMAKER_RUNTIME_ENDPOINT_URL: Final = "SAGEMAKER_RUNTIME_ENDPOINT_URL"
    S3_ENDPOINT_URL: Final = "S3_ENDPOINT_URL"
    CALLBACK_ALLOW_LOOPBACK_HTTP: Final = "CALLBACK_ALLOW_LOOPBACK_HTTP"
    # Read by Powertools itself (https://docs.powertools.aws.dev/lambda/python/latest/#environment-variables).
    POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
    POWERTOOLS_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"
    POWERTOOLS_TRACE_DISABLED: Final = "POWERTOOLS_TRACE_DISABLED"


class NotifierEnv:
    """The callback notifier's own variables, on top of the buckets and result settings it shares
    with the API (Env): set by the construct and the local stack, read by notifier/settings.py."""

    SIGNING_KEY_ARN: Final = "CALLBACK_SECRET_ARN"  # the Secrets Manager secret that signs events
    QUEUE_URL: Final = "CALLBACK_QUEUE_URL"
    DEAD_LETTER_QUEUE_URL: Final = "CALLBACK_DEAD_LETTER_QUEUE_URL"
    ALLOWED_HOSTS: Final = Env.CALLBACK_ALLOWED_HOSTS
    ALLOW_LOOPBACK_HTTP: Final = Env.CALLBACK_ALLOW_LOOPBACK_HTTP
    RETRY_BASE_SECONDS: Final = "CALLBACK_RETRY_BASE_SECONDS"
    RETRY_MAX_DELAY_SECONDS: Final = "CALLBACK_RETRY_MAX_DELAY_SECONDS"
    RETRY_WINDOW_SECONDS: Final = "CALLBACK_RETRY_WINDOW_SECONDS"
    CONNECT_TIMEOUT_SECONDS: Final = "CALLBACK_CONNECT_TIMEOUT_SECONDS"
    READ_TIMEOUT_SECONDS: Final = "CALLBACK_READ_TIMEOUT_SECONDS"
    MAX_PAYLOAD_BYTES: Final = "CALLBACK_MAX_PAYLOAD_BYTES"
    STATUS_BASE_URL: Final = "STATUS_BASE_URL"
    # Local runs and tests only: moto instead of AWS.
    SQS_ENDPOINT_URL: Final = "SQS_ENDPOINT_URL"
    SECRETS_MANAGER_ENDPOINT_URL: Final = "SECRETS_MANAGER_ENDPOINT_URL"


DEFAULT_SERVICE_NAME: Final = "inference-api"
# Namespace of the handler's own metrics (InferencesSubmitted, IdempotentReplays, ...).
METRICS_NAMESPACE: Final = "AsyncInference"


# ------------------------------------------------------------------ limits
# API Gateway's integration timeout is 29 s (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html);
# the function times out a second before it, and the handler budgets its AWS calls inside that.
INTEGRATION_TIMEOUT_SECONDS: Final = 29
LAMBDA_TIMEOUT_SECONDS: Final = 28
# REST API payload limit (same page): a larger body never reaches the Lambda.
GATEWAY_MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
# Largest inline request body. Lambda's synchronous invocation payload limit is 6 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html) and applies to the
# base64-encoded body plus the event around it: 4.5 MB is what reliably fits.
MAX_REQUEST_BYTES_LIMIT: Final = 4_500_000
DEFAULT_MAX_REQUEST_BYTES: Final = 4 * 1024**2
# Results up to this size come back inside the JSON status answer, larger ones as a presigned
# URL; 4 MiB keeps a base64-encoded result under Lambda's 6 MB response.
INLINE_RESULT_MAX_BYTES_LIMIT: Final = 4 * 1024**2
DEFAULT_INLINE_RESULT_MAX_BYTES: Final = 262_144
# SageMaker's async payload limit (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html):
# the ceiling of an upload.
MAX_ASYNC_PAYLOAD_BYTES: Final = 1024**3
# InvokeEndpointAsync's InvocationTimeoutSeconds and RequestTTLSeconds ranges (botocore's
# sagemaker-runtime service model).
INVOCATION_TIMEOUT_RANGE: Final = (1, 3600)
REQUEST_TTL_RANGE: Final = (60, 21600)
STATUS_RETRY_AFTER_RANGE: Final = (1, 3600)

# ------------------------------------------------------------------ content types
DEFAULT_ALLOWED_CONTENT_TYPES: Final = (
    "application/json",
    "application/jsonlines",
    "text/plain",
    "text/csv",
    "application/octet-stream",
    "application/x-npy",
    "image/*",
    "audio/*",
)
# An entry of the allowed list: a lower-case "type/subtype" or "type/*" (RFC 9110 token
# characters, https://www.rfc-editor.org/rfc/rfc9110#name-media-type).
MEDIA_RANGE: Final = re.compile(r"[a-z0-9][a-z0-9!#&^_.+-]*/([a-z0-9][a-z0-9!#&^_.+-]*|\*)")


def check_media_ranges(values: tuple[str, ...]) -> tuple[str, ...]:
    """`values` if it is a usable allowed list; else ValueError naming what is wrong. One rule
    for the stack's configuration and the handler's environment, so they cannot disagree."""
    if not values:
        raise ValueError("name at least one media type")
    for item in values:
        if not MEDIA_RANGE.fullmatch(item):
            raise ValueError(f"{item!r} is not a lower-case media type like 'application/json' or 'image/*'")
    return values


# Media types API Gateway hands to the Lambda as text; every other allowed type is a binary
# media type (base64 in the event) so its bytes survive. JSON stays text so the request
# validator can read JSON bodies.
TEXT_MEDIA_PREFIXES: Final = ("text/", "application/json", "application/jsonlines", "application/x-ndjson")


# ------------------------------------------------------------------ the handler's environment, built
def handler_environment(
    *,
    input_bucket: str,
    output_bucket: str,
    failure_bucket: str,
    endpoint_name: str,
    hosting_mode: str,
    default_invocation_timeout_seconds: int,
    default_request_ttl_seconds: int,
    status_retry_after_seconds: int,
    service_name: str,
    metrics_namespace: str,
    inline_result_max_bytes: int = DEFAULT_INLINE_RESULT_MAX_BYTES,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_upload_bytes: int = MAX_ASYNC_PAYLOAD_BYTES,
    allowed_content_types: Sequence[str] = DEFAULT_ALLOWED_CONTENT_TYPES,
) -> dict[str, str]:
    """The API handler's environment (Env), as the stack's construct and the local stack both set it:
    a new variable is added here once and both deployables follow. Each deployable adds only what is
    its own on top (the local stack: its stand-ins' URLs, no tracing). The limits default to the
    handler's own defaults (async_api/settings.py), which is what a run that does not choose them gets.
    """
    return {
        Env.INPUT_BUCKET: input_bucket,
        Env.OUTPUT_BUCKET: output_bucket,
        Env.FAILURE_BUCKET: failure_bucket,
        Env.ENDPOINT_NAME: endpoint_name,
        # async: InvokeEndpointAsync and 202; realtime/serverless: InvokeEndpoint and 200.
        Env.HOSTING_MODE: hosting_mode,
        Env.DEFAULT_INVOCATION_TIMEOUT_SECONDS: str(default_invocation_timeout_seconds),
        Env.DEFAULT_REQUEST_TTL_SECONDS: str(default_request_ttl_seconds),
        Env.INLINE_RESULT_MAX_BYTES: str(inline_result_max_bytes),
        Env.MAX_REQUEST_BYTES: str(max_request_bytes),
        Env.MAX_UPLOAD_BYTES: str(max_upload_bytes),
        Env.ALLOWED_CONTENT_TYPES: ",".join(allowed_content_types),
        Env.STATUS_RETRY_AFTER_SECONDS: str(status_retry_after_seconds),
        Env.POWERTOOLS_SERVICE_NAME: service_name,
        Env.POWERTOOLS_METRICS_NAMESPACE: metrics_namespace,
        # Powertools' own default, written out so a deployed function never inherits another level.
        Env.POWERTOOLS_LOG_LEVEL: "INFO",
    }
