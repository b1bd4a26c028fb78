"""contract.handler_environment, the one builder of the API Lambda's environment (the construct and
the local stack both call it), against its reader: the handler's own Settings, and Powertools'
documented variables (https://docs.powertools.aws.dev/lambda/python/latest/#environment-variables)."""

from __future__ import annotations

import functools

import pytest

from api_handler.async_api.settings import ENVIRONMENT, Settings
from api_handler.contract import Env, handler_environment
from app_config.models import ApiConfig

POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# The stack's choices that are not ApiConfig's: where the data is, which endpoint serves it, and
# the timeouts (EnvironmentConfig's).
_build = functools.partial(
    handler_environment,
    input_bucket="in-bucket",
    output_bucket="out-bucket",
    failure_bucket="fail-bucket",
    endpoint_name="endpoint-1",
    service_name="inference-api-test",
    metrics_namespace="Test",
    default_invocation_timeout_seconds=120,
    default_request_ttl_seconds=3600,
)


def _environment(*, hosting_mode: str = "async", api: ApiConfig) -> dict[str, str]:
    """As the construct calls it: every limit from the environment's ApiConfig."""
    return _build(
        hosting_mode=hosting_mode,
        status_retry_after_seconds=api.status_retry_after_seconds,
        inline_result_max_bytes=api.inline_result_max_bytes,
        max_request_bytes=api.max_request_bytes,
        max_upload_bytes=api.max_upload_bytes,
        allowed_content_types=api.allowed_content_types,
    )


@pytest.mark.parametrize(
    "api",
    [
        ApiConfig(
            inline_result_max_bytes=0,
            max_request_bytes=1,
            max_upload_bytes=1024,
            allowed_content_types=("text/csv",),
            status_retry_after_seconds=3600,
        ),
        ApiConfig(allowed_content_types=("application/json", "image/*"), status_retry_after_seconds=1),
    ],
)
@pytest.mark.parametrize("hosting_mode", ["async", "realtime", "serverless", "multimodel"])
def test_the_handler_reads_back_every_value_it_is_given(api: ApiConfig, hosting_mode: str) -> None:
    settings = Settings.from_environment(_environment(hosting_mode=hosting_mode, api=api))
    assert (settings.input_bucket, settings.output_bucket, settings.failure_bucket, settings.endpoint_name) == (
        "in-bucket",
        "out-bucket",
        "fail-bucket",
        "endpoint-1",
    )
    assert settings.hosting_mode == hosting_mode
    assert (settings.default_invocation_timeout_seconds, settings.default_request_ttl_seconds) == (120, 3600)
    assert settings.inline_result_max_bytes == api.inline_result_max_bytes
    assert settings.max_request_bytes == api.max_request_bytes
    assert settings.max_upload_bytes == api.max_upload_bytes
    assert settings.allowed_content_types == api.allowed_content_types
    assert settings.status_retry_after_seconds == api.status_retry_after_seconds


def test_every_variable_is_read_by_the_handler_or_by_powertools() -> None:
    written = set(_environment(api=ApiConfig()))
    assert written - set(ENVIRONMENT) == POWERTOOLS_VARIABLES
    # The local-only and callback variables are each deployable's own additions, never built here.
    assert not written & {Env.S3_ENDPOINT_URL, Env.SAGEMAKER_RUNTIME_ENDPOINT_URL, Env.CALLBACKS_ENABLED}


def test_limits_left_out_are_the_handlers_own_defaults() -> None:
    """The local stack passes no limits: what it sets must be what the handler would assume unset."""
    environment = _build(hosting_mode="async", status_retry_after_seconds=7)
    limits = {Env.INLINE_RESULT_MAX_BYTES, Env.MAX_REQUEST_BYTES, Env.MAX_UPLOAD_BYTES, Env.ALLOWED_CONTENT_TYPES}
    assert limits <= set(environment)
    unset = {name: value for name, value in environment.items() if name not in limits}
    assert Settings.from_environment(environment) == Settings.from_environment(unset)
