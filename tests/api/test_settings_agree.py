"""The stack's configuration and the handler's environment check the allowed content types with
one rule: a list synth accepts is a list the deployed handler starts with, and a list synth
refuses is refused by the handler with the same reason (media ranges as RFC 9110 defines them,
https://www.rfc-editor.org/rfc/rfc9110#name-media-type)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api_handler.async_api.settings import Settings, SettingsError
from app_config.models import ApiConfig

_BUCKETS = {"INPUT_BUCKET": "in-bucket", "OUTPUT_BUCKET": "out-bucket", "FAILURE_BUCKET": "fail-bucket"}


def _handler_refusal(types: tuple[str, ...]) -> str | None:
    environ = {**_BUCKETS, "ENDPOINT_NAME": "e", "ALLOWED_CONTENT_TYPES": ",".join(types)}
    try:
        Settings.from_environment(environ)
    except SettingsError as error:
        return str(error)
    return None


def _config_refusal(types: tuple[str, ...]) -> str | None:
    try:
        ApiConfig(allowed_content_types=types)
    except ValidationError as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    ("types", "reason"),
    [
        (("application/json", "image/*", "application/vnd.example+json"), None),
        (("application/x-npy", "text/csv"), None),
        ((), "name at least one media type"),
        (("json",), "'json' is not a lower-case media type"),
        (("*/*",), "'*/*' is not a lower-case media type"),
        (("text/plain; charset=utf-8",), "'text/plain; charset=utf-8' is not a lower-case media type"),
        (("application/json", "image/"), "'image/' is not a lower-case media type"),
    ],
)
def test_synth_and_the_handler_accept_the_same_lists(types: tuple[str, ...], reason: str | None) -> None:
    handler, config = _handler_refusal(types), _config_refusal(types)
    if reason is None:
        assert (handler, config) == (None, None)
    else:
        assert handler is not None and reason in handler and "ALLOWED_CONTENT_TYPES" in handler
        assert config is not None and reason in config and "allowed_content_types" in config
