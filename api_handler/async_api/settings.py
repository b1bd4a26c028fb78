"""The handler's environment, parsed once into a typed, validated model.

A missing or malformed variable is reported with a message naming the variable
(logged; the client gets 500 InternalError) instead of a KeyError deep in a request. pydantic ships in the public
Powertools layer (it is built with the `[all]` extras) and in requirements-dev.txt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from .callback_url import CallbackPolicy

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# SageMaker async limits (InvokeEndpointAsync): REFERENCE.md section 2.
INVOCATION_TIMEOUT_RANGE = (1, 3600)
REQUEST_TTL_RANGE = (60, 21600)
MAX_ASYNC_PAYLOAD_BYTES = 1024**3  # 1 GB

DEFAULT_ALLOWED_CONTENT_TYPES = (
    "application/json",
    "application/jsonlines",
    "text/plain",
    "text/csv",
    "application/octet-stream",
    "application/x-npy",
    "image/*",
    "audio/*",
)

# Environment variable -> field. Kept explicit: this is the contract other tools
# (the CDK construct, the local end-to-end stack) set, see docs/api.md.
ENVIRONMENT = {
    "INPUT_BUCKET": "input_bucket",
    "OUTPUT_BUCKET": "output_bucket",
    "FAILURE_BUCKET": "failure_bucket",
    "ENDPOINT_NAME": "endpoint_name",
    "SAGEMAKER_RUNTIME_ENDPOINT_URL": "sagemaker_runtime_endpoint_url",
    "S3_ENDPOINT_URL": "s3_endpoint_url",
    "DEFAULT_INVOCATION_TIMEOUT_SECONDS": "default_invocation_timeout_seconds",
    "DEFAULT_REQUEST_TTL_SECONDS": "default_request_ttl_seconds",
    "INLINE_RESULT_MAX_BYTES": "inline_result_max_bytes",
    "MAX_REQUEST_BYTES": "max_request_bytes",
    "ALLOWED_CONTENT_TYPES": "allowed_content_types",
    "STATUS_RETRY_AFTER_SECONDS": "status_retry_after_seconds",
    "UPLOAD_URL_EXPIRY_SECONDS": "upload_url_expiry_seconds",
    "MAX_UPLOAD_BYTES": "max_upload_bytes",
    "RESULT_URL_EXPIRY_SECONDS": "result_url_expiry_seconds",
    "HOSTING_MODE": "hosting_mode",
    # Completion callbacks (issue 18, callback_url.py): on only where the notifier is deployed.
    "CALLBACKS_ENABLED": "callbacks_enabled",
    "CALLBACK_ALLOWED_HOSTS": "callback_allowed_hosts",
    "CALLBACK_ALLOW_LOOPBACK_HTTP": "callback_allow_loopback_http",
}


class SettingsError(ValueError):
    """The environment cannot run the handler; the message names each bad variable."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_bucket: str = Field(min_length=3, max_length=63)
    output_bucket: str = Field(min_length=3, max_length=63)
    failure_bucket: str = Field(min_length=3, max_length=63)
    endpoint_name: str = Field(min_length=1, max_length=63)
    # Local runs and tests only: moto / a stub instead of AWS.
    sagemaker_runtime_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None

    default_invocation_timeout_seconds: int = Field(900, ge=INVOCATION_TIMEOUT_RANGE[0], le=INVOCATION_TIMEOUT_RANGE[1])
    default_request_ttl_seconds: int = Field(21600, ge=REQUEST_TTL_RANGE[0], le=REQUEST_TTL_RANGE[1])
    # Results up to this size come back inside the JSON status answer; larger ones as a
    # presigned URL. 4 MiB keeps a base64-encoded result under Lambda's 6 MB response.
    inline_result_max_bytes: int = Field(262_144, ge=0, le=4 * 1024**2)
    # Largest body accepted inline. Lambda's 6 MB event limit applies to the base64-encoded
    # body, so nothing much above 4.5 MB can reach the handler anyway.
    max_request_bytes: int = Field(4 * 1024**2, ge=1, le=6 * 1024**2)
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_CONTENT_TYPES
    status_retry_after_seconds: int = Field(10, ge=1, le=3600)
    upload_url_expiry_seconds: int = Field(900, ge=60, le=3600)
    # Largest upload: bound in the signed upload policy (S3 refuses more) and checked again
    # on the copy at submit. SageMaker's async payload limit is the ceiling.
    max_upload_bytes: int = Field(MAX_ASYNC_PAYLOAD_BYTES, ge=1, le=MAX_ASYNC_PAYLOAD_BYTES)
    result_url_expiry_seconds: int = Field(300, ge=60, le=3600)
    # The endpoint type (app_config/hosting.py): async answers POST /invocations with 202 and
    # InvokeEndpointAsync; realtime and serverless run the model in the request (200, realtime.py).
    # multimodel: realtime with InvokeEndpoint's TargetModel naming the model (a model name is required).
    hosting_mode: Literal["async", "realtime", "serverless", "multimodel"] = "async"
    callbacks_enabled: bool = False
    # Empty: any public https host. Entries are host names, or "*.example.com" for subdomains.
    callback_allowed_hosts: tuple[str, ...] = ()
    # Local pipeline only (`make local` sets it; the stack never does): http://127.0.0.1:<port>.
    callback_allow_loopback_http: bool = False

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip().lower() for item in value.split(",") if item.strip())
        return value

    @property
    def callback_policy(self) -> CallbackPolicy:
        return CallbackPolicy(self.callback_allowed_hosts, self.callback_allow_loopback_http)

    @field_validator("allowed_content_types", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip().lower() for item in value.split(",") if item.strip())
        return value

    @field_validator("allowed_content_types")
    @classmethod
    def _media_ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one media type")
        for item in value:
            kind, _, sub = item.partition("/")
            if not kind or not sub or kind == "*":
                raise ValueError(f"{item!r} is not a media type like 'application/json' or 'image/*'")
        return value

    @field_validator("sagemaker_runtime_endpoint_url", "s3_endpoint_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        raw = {field: environ[name] for name, field in ENVIRONMENT.items() if name in environ}
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            by_field = {field: name for name, field in ENVIRONMENT.items()}
            problems = []
            for item in error.errors():
                field = str(item["loc"][0]) if item["loc"] else "?"
                problems.append(f"{by_field.get(field, field)}: {item['msg']}")
            raise SettingsError("invalid API handler environment: " + "; ".join(problems)) from None
