"""Pure rules of the client API: no AWS, no handler."""

from __future__ import annotations

import base64
import json
from datetime import UTC

import pytest

from api_handler.async_api import logic
from api_handler.async_api.callers import Caller
from api_handler.async_api.errors import BadRequest, InternalError, InvalidRequest, Throttled, Unavailable
from api_handler.async_api.service import Deadline
from api_handler.async_api.settings import Settings, SettingsError

BASE = {
    "INPUT_BUCKET": "in-bucket",
    "OUTPUT_BUCKET": "out-bucket",
    "FAILURE_BUCKET": "fail-bucket",
    "ENDPOINT_NAME": "e",
}


def test_inference_ids_are_deterministic_per_caller_and_key_and_valid_sagemaker_ids():
    alice, bob = Caller("123456789012/AROAALICE"), Caller("123456789012/AROABOB")
    first, again, other = (logic.inference_id_for_key(alice, k) for k in ("order-1", "order-1", "order-2"))
    assert first == again != other
    assert logic.inference_id_for_key(bob, "order-1") != first  # keys are per caller
    # SageMaker's InferenceId shape (botocore sagemaker-runtime service-2.json): 1-64, \A\S[\p{Print}]*\z
    shape = _sagemaker_shape("InferenceId")
    for inference_id in (first, logic.new_inference_id()):
        assert logic.INFERENCE_ID.fullmatch(inference_id)
        assert shape["min"] <= len(inference_id) <= shape["max"] and inference_id.isprintable()
        assert not inference_id[0].isspace()


def _sagemaker_shape(name: str) -> dict:
    from botocore.loaders import Loader

    return Loader().load_service_model("sagemaker-runtime", "service-2")["shapes"][name]


def test_fingerprint_covers_body_and_content_type_but_not_overrides():
    def request(payload=b"x", content_type="text/plain", timeout=10):
        return logic.SubmitRequest(content_type, None, "k", timeout, 60, payload=payload)

    assert request().fingerprint == request(timeout=99).fingerprint
    assert request().fingerprint != request(payload=b"y").fingerprint
    assert request().fingerprint != request(content_type="text/csv").fingerprint


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("image/png", True),
        ("application/xml", False),
        ("image", False),
        ("", False),
        ("*/*", False),
    ],
)
def test_content_type_allow_list_with_ranges(content_type, allowed):
    assert logic.is_allowed(content_type, ("application/json", "image/*")) is allowed


@pytest.mark.parametrize(
    ("context", "resource_path", "expected"),
    [
        (
            {"domainName": "x.execute-api.eu-west-1.amazonaws.com", "path": "/v1/invocations"},
            "/invocations",
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/invocations/ID",
        ),
        (
            {"domainName": "api.example.com", "path": "/ml/invocations"},
            "/invocations",
            "https://api.example.com/ml/invocations/ID",
        ),
        ({}, "/invocations", "/invocations/ID"),
        ({"domainName": "evil\r\nX: y", "path": "/v1/invocations"}, "/invocations", "/v1/invocations/ID"),
        ({"domainName": "a.b", "path": "/v 1/invocations"}, "/invocations", "https://a.b/invocations/ID"),
    ],
)
def test_status_url_follows_how_the_client_called_us(context, resource_path, expected):
    assert logic.status_url({"path": resource_path, "requestContext": context}, "ID") == expected


@pytest.mark.parametrize(
    ("proto", "scheme"), [("http", "http"), ("https", "https"), ("gopher", "https"), (None, "https")]
)
def test_status_url_scheme_follows_x_forwarded_proto(proto, scheme):
    event = {
        "path": "/invocations",
        "headers": {"X-Forwarded-Proto": proto} if proto else None,
        "requestContext": {"domainName": "127.0.0.1:3000", "path": "/invocations"},
    }
    assert logic.status_url(event, "ID") == f"{scheme}://127.0.0.1:3000/invocations/ID"


