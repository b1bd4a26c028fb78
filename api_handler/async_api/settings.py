"""The handler's environment, parsed once into a typed, validated model.

A missing or malformed variable is reported with a message naming the variable
(logged; the client gets 500 InternalError) instead of a KeyError deep in a request. pydantic ships in the public
Powertools layer (it is built with the `[all]` extras) and in requirements-dev.txt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from api_handler import contract
from api_handler.async_api.callback_url import CallbackPolicy

# Re-exported for the handler's modules; the values live in the contract.
INVOCATION_TIMEOUT_RANGE = contract.INVOCATION_TIMEOUT_RANGE
REQUEST_TTL_RANGE = contract.REQUEST_TTL_RANGE
MAX_ASYNC_PAYLOAD_BYTES = contract.MAX_ASYNC_PAYLOAD_BYTES
DEFAULT_ALLOWED_CONTENT_TYPES = contract.DEFAULT_ALLOWED_CONTENT_TYPES

_ENV = contract.Env
# Environment variable -> field: the names the construct and the local stack set (api_handler/contract.py).
ENVIRONMENT = {
    _ENV.INPUT_BUCKET: "input_bucket",
    _ENV.OUTPUT_BUCKET: "output_bucket",
    _ENV.FAILURE_BUCKET: "failure_bucket",
    _ENV.ENDPOINT_NAME: "endpoint_name",
    _ENV.SAGEMAKER_RUNTIME_ENDPOINT_URL: "sagemaker_runtime_endpoint_url",
    _ENV.S3_ENDPOINT_URL: "s3_endpoint_url",
    _ENV.DEFAULT_INVOCATION_TIMEOUT_SECONDS: "default_invocation_timeout_seconds",
    _ENV.DEFAULT_REQUEST_TTL_SECONDS: "default_request_ttl_seconds",
    _ENV.INLINE_RESULT_MAX_BYTES: "inline_result_max_bytes",
    _ENV.MAX_REQUEST_BYTES: "max_request_bytes",
    _ENV.ALLOWED_CONTENT_TYPES: "allowed_content_types",
    _ENV.STATUS_RETRY_AFTER_SECONDS: "status_retry_after_seconds",
    _ENV.UPLOAD_URL_EXPIRY_SECONDS: "upload_url_expiry_seconds",
    _ENV.MAX_UPLOAD_BYTES: "max_upload_bytes",
    _ENV.RESULT_URL_EXPIRY_SECONDS: "result_url_expiry_seconds",
    _ENV.HOSTING_MODE: "hosting_mode",
    # Completion callbacks (callback_url.py): on only where the notifier is deployed.
    _ENV.CALLBACKS_ENABLED: "callbacks_enabled",
    _ENV.CALLBACK_ALLOWED_HOSTS: "callback_allowed_hosts",
    _ENV.CALLBACK_ALLOW_LOOPBACK_HTTP: "callback_allow_loopback_http",
}


_Model = TypeVar("_Model", bound=BaseModel)


def _comma_separated(value: object) -> object:
    """A variable's "a, B,c" as ("a", "b", "c"): blanks dropped, lower-cased (the lists are
    media types and host names, both case-insensitive)."""
    if isinstance(value, str):
        return tuple(item.strip().lower() for item in value.split(",") if item.strip())
    return value


def _empty_is_unset(value: object) -> object:
    """A variable set to "" means unset: the process environment cannot hold None."""
    return value or None


# Field types shared by the API handler's and the notifier's settings.
CommaSeparated = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]
# An AWS endpoint override (moto, a local stand-in); unset means the service's own endpoint.
EndpointUrl = Annotated[str | None, BeforeValidator(_empty_is_unset)]
# S3 bucket names are 3-63 characters
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
BucketName = Annotated[str, Field(min_length=3, max_length=63)]


class SettingsError(ValueError):
    """The environment cannot run the handler; the message names each bad variable."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_bucket: BucketName
    output_bucket: BucketName
    failure_bucket: BucketName
    endpoint_name: str = Field(min_length=1, max_length=63)
    # Local runs and tests only: moto / a stub instead of AWS.
    sagemaker_runtime_endpoint_url: EndpointUrl = None
    s3_endpoint_url: EndpointUrl = None

    default_invocation_timeout_seconds: int = Field(900, ge=INVOCATION_TIMEOUT_RANGE[0], le=INVOCATION_TIMEOUT_RANGE[1])
    default_request_ttl_seconds: int = Field(21600, ge=REQUEST_TTL_RANGE[0], le=REQUEST_TTL_RANGE[1])
    inline_result_max_bytes: int = Field(
        contract.DEFAULT_INLINE_RESULT_MAX_BYTES, ge=0, le=contract.INLINE_RESULT_MAX_BYTES_LIMIT
    )
    max_request_bytes: int = Field(contract.DEFAULT_MAX_REQUEST_BYTES, ge=1, le=contract.MAX_REQUEST_BYTES_LIMIT)
    # The stack's configuration passed the same check (api_handler/contract.py).
    allowed_content_types: Annotated[CommaSeparated, AfterValidator(contract.check_media_ranges)] = (
        DEFAULT_ALLOWED_CONTENT_TYPES
    )
    status_retry_after_seconds: int = Field(
        10, ge=contract.STATUS_RETRY_AFTER_RANGE[0], le=contract.STATUS_RETRY_AFTER_RANGE[1]
    )
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
    callback_allowed_hosts: CommaSeparated = ()
    # Local pipeline only (`make local` sets it; the stack never does): http://127.0.0.1:<port>.
    callback_allow_loopback_http: bool = False

    @property
    def callback_policy(self) -> CallbackPolicy:
        return CallbackPolicy(self.callback_allowed_hosts, self.callback_allow_loopback_http)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        return model_from_environment(cls, ENVIRONMENT, environ, what="API handler")


def model_from_environment(
    model: type[_Model], names: Mapping[str, str], environ: Mapping[str, str], *, what: str
) -> _Model:
    """`model` from the variables `names` maps to its fields; SettingsError naming each bad
    variable (not the field) otherwise. Shared by the API handler and the notifier."""
    raw = {field: environ[name] for name, field in names.items() if name in environ}
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        by_field = {field: name for name, field in names.items()}
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            problems.append(f"{by_field.get(field, field)}: {item['msg']}")
        raise SettingsError(f"invalid {what} environment: " + "; ".join(problems)) from None
