"""contract.handler_environment, the one builder of the API Lambda's environment (the construct and
the local stack both call it), against its reader: the handler's own Settings, and Powertools'
documented variables (https://docs.powertools.aws.dev/lambda/python/latest/#environment-variables)."""

from __future__ import annotations

from typing import Any

import pytest

from api_handler.async_api.settings import ENVIRONMENT, Settings
from api_handler.contract import Env, handler_environment
from app_config.models import ApiConfig

POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# What the construct passes from the environment's ApiConfig: the same names in ApiConfig,
# handler_environment's keywords and the handler's Settings.
API_LIMITS = {
    "inline_result_max_bytes",
    "max_request_bytes",
    "max_upload_bytes",
    "allowed_content_types",
    "status_retry_after_seconds",
}
# The rest of what it is given (storage, endpoint, EnvironmentConfig's timeouts), named as Settings names them.
PLACE: dict[str, Any] = {"input_bucket": "in-bucket", "output_bucket": "out-bucket", "failure_bucket": "fail-bucket"}
TIMEOUTS: dict[str, Any] = {"default_invocation_timeout_seconds": 120, "default_request_ttl_seconds": 3600}


def _environment(given: dict[str, Any]) -> dict[str, str]:
    return handler_environment(**given, service_name="inference-api-test", metrics_namespace="Test")


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
    given = {
        **PLACE,
        **TIMEOUTS,
        **api.model_dump(include=API_LIMITS),
        "endpoint_name": "endpoint-1",
        "hosting_mode": hosting_mode,
    }
    settings = Settings.from_environment(_environment(given))
    assert settings.model_dump(include=set(given)) == given


def test_every_variable_is_read_by_the_handler_or_by_powertools() -> None:
    given = {**PLACE, **TIMEOUTS, **ApiConfig().model_dump(include=API_LIMITS)}
    written = set(_environment({**given, "endpoint_name": "e", "hosting_mode": "async"}))
    assert written - set(ENVIRONMENT) == POWERTOOLS_VARIABLES
    # The local-only and callback variables are each deployable's own additions, never built here.
    assert not written & {Env.S3_ENDPOINT_URL, Env.SAGEMAKER_RUNTIME_ENDPOINT_URL, Env.CALLBACKS_ENABLED}


def test_limits_left_out_are_the_handlers_own_defaults() -> None:
    """The local stack passes no limits but the Retry-After: what it sets must be what the handler
    would assume unset."""
    given = {**PLACE, **TIMEOUTS, "endpoint_name": "e", "hosting_mode": "async", "status_retry_after_seconds": 7}
    environment = _environment(given)
    limits = {Env.INLINE_RESULT_MAX_BYTES, Env.MAX_REQUEST_BYTES, Env.MAX_UPLOAD_BYTES, Env.ALLOWED_CONTENT_TYPES}
    assert limits <= set(environment)
    unset = {name: value for name, value in environment.items() if name not in limits}
    assert Settings.from_environment(environment) == Settings.from_environment(unset)
