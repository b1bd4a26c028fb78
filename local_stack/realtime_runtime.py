"""A local stand-in for SageMaker's real-time (and serverless) InvokeEndpoint runtime.

It speaks the real ``InvokeEndpoint`` wire protocol (botocore's ``sagemaker-runtime``
model: ``POST /endpoints/{EndpointName}/invocations``, the body is the payload,
``Content-Type``, ``Accept``, ``X-Amzn-SageMaker-Custom-Attributes`` and
``X-Amzn-SageMaker-Inference-Id`` headers), so the API Lambda's unmodified boto3 client
works against it through ``endpoint_url``. What it does, as SageMaker documents
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html):

- refuses a body over 6 MB (4 MB for serverless; ValidationError, 400) and the header limits
  (1024 characters);
- sends the container an ordinary ``POST /invocations`` with those headers and answers
  with the container's body and Content-Type (``x-Amzn-Invoked-Production-Variant``);
- a non-2xx container answer is ``ModelError`` (424) with ``OriginalStatusCode`` and
  ``OriginalMessage``; a container that does not answer within 60 s is ``ModelError`` too
  (SageMaker's real-time limit); a container that is down is ``ServiceUnavailable`` (503)
  - a real endpoint has a healthy instance before it is InService.

What it does not model: several instances, autoscaling, metrics, SigV4 checks (any
credentials are accepted, as with moto), serverless cold starts.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

log = logging.getLogger("local_stack.realtime_runtime")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SERVERLESS_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
CONTAINER_TIMEOUT_SECONDS = 60.0
MAX_HEADER_CHARS = 1024
VARIANT_NAME = "AllTraffic"
_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes")


class RealtimeRuntime:
    """Serves InvokeEndpoint for one endpoint name, forwarding to one container."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        container_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        container_timeout_seconds: float = CONTAINER_TIMEOUT_SECONDS,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host={host!r}: the stand-in accepts any credentials, so it listens on loopback only")
        self.endpoint_name = endpoint_name
        self.container_url = container_url.rstrip("/")
        self.container_timeout_seconds = container_timeout_seconds
        # 6 MB for real-time endpoints, 4 MB for serverless ones.
        self.max_payload_bytes = max_payload_bytes
        self.invocations = 0
        self._http = httpx.Client(timeout=httpx.Timeout(container_timeout_seconds, connect=2.0))
        runtime = self

        class Handler(_Handler):
            owner = runtime

        self._host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def endpoint_url(self) -> str:
        """What the API Lambda's SAGEMAKER_RUNTIME_ENDPOINT_URL points at (as for the async stand-in)."""
        return self.url

    def start(self) -> str:
        self._thread = threading.Thread(target=self._server.serve_forever, name="realtime-runtime", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """One InvokeEndpoint: (status, body, headers) of SageMaker's answer."""
        if "x-amzn-sagemaker-target-model" in headers:  # TargetModel: multi-model endpoints only (multi_model.py)
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"Endpoint {self.endpoint_name} is not a multi-model endpoint and does not support target model "
                "header.",
            )
        return self.forward("/invocations", body, {name: headers[name] for name in _FORWARDED if name in headers})

    def forward(self, path: str, body: bytes, forwarded: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """The container's answer to POST `path` as InvokeEndpoint's (ModelError for a non-2xx one)."""
        try:
            answer = self._http.post(f"{self.container_url}{path}", content=body, headers=forwarded)
        except httpx.TimeoutException:
            return _model_error(408, f"the container did not answer within {self.container_timeout_seconds:g} s")
        except httpx.TransportError as error:
            return _error(
                HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", f"the container is unreachable: {error}"
            )
        self.invocations += 1
        if not 200 <= answer.status_code < 300:
            return _model_error(answer.status_code, answer.content.decode("utf-8", errors="replace")[:4096])
        reply = {
            "Content-Type": answer.headers.get("content-type", "application/octet-stream"),
            "x-Amzn-Invoked-Production-Variant": VARIANT_NAME,
        }
        return 200, answer.content, reply


def _error(
    status: HTTPStatus, code: str, message: str, extra: dict[str, Any] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    # rest-json errors: botocore reads the code from x-amzn-ErrorType, the members from the body.
    document = {"message": message, "Message": message, **(extra or {})}
    return (
        int(status),
        json.dumps(document).encode(),
        {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:"},
    )


def _model_error(original_status: int, original_message: str) -> tuple[int, bytes, dict[str, str]]:
    message = f'Received client error ({original_status}) from primary with message "{original_message[:200]}"'
    return _error(
        HTTPStatus.FAILED_DEPENDENCY,
        "ModelError",
        message,
        {"OriginalStatusCode": original_status, "OriginalMessage": original_message},
    )


def request_problem(
    endpoint: str, owner: str, body: bytes, headers: dict[str, str], max_payload_bytes: int = MAX_PAYLOAD_BYTES
) -> tuple[HTTPStatus, str, str] | None:
    """Why SageMaker would refuse this InvokeEndpoint before the container sees it, or None."""
    if endpoint != owner:
        return HTTPStatus.BAD_REQUEST, "ValidationError", f"Endpoint {endpoint} of account 123456789012 not found."
    if len(body) > max_payload_bytes:
        return (
            HTTPStatus.BAD_REQUEST,
            "ValidationError",
            f"Request payload is {len(body)} bytes; the limit is {max_payload_bytes}",
        )
    for name in _FORWARDED:
        value = headers.get(name)
        if value is not None and (len(value) > MAX_HEADER_CHARS or not value.isascii()):
            return (
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"{name} must be at most {MAX_HEADER_CHARS} ASCII characters",
            )
    return None


class _Handler(BaseHTTPRequestHandler):
    owner: RealtimeRuntime

    def do_POST(self) -> None:
        match = _PATH.match(urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not match:
            self._send(*_error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no operation at {self.path}"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        problem = request_problem(
            unquote(match["name"]), self.owner.endpoint_name, body, headers, self.owner.max_payload_bytes
        )
        if problem:
            self._send(*_error(*problem))
            return
        self._send(*self.owner.invoke(body, headers))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug(format, *args)
