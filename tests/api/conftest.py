"""The client API handler against moto's S3 server and a local SageMaker runtime stub.

Both listen on 127.0.0.1 only. The stub is a real HTTP server speaking the
InvokeEndpointAsync wire protocol, so botocore's retries, timeouts and error parsing
run exactly as they do against AWS (botocore's Stubber would bypass them).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

# Before the handler module is imported: no tracing daemon, no real credentials, ever.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "inference-api-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AsyncInferenceTest")

INPUT_BUCKET = "test-input-bucket"
OUTPUT_BUCKET = "test-output-bucket"
FAILURE_BUCKET = "test-failure-bucket"
ENDPOINT_NAME = "test-endpoint"
REGION = "us-east-1"
# What API Gateway puts in requestContext.identity for a SigV4 request signed by an assumed
# role (the principal id is IAM's aws:userid, "<role unique id>:<session name>").
IDENTITY = {
    "accountId": "123456789012",
    "caller": "AROAEXAMPLEROLE01:client",
    "user": "AROAEXAMPLEROLE01:client",
    "userArn": "arn:aws:sts::123456789012:assumed-role/inference-client/client",
    "accessKey": "ASIAEXAMPLEKEY01",
}
OTHER_IDENTITY = {
    "accountId": "123456789012",
    "caller": "AROAEXAMPLEROLE02:intruder",
    "user": "AROAEXAMPLEROLE02:intruder",
    "userArn": "arn:aws:sts::123456789012:assumed-role/other-team/intruder",
    "accessKey": "ASIAEXAMPLEKEY02",
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Reply:
    """One scripted answer of the stub: an AWS error (status + error type) or success."""

    status: int = 202
    error_type: str | None = None
    message: str = ""


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    input_present: bool


@dataclass
class SageMakerStub:
    url: str
    replies: list[Reply] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # Runs inside a successful invocation, before the answer (e.g. to simulate a race).
    on_invoke: Callable[[dict[str, str]], None] | None = None
    s3: Any = None

    def fail(self, times: int, status: int, error_type: str, message: str = "scripted failure") -> None:
        self.replies.extend(Reply(status, error_type, message) for _ in range(times))


def _make_handler(holder: dict[str, SageMakerStub]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output quiet
            pass

        def do_POST(self) -> None:
            stub = holder["current"]
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            location = headers.get("x-amzn-sagemaker-inputlocation", "")
            stub.calls.append(Call(self.path, headers, _exists(stub.s3, location)))
            reply = stub.replies.pop(0) if stub.replies else Reply()
            if reply.error_type:
                # rest-json errors: botocore reads the code from x-amzn-ErrorType.
                self._answer(
                    reply.status,
                    {"message": reply.message},
                    {"x-amzn-ErrorType": f"{reply.error_type}:http://internal.amazon.com/"},
                )
                return
            if stub.on_invoke:
                stub.on_invoke(headers)
            name = uuid.uuid4()
            self._answer(
                202,
                {"InferenceId": headers.get("x-amzn-sagemaker-inference-id", str(name))},
                {
                    "X-Amzn-SageMaker-OutputLocation": f"s3://{OUTPUT_BUCKET}/responses/{name}.out",
                    "X-Amzn-SageMaker-FailureLocation": f"s3://{FAILURE_BUCKET}/failures/{name}-error.out",
                },
            )

        def _answer(self, status: int, document: dict[str, Any], headers: dict[str, str]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _exists(s3: Any, uri: str) -> bool:
    if not uri.startswith("s3://"):
        return False
    bucket, _, key = uri[5:].partition("/")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def stub_server() -> Iterator[tuple[ThreadingHTTPServer, dict[str, SageMakerStub]]]:
    holder: dict[str, SageMakerStub] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(holder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, holder
    server.shutdown()


@pytest.fixture
def s3(moto_url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, moto_url: str, stub_server, s3) -> Iterator[Api]:
    """A fresh S3 (three empty buckets), a fresh stub, and the handler configured for them."""
    server, holder = stub_server
    stub = SageMakerStub(url=f"http://127.0.0.1:{server.server_address[1]}", s3=s3)
    holder["current"] = stub
    timeouts = {"DEFAULT_INVOCATION_TIMEOUT_SECONDS": "600", "DEFAULT_REQUEST_TTL_SECONDS": "3600"}
    yield from configured_api(monkeypatch, moto_url, s3, runtime_url=stub.url, stub=stub, extra=timeouts)


def configured_api(
    monkeypatch: pytest.MonkeyPatch, moto_url: str, s3: Any, *, runtime_url: str, stub: Any, extra: dict[str, str]
) -> Iterator[Api]:
    """Three empty buckets on a reset moto and the handler's environment pointed at them and at
    the SageMaker runtime on `runtime_url` (plus `extra`); the handler's cached service is reset."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=5)
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET, FAILURE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "INPUT_BUCKET": INPUT_BUCKET,
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "FAILURE_BUCKET": FAILURE_BUCKET,
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "S3_ENDPOINT_URL": moto_url,
        "SAGEMAKER_RUNTIME_ENDPOINT_URL": runtime_url,
        "INLINE_RESULT_MAX_BYTES": "1024",
        **extra,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from api_handler import app as module

    module.service.cache_clear()
    yield Api(module=module, stub=stub, s3=s3, monkeypatch=monkeypatch)
    module.service.cache_clear()


