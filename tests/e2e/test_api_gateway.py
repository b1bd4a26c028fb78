"""The local API Gateway adapter: the events it builds and the answers it gives itself."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_stack.api_gateway import ApiGatewayServer, build_event, compile_routes, match_route
from local_stack.pipeline import LocalPipeline

from .conftest import Api, receipt_of, s3_uri


def _event_for(method: str, raw_path: str, body: bytes = b"", content_type: str | None = None) -> dict[str, Any]:
    routes = compile_routes()
    found = match_route(routes, method, raw_path.split("?")[0])
    assert found is not None
    route, params = found
    headers = [("Host", "127.0.0.1:3000"), ("X-Multi", "a"), ("X-Multi", "b")]
    if content_type:
        headers.append(("Content-Type", content_type))
    return build_event(
        method=method, raw_path=raw_path, headers=headers, body=body, route=route, path_parameters=params
    )


def test_events_are_rest_api_proxy_v1() -> None:
    event = _event_for("GET", "/invocations/r123?verbose=1&tag=a&tag=b")
    assert event["resource"] == "/invocations/{inference_id}"
    assert event["path"] == "/invocations/r123"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"inference_id": "r123"}
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"verbose": ["1"], "tag": ["a", "b"]}
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"] and event["headers"]["X-Multi"] == "b"
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/invocations/{inference_id}" and context["httpMethod"] == "GET"
    assert context["stage"] and context["requestId"] and context["identity"]["sourceIp"] == "127.0.0.1"


def test_binary_bodies_are_base64_and_text_bodies_are_not() -> None:
    binary = bytes(range(256))
    event = _event_for("POST", "/invocations", binary, "application/octet-stream")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == binary
    event = _event_for("POST", "/invocations", '{"inputs": "é"}'.encode(), "application/json; charset=utf-8")
    assert event["isBase64Encoded"] is False and event["body"] == '{"inputs": "é"}'
    assert _event_for("POST", "/invocations", b"a,b", "text/csv")["isBase64Encoded"] is False


def test_only_declared_routes_match() -> None:
    routes = compile_routes()
    assert match_route(routes, "GET", "/invocations") is None
    assert match_route(routes, "DELETE", "/invocations/r1") is None
    assert match_route(routes, "GET", "/invocations/r1/extra") is None


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """The adapter in front of a scripted handler: returns whatever ``answer["value"]`` holds."""
    events: list[dict[str, Any]] = []
    answer: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        if isinstance(answer.get("value"), Exception):
            raise answer["value"]
        return answer.get("value")

    server = ApiGatewayServer(handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.port}", events, answer
    server.shutdown()


def test_handler_answers_become_http_responses(gateway: Any) -> None:
    url, events, answer = gateway
    answer["value"] = {
        "statusCode": 201,
        "headers": {"X-One": "1"},
        "multiValueHeaders": {"X-Two": ["a", "b"]},
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    response = httpx.post(
        f"{url}/uploads", content=b"{}", headers={"Content-Type": "application/json"}, trust_env=False
    )
    assert response.status_code == 201 and response.content == b"\x00\x01"
    assert response.headers["X-One"] == "1" and response.headers["X-Two"] == "a, b"
    assert events[-1]["resource"] == "/uploads" and events[-1]["body"] == "{}"


@pytest.mark.parametrize("value", [RuntimeError("boom"), {"no": "statusCode"}, None])
def test_a_failing_or_malformed_handler_is_a_502(gateway: Any, value: Any) -> None:
    url, _, answer = gateway
    answer["value"] = value
    response = httpx.get(f"{url}/invocations/r1", trust_env=False)
    assert response.status_code == 502
    assert response.json()["error"] == "INTEGRATION_FAILURE" and response.json()["requestId"]


@pytest.mark.slow
def test_binary_payloads_reach_s3_byte_for_byte(healthy_pipeline: LocalPipeline, api: Api, s3: Any) -> None:
    payload = bytes(range(256)) * 64
    inference_id = api.submit_ok(payload, content_type="application/octet-stream")
    bucket, key = s3_uri(receipt_of(s3, healthy_pipeline, inference_id)["inputLocation"])
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == payload
    # The model server only takes JSON and text: its 415 comes back as the failure.
    document = api.wait(inference_id)
    assert document["status"] == "Failed" and json.loads(document["failureReason"])["status"] == 415


# ------------------------------------------------------------------------ callers
def _signed_headers(url: str, key_id: str, *, body: bytes = b"", method: str = "GET") -> dict[str, str]:
    """Headers of a real SigV4 signature for execute-api, made by botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key_id, "secret-" + key_id), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_the_caller_is_the_signing_access_key_id() -> None:
    from local_stack.api_gateway import ACCOUNT_ID, access_key_id

    headers = _signed_headers("http://127.0.0.1:3000/invocations/r1", "AKIDALICE")
    key_id = access_key_id(list(headers.items()), "/invocations/r1")
    assert key_id == "AKIDALICE"
    routes = compile_routes()
    route, params = match_route(routes, "GET", "/invocations/r1")  # type: ignore[misc]
    event = build_event(
        method="GET",
        raw_path="/invocations/r1",
        headers=list(headers.items()),
        body=b"",
        route=route,
        path_parameters=params,
        key_id=key_id,
    )
    identity = event["requestContext"]["identity"]
    assert identity["accessKey"] == identity["caller"] == identity["user"] == "AKIDALICE"
    assert identity["userArn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/AKIDALICE"
    assert identity["accountId"] == ACCOUNT_ID


def test_presigned_query_credentials_name_the_caller_too() -> None:
    from local_stack.api_gateway import access_key_id

    path = "/invocations/r1?X-Amz-Credential=AKIDBOB%2F20260101%2Fus-east-1%2Fexecute-api%2Faws4_request"
    assert access_key_id([], path) == "AKIDBOB"


def test_unsigned_requests_have_no_identity() -> None:
    from local_stack.api_gateway import access_key_id

    assert access_key_id([("Host", "x")], "/invocations") is None
    identity = _event_for("GET", "/invocations/r1")["requestContext"]["identity"]
    assert identity["caller"] is None and identity["userArn"] is None and identity["accessKey"] is None


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/x/aws4_request, Signature=a",
    ],
)
def test_a_malformed_signature_is_403_before_the_lambda(api: Api, authorization: str) -> None:
    response = api.http.get("/invocations/r" + "0" * 32, headers={"Authorization": authorization})
    assert response.status_code == 403
    assert response.json()["error"] == "INCOMPLETE_SIGNATURE"
