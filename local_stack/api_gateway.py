"""The real API Lambda behind a local HTTP server that builds API Gateway REST proxy events.

Each request becomes a REST API proxy integration event (payload format 1.0:
``resource``, ``path``, ``httpMethod``, ``headers``/``multiValueHeaders``, query
strings, ``pathParameters``, ``requestContext``, ``body`` and ``isBase64Encoded``),
the handler's answer becomes the HTTP response. What API Gateway itself would
answer without calling the Lambda is answered here too, in the stack's gateway-response JSON shape: an unknown route
(403 ``MISSING_AUTHENTICATION_TOKEN``), a body over 10 MB (413), a handler that
raises (502) or overruns the 29 s integration timeout (504). Not modelled: IAM
authorization (signatures are not verified, and unsigned requests are accepted), API
keys and usage plans, stage throttling, the request validator (the handler validates
the same schemas itself).

Callers. API Gateway puts the IAM identity that signed a request in
``requestContext.identity``; the handler scopes inferences by it. Here the caller is the
access key id of the SigV4 signature (``Authorization: AWS4-HMAC-SHA256
Credential=<access key id>/<date>/<region>/execute-api/aws4_request, ...`` or the
``X-Amz-Credential`` query parameter of a presigned URL): two credentials are two callers,
as two IAM users would be. The identity is filled like an IAM user's (``caller`` and ``user``
= the key id, ``userArn`` = ``arn:aws:iam::<account>:user/<key id>``). An unsigned request has
no identity, so all unsigned requests are one anonymous caller. A malformed
``Authorization`` header is refused with 403 ``INCOMPLETE_SIGNATURE``, as API Gateway does.

Run as its own process (``python -m local_stack.api_gateway``): the handler reads
its environment at import like in Lambda, and one process holds one "execution
environment" that handles one event at a time (Lambda never runs two events
concurrently in one environment; Powertools' resolver keeps the current event on
the app object). The pipeline starts ``PipelineConfig.lambda_environments`` such processes on
the same port (``--reuse-port``, SO_REUSEPORT), the kernel spreading connections among them like
concurrent execution environments.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from api_handler import contract

log = logging.getLogger("local_stack.api_gateway")

STAGE = "local"
ACCOUNT_ID = "123456789012"
MAX_PAYLOAD_BYTES = contract.GATEWAY_MAX_PAYLOAD_BYTES
INTEGRATION_TIMEOUT_S = float(contract.INTEGRATION_TIMEOUT_SECONDS)
LAMBDA_TIMEOUT_S = float(contract.LAMBDA_TIMEOUT_SECONDS)  # the stack's function timeout

# The API's resources, the ones the stack declares and the handler routes (api_handler/contract.py).
ROUTES: tuple[tuple[str, str], ...] = tuple((route.method, route.path) for route in contract.ROUTES)

# Media types API Gateway passes as text; everything else arrives base64-encoded. The
# stack's binaryMediaTypes are the allowed content types minus the text-like ones
# (inference_constructs/api.py), so for every type the API accepts the two agree; a type
# it does not accept (415 either way) would arrive as text in AWS and as base64 here.
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|.*\+json|jsonlines|x-ndjson|xml|.*\+xml|x-www-form-urlencoded|javascript))$"
)


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]


def compile_routes(routes: Sequence[tuple[str, str]] = ROUTES) -> list[Route]:
    compiled = []
    for method, resource in routes:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", resource)
        compiled.append(Route(method, resource, re.compile(f"^{regex}$")))
    return compiled


def match_route(routes: Sequence[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        match = route.pattern.match(path)
        if match and route.method == method:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def is_text(content_type: str | None) -> bool:
    return bool(_TEXT_TYPES.match((content_type or "").split(";", 1)[0].strip().lower()))


class IncompleteSignature(ValueError):
    """An Authorization header that is not a SigV4 signature API Gateway could check."""


# Credential=<access key id>/<yyyymmdd>/<region>/<service>/aws4_request
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]{1,128})/\d{8}/[a-z0-9-]+/[a-z0-9-]+/aws4_request")


def access_key_id(headers: Sequence[tuple[str, str]], raw_path: str) -> str | None:
    """The signing access key id of a SigV4 request, None when unsigned.

    Raises IncompleteSignature for an Authorization header that is not SigV4.
    """
    authorization = next((v for k, v in headers if k.lower() == "authorization"), None)
    if authorization is not None:
        scheme, _, parameters = authorization.strip().partition(" ")
        match = _CREDENTIAL.search(parameters)
        if scheme != "AWS4-HMAC-SHA256" or not match or "Signature=" not in parameters:
            raise IncompleteSignature(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                "of an AWS4-HMAC-SHA256 signature"
            )
        return match.group(1)
    credential = parse_qs(urlsplit(raw_path).query).get("X-Amz-Credential")
    if credential:
        match = _CREDENTIAL.fullmatch("Credential=" + credential[-1])
        if not match:
            raise IncompleteSignature("X-Amz-Credential is not <access key id>/<date>/<region>/<service>/aws4_request")
        return match.group(1)
    return None


def caller_identity(key_id: str | None, source_ip: str, user_agent: str | None) -> dict[str, Any]:
    """requestContext.identity as API Gateway fills it for an IAM user's signature (or nothing)."""
    signed = key_id is not None
    return {
        "sourceIp": source_ip,
        "userAgent": user_agent,
        "accountId": ACCOUNT_ID if signed else None,
        "caller": key_id,
        "user": key_id,
        "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{key_id}" if signed else None,
        "accessKey": key_id,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
    }