def test_render_output_by_content_type():
    assert logic.render_output(b'{"a": 1}', "application/json", None) == {"output": {"a": 1}, "outputEncoding": "json"}
    assert logic.render_output(b"hi", "text/plain", None) == {"output": "hi", "outputEncoding": "text"}
    # A generic stored type falls back to what the request asked the model for.
    assert logic.render_output(b"[1]", "application/octet-stream", "application/json")["outputEncoding"] == "json"
    binary = logic.render_output(b"\xff", "application/octet-stream", None)
    assert binary == {"output": base64.b64encode(b"\xff").decode(), "outputEncoding": "base64"}
    assert logic.render_output(b"{broken", "application/json", None) == {"output": "{broken", "outputEncoding": "text"}


@pytest.mark.parametrize(
    ("service", "code", "status", "expected"),
    [
        ("SageMaker", "ValidationError", 400, InvalidRequest),
        ("SageMaker", "ThrottlingException", 400, Throttled),
        ("SageMaker", "ServiceUnavailable", 503, Unavailable),
        ("SageMaker", "InternalFailure", 500, Unavailable),
        ("S3", "SlowDown", 503, Unavailable),
        ("S3", "AccessDenied", 403, InternalError),
        ("S3", "ValidationError", 400, InternalError),  # only SageMaker's ValidationError is the client's fault
    ],
)
def test_aws_error_mapping(service, code, status, expected):
    error = logic.map_aws_error(service, code, "message", status)
    assert type(error) is expected
    if expected in (Throttled, Unavailable):
        assert error.retry_after and error.retry_after > 0


def test_upload_reference_only_for_the_exact_shape():
    upload_id = "u" + "0" * 32
    assert logic.parse_upload_reference(json.dumps({"uploadId": upload_id}).encode(), "application/json") == upload_id
    assert logic.parse_upload_reference(json.dumps({"uploadId": upload_id}).encode(), "text/plain") is None
    assert (
        logic.parse_upload_reference(json.dumps({"uploadId": upload_id, "x": 1}).encode(), "application/json") is None
    )
    with pytest.raises(BadRequest, match="uploadId"):
        logic.parse_upload_reference(b'{"uploadId": "../../etc"}', "application/json")


def test_settings_name_the_bad_variable():
    assert Settings.from_environment(
        {**BASE, "ALLOWED_CONTENT_TYPES": "text/plain, image/*"}
    ).allowed_content_types == (
        "text/plain",
        "image/*",
    )
    with pytest.raises(SettingsError, match="ENDPOINT_NAME"):
        Settings.from_environment({k: v for k, v in BASE.items() if k != "ENDPOINT_NAME"})
    with pytest.raises(SettingsError, match="DEFAULT_REQUEST_TTL_SECONDS"):
        Settings.from_environment({**BASE, "DEFAULT_REQUEST_TTL_SECONDS": "30"})


def test_deadline_refuses_calls_that_could_outlive_the_gateway():
    Deadline(lambda: 20.0).require(15, "start the inference")
    with pytest.raises(Unavailable) as refused:
        Deadline(lambda: 10.0).require(15, "start the inference")
    assert refused.value.retry_after


def _receipt(created_at: str, ttl: int = 60, timeout: int = 10) -> logic.Receipt:
    return logic.Receipt(
        inferenceId="k1",
        fingerprint="f",
        contentType="text/plain",
        accept=None,
        inputLocation="s3://in/requests/k1/i",
        outputLocation="s3://out/responses/k1.out",
        failureLocation="s3://fail/failures/k1-error.out",
        invocationTimeoutSeconds=timeout,
        requestTtlSeconds=ttl,
        createdAt=created_at,
    )


def test_a_silent_request_is_expired_only_after_ttl_timeout_and_grace():
    from datetime import datetime, timedelta

    created = datetime(2026, 1, 1, tzinfo=UTC)
    receipt = _receipt("2026-01-01T00:00:00Z", ttl=60, timeout=10)
    limit = 60 + 10 + logic.EXPIRY_GRACE_SECONDS
    assert logic.expired_reason(receipt, created + timedelta(seconds=limit)) is None
    reason = logic.expired_reason(receipt, created + timedelta(seconds=limit + 1))
    assert (
        reason.startswith("RequestExpired")
        and "RequestTTLSeconds=60" in reason
        and "InvocationTimeoutSeconds=10" in reason
    )