@dataclass
class LambdaContext:
    function_name: str = "inference-api"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:inference-api"
    aws_request_id: str = "lambda-request-id"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


def event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    binary: bool = False,
    stage: str = "v1",
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as the real integration sends it."""
    if isinstance(body, bytes):
        encoded, is_b64 = (base64.b64encode(body).decode(), True) if binary else (body.decode(), False)
    else:
        encoded, is_b64 = body, False
    headers = dict(headers or {})
    path_parameters = None
    resource = path
    if path.startswith("/invocations/"):
        path_parameters = {"inference_id": path.split("/", 2)[2]}
        resource = "/invocations/{inference_id}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": f"req-{uuid.uuid4()}",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "identity": dict(IDENTITY if identity is None else identity),
        },
        "body": encoded,
        "isBase64Encoded": is_b64,
    }


@dataclass
class Api:
    module: Any
    stub: SageMakerStub
    s3: Any
    monkeypatch: pytest.MonkeyPatch

    def call(self, raw_event: Any) -> Answer:
        result = self.module.handler(raw_event, LambdaContext())
        headers = dict((result.get("headers") or {}).items())
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.setdefault(name, values[-1])
        body = json.loads(result["body"]) if result.get("body") else None
        return Answer(result["statusCode"], headers, body, result)

    def submit(
        self,
        body: bytes | str,
        content_type: str = "application/json",
        *,
        identity: dict[str, Any] | None = None,
        **headers: str,
    ) -> Answer:
        all_headers = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
        raw = body.encode() if isinstance(body, str) else body
        return self.call(
            event(
                "POST", "/invocations", body=raw, headers=all_headers, binary=isinstance(body, bytes), identity=identity
            )
        )

    def status(self, inference_id: str, *, identity: dict[str, Any] | None = None) -> Answer:
        return self.call(event("GET", f"/invocations/{inference_id}", identity=identity))

    def upload(self, content_type: str = "text/plain", *, identity: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /uploads; the 201 document (a presigned POST form)."""
        answer = self.call(
            event(
                "POST",
                "/uploads",
                body=json.dumps({"contentType": content_type}).encode(),
                headers={"Content-Type": "application/json"},
                identity=identity,
            )
        )
        assert answer.status == 201, answer.body
        return answer.body

    def setenv(self, name: str, value: str) -> None:
        """Change the handler's environment (settings and clients are rebuilt)."""
        self.monkeypatch.setenv(name, value)
        self.module.service.cache_clear()

    def receipt(self, inference_id: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=INPUT_BUCKET, Key=f"requests/{inference_id}/receipt.json")["Body"].read()
        return json.loads(body)