def build_event(
    *,
    method: str,
    raw_path: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    route: Route,
    path_parameters: Mapping[str, str],
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    key_id: str | None = None,
) -> dict[str, Any]:
    """A REST API proxy integration event (payload format 1.0) for one HTTP request."""
    split = urlsplit(raw_path)
    path = split.path
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    single_headers = {name: values[-1] for name, values in multi_headers.items()}
    query = parse_qs(split.query, keep_blank_values=True)
    content_type = next((v for k, v in single_headers.items() if k.lower() == "content-type"), None)
    binary = bool(body) and not is_text(content_type)
    if binary:
        event_body: str | None = base64.b64encode(body).decode("ascii")
    elif body:
        event_body = body.decode("utf-8", errors="surrogateescape")
    else:
        event_body = None
    now = datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            # Served without the stage prefix, so the client's path is the resource path.
            "path": path,
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": caller_identity(
                key_id, source_ip, single_headers.get("User-Agent") or single_headers.get("user-agent")
            ),
            # The Host the client called, as API Gateway does; with X-Forwarded-Proto: http
            # the handler's statusUrl is http://127.0.0.1:<port>/invocations/<id>.
            "domainName": single_headers.get("Host") or single_headers.get("host") or "localhost",
            "apiId": "local",
        },
        "body": event_body,
        "isBase64Encoded": binary,
    }


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, request_id: str, timeout_s: float = LAMBDA_TIMEOUT_S) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Callable[[dict[str, Any], Any], Any]:
    """Import ``package.module.function`` as Lambda does: the asset holds the `api_handler` package,
    which the editable install makes importable here under the same name."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} must look like 'module.function'")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


class ApiGatewayServer:
    """One execution environment: an HTTP server whose requests run the handler one at a time."""

    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reuse_port: bool = False,
        function_name: str = "local-api",
        routes: Sequence[tuple[str, str]] = ROUTES,
    ) -> None:
        self.handler = handler
        self.function_name = function_name
        self.routes = compile_routes(routes)
        # A single worker thread is the execution environment: events run one at a
        # time; the HTTP threads only wait, so a stuck handler yields 504, not a hang.
        self._environment = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")
        gateway = self

        class Handler(_GatewayHandler):
            pass

        Handler.gateway = gateway

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # 200 clients connecting at once must not see ECONNREFUSED

            def server_bind(self) -> None:
                if reuse_port:
                    self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                super().server_bind()

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        request_id = event["requestContext"]["requestId"]
        context = LambdaContext(self.function_name, request_id)
        future = self._environment.submit(self.handler, event, context)
        try:
            result = future.result(timeout=INTEGRATION_TIMEOUT_S)
        except FutureTimeout:
            return _gateway_error(
                HTTPStatus.GATEWAY_TIMEOUT, "INTEGRATION_TIMEOUT", "Endpoint request timed out", request_id
            )
        except Exception:
            log.exception("the Lambda handler raised")
            return _gateway_error(HTTPStatus.BAD_GATEWAY, "INTEGRATION_FAILURE", "Internal server error", request_id)
        return _http_response(result, request_id)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._environment.shutdown(wait=False, cancel_futures=True)


def _gateway_error(
    status: HTTPStatus, response_type: str, message: str, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """An answer API Gateway gives itself, in the stack's gateway-response template
    (inference_constructs/api.py: error = responseType, message, requestId)."""
    body = {"error": response_type, "message": message, "requestId": request_id or str(uuid.uuid4())}
    return (
        int(status),
        {"Content-Type": "application/json", "x-amzn-ErrorType": response_type},
        json.dumps(body).encode(),
    )


def _http_response(result: Any, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """A proxy integration result as an HTTP response; a malformed one is API Gateway's 502."""
    if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
        log.error("malformed Lambda proxy response: %r", result)
        return _gateway_error(HTTPStatus.BAD_GATEWAY, "INTEGRATION_FAILURE", "Internal server error", request_id)
    headers: dict[str, str] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    for name, value in (result.get("headers") or {}).items():
        headers[name] = str(value)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return result["statusCode"], headers, payload


class _GatewayHandler(BaseHTTPRequestHandler):
    gateway: ApiGatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "local-api-gateway"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True  # the body stays unread
            self._send(*_gateway_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "REQUEST_TOO_LARGE", "Request Too Long"))
            return
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        found = match_route(self.gateway.routes, self.command, path)
        if found is None:
            self._send(
                *_gateway_error(HTTPStatus.FORBIDDEN, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
            )
            return
        route, params = found
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")]
        try:
            key_id = access_key_id(headers, self.path)
        except IncompleteSignature as error:
            self._send(*_gateway_error(HTTPStatus.FORBIDDEN, "INCOMPLETE_SIGNATURE", str(error)))
            return
        # What API Gateway adds in front of the integration.
        headers += [
            ("X-Forwarded-For", self.client_address[0]),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", str(self.gateway.port)),
        ]
        event = build_event(
            method=self.command,
            raw_path=self.path,
            headers=headers,
            body=body,
            route=route,
            path_parameters=params,
            source_ip=self.client_address[0],
            key_id=key_id,
        )
        started = time.monotonic()
        status, response_headers, payload = self.gateway.invoke(event)
        log.info("%s %s -> %s (%.0f ms)", self.command, self.path, status, (time.monotonic() - started) * 1000)
        response_headers.setdefault("x-amzn-RequestId", event["requestContext"]["requestId"])
        self._send(status, response_headers, payload)

    do_GET = do_POST = _handle

    def __getattr__(self, name: str) -> Any:
        # Every other method (PUT, TRACE, QUERY...) reaches routing too, and a method the API does
        # not declare gets API Gateway's 403 MISSING_AUTHENTICATION_TOKEN, not http.server's HTML 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a Lambda handler behind a local API Gateway (REST proxy).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--handler", default=contract.API_HANDLER, help="module.function, as in the Lambda configuration"
    )
    parser.add_argument("--reuse-port", action="store_true", help="share the port with sibling processes")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOCAL_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s api-gateway[%(process)d] %(message)s",
    )

    handler = load_handler(args.handler)  # cold start, before accepting requests
    server = ApiGatewayServer(handler, host=args.host, port=args.port, reuse_port=args.reuse_port)
    # The parent waits for this line: the handler is imported and the port is open.
    print(f"ready {server.port}", flush=True)
    stop = threading.Event()

    import signal

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
