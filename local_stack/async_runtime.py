"""A local stand-in for SageMaker's asynchronous inference runtime.

It speaks the real ``InvokeEndpointAsync`` wire protocol (botocore's
``sagemaker-runtime`` model: ``POST /endpoints/{EndpointName}/async-invocations``,
parameters in ``X-Amzn-SageMaker-*`` headers, 202 with ``InferenceId`` and the
output / failure locations), so the API Lambda's unmodified boto3 client works
against it through ``endpoint_url``. Then it does what SageMaker's asynchronous inference
guide (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html) says SageMaker does:

- queues the request and answers at once;
- a worker per ``MaxConcurrentInvocationsPerInstance`` slot (one instance) takes
  the oldest request, fetches the input from S3 and sends the container an
  ordinary ``POST /invocations`` with the request's Content-Type, Accept and
  custom attributes;
- a 2xx body goes to ``S3OutputPath`` (``responses/<id>.out``); anything else to
  ``S3FailurePath`` (``failures/<id>-error.out``); the success or error topic is
  notified with SageMaker's notification document;
- ``InvocationTimeoutSeconds`` bounds one container call; ``RequestTTLSeconds``
  bounds how long a request may wait in the queue before it starts;
- while the container is down (``/ping`` not 200, connection refused) requests
  stay queued, and a request whose connection broke mid-call goes back to the
  head of the queue: it runs again once ``/ping`` answers 200 (so the model may
  see a request twice; its result is stored once).

The queue lives in memory: stopping the runtime drops what is still queued.

What it does not model: several instances, autoscaling, CloudWatch metrics,
``IncludeInferenceResponseIn``, SigV4 checks (any credentials are accepted, as
with moto), ``https://`` input locations.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

log = logging.getLogger("local_stack.async_runtime")

# Limits from the API reference (botocore's sagemaker-runtime model): botocore validates the
# minimums client-side; the stand-in checks both ends like the service does.
TTL_RANGE = (60, 21600)
TIMEOUT_RANGE = (1, 3600)
DEFAULT_TTL_SECONDS = 21600
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900
_INFERENCE_ID = re.compile(r"\A\S[\x20-\x7e]{0,63}\Z")  # 1-64 printable, no leading space
_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/async-invocations$")
# Header (ContentType, Accept) and CustomAttributesHeader: at most 1024 characters of
# \p{ASCII} (botocore's sagemaker-runtime service-2.json). botocore checks minimums only,
# so the maximum is the service's to refuse, and the stand-in's.
_HEADER_PARAMS = ("ContentType", "Accept", "CustomAttributes")
_MAX_HEADER_CHARS = 1024
_PING_TIMEOUT_S = 2.0  # SageMaker's per-ping timeout


class Clock:
    """Monotonic time plus an offset tests can advance.

    RequestTTLSeconds is at least 60 s (botocore refuses less before sending), so
    a test of expiry moves this clock forward instead of sleeping a minute.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclass
class AsyncRequest:
    inference_id: str
    input_location: str | None
    inline_body: bytes | None
    content_type: str
    accept: str | None
    custom_attributes: str | None
    ttl_seconds: int
    timeout_seconds: int
    output_location: str
    failure_location: str
    received_at: float  # Clock.now()
    received_time: str  # ISO 8601, for notifications
    attempts: int = 0


@dataclass
class RuntimeStats:
    """Counters the tests read to prove what happened inside the stand-in."""

    received: int = 0
    completed: int = 0
    failed: int = 0
    expired: int = 0
    timed_out: int = 0
    download_failures: int = 0
    requeued_container_down: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    notifications_sent: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)


class _ContainerDown(Exception):
    """The container refused or dropped the connection: retry once it is healthy."""


@dataclass
class _Outcome:
    ok: bool
    body: bytes
    content_type: str
    reason: str | None = None  # failureReason for the error notification
    status: int | None = None


class AsyncInferenceRuntime:
    """One async endpoint with one instance, backed by the container at ``container_url``."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        container_url: str,
        s3: Any,
        sns: Any,
        s3_output_path: str,
        s3_failure_path: str,
        success_topic_arn: str | None,
        error_topic_arn: str | None,
        max_concurrent_invocations: int,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        health_interval_s: float = 0.5,
    ) -> None:
        if not 1 <= max_concurrent_invocations <= 1000:
            raise ValueError(
                f"max_concurrent_invocations={max_concurrent_invocations}: "
                "MaxConcurrentInvocationsPerInstance must be 1-1000"
            )
        self.endpoint_name = endpoint_name
        self.container_url = container_url.rstrip("/")
        self.s3, self.sns = s3, sns
        self.output_bucket, self.output_prefix = _split_s3(s3_output_path)
        self.failure_bucket, self.failure_prefix = _split_s3(s3_failure_path)
        self.success_topic_arn, self.error_topic_arn = success_topic_arn, error_topic_arn
        self.max_concurrent_invocations = max_concurrent_invocations
        self.region, self.account_id = region, account_id
        self.clock = clock or Clock()
        self.health_interval_s = health_interval_s
        self.stats = RuntimeStats()

        self._queue: collections.deque[AsyncRequest] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._healthy = threading.Event()
        self._threads: list[threading.Thread] = []
        # One connection pool shared by the workers; limits follow the slot count.
        self._http = httpx.Client(
            limits=httpx.Limits(max_connections=max_concurrent_invocations + 2),
            trust_env=False,  # never route 127.0.0.1 through a proxy from the environment
        )
        runtime = self

        class Handler(_RuntimeHandler):
            pass

        Handler.runtime = runtime
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.endpoint_url = f"http://{host}:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._spawn(self._server.serve_forever, "runtime-http")
        self._spawn(self._health_loop, "runtime-health")
        self._spawn(self._expiry_loop, "runtime-expiry")
        for slot in range(self.max_concurrent_invocations):
            self._spawn(self._worker_loop, f"runtime-worker-{slot}")
        return self.endpoint_url

    def stop(self, *, drain_seconds: float = 5.0) -> None:
        """Stop accepting, let in-flight invocations finish (bounded), stop the threads."""
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + drain_seconds
        while self.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()) + 1)
        self._http.close()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def healthy(self) -> bool:
        return self._healthy.is_set()

    def backlog(self) -> int:
        """ApproximateBacklogSize: queued plus in flight."""
        with self._cond:
            return len(self._queue) + self.stats.in_flight

    # ------------------------------------------------------------------ API
    def enqueue(self, params: dict[str, str | None], inline_body: bytes | None) -> AsyncRequest:
        """Validate an InvokeEndpointAsync call and queue it. Raises _ValidationError."""
        inference_id = params.get("InferenceId") or str(uuid.uuid4())
        if not _INFERENCE_ID.match(inference_id):
            raise _ValidationError(f"InferenceId {inference_id!r} must be 1-64 printable ASCII characters")
        input_location = params.get("InputLocation")
        if not input_location and not inline_body:
            raise _ValidationError("InputLocation is required")
        if input_location:
            if not input_location.startswith("s3://"):
                raise _ValidationError(
                    f"InputLocation {input_location!r}: the local runtime reads s3://bucket/key locations only"
                )
            _split_s3(input_location)  # raises on a location without a key
        for name in _HEADER_PARAMS:
            value = params.get(name)
            if value is not None and (len(value) > _MAX_HEADER_CHARS or not value.isascii()):
                raise _ValidationError(
                    f"Value at '{name[0].lower()}{name[1:]}' failed to satisfy constraint: "
                    f"at most {_MAX_HEADER_CHARS} ASCII characters"
                )
        ttl = _int_param(params, "RequestTTLSeconds", DEFAULT_TTL_SECONDS, TTL_RANGE)
        timeout = _int_param(params, "InvocationTimeoutSeconds", DEFAULT_INVOCATION_TIMEOUT_SECONDS, TIMEOUT_RANGE)

        # SageMaker names results after a fresh UUID, not after the InferenceId
        # (which the caller chooses and need not be unique).
        name = str(uuid.uuid4())
        extension = (params.get("S3OutputPathExtension") or "").strip("/")
        filename = params.get("Filename")
        out_key = "/".join(p for p in (self.output_prefix, extension, filename or f"{name}.out") if p)
        fail_key = "/".join(p for p in (self.failure_prefix, extension, f"{name}-error.out") if p)
        request = AsyncRequest(
            inference_id=inference_id,
            input_location=input_location,
            inline_body=inline_body if not input_location else None,
            content_type=params.get("ContentType") or "application/octet-stream",
            accept=params.get("Accept"),
            custom_attributes=params.get("CustomAttributes"),
            ttl_seconds=ttl,
            timeout_seconds=timeout,
            output_location=f"s3://{self.output_bucket}/{out_key}",
            failure_location=f"s3://{self.failure_bucket}/{fail_key}",
            received_at=self.clock.now(),
            received_time=_iso_now(),
        )
        with self._cond:
            self._queue.append(request)
            self.stats.received += 1
            self._cond.notify()
        log.info("queued %s (%s)", request.inference_id, request.input_location or "inline body")
        return request

    # ------------------------------------------------------------------ threads
    def _health_loop(self) -> None:
        """Ping the container like SageMaker does; workers only dispatch while it answers 200."""
        while not self._stopping.is_set():
            try:
                ok = self._http.get(f"{self.container_url}/ping", timeout=_PING_TIMEOUT_S).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok and not self._healthy.is_set():
                log.info("container healthy: dispatching")
                self._healthy.set()
                with self._cond:
                    self._cond.notify_all()
            elif not ok and self._healthy.is_set():
                log.warning("container unhealthy: requests wait in the queue")
                self._healthy.clear()
            self._stopping.wait(self.health_interval_s)

    def _expiry_loop(self) -> None:
        """Expire queued requests older than their TTL, whether or not the container is up."""
        while not self._stopping.wait(0.2):
            now = self.clock.now()
            with self._cond:
                expired = [r for r in self._queue if now - r.received_at > r.ttl_seconds]
                for request in expired:
                    self._queue.remove(request)
            for request in expired:
                self._expire(request, now)

    def _next_request(self) -> AsyncRequest | None:
        with self._cond:
            while not self._stopping.is_set():
                if self._queue and self._healthy.is_set():
                    request = self._queue.popleft()
                    self.stats.in_flight += 1
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
                    return request
                self._cond.wait(timeout=0.5)
        return None

    def _worker_loop(self) -> None:
        while True:
            request = self._next_request()
            if request is None:
                return
            try:
                self._process(request)
            except Exception as exc:
                log.exception("unexpected error processing %s", request.inference_id)
                try:  # e.g. the output upload failed (ResponseUploadFailures): record a failure if we can
                    message = f"InternalFailure: {type(exc).__name__}: {exc}"
                    self._finish(
                        request,
                        _Outcome(False, json.dumps({"error": message}).encode(), "application/json", reason=message),
                    )
                except Exception:
                    log.exception("could not record the failure of %s", request.inference_id)
            finally:
                with self._cond:
                    self.stats.in_flight -= 1
                    self._cond.notify_all()

    # ------------------------------------------------------------------ one request
    def _process(self, request: AsyncRequest) -> None:
        now = self.clock.now()
        if now - request.received_at > request.ttl_seconds:
            self._expire(request, now)
            return
        body = self._download(request)
        if body is None:
            return
        request.attempts += 1
        try:
            outcome = self._invoke(request, body)
        except _ContainerDown as exc:
            # Never reached the model, or the model died under it: run it again
            # once the container is back (TTL still counts from receipt).
            log.warning("container down during %s (%s): requeued", request.inference_id, exc)
            self._healthy.clear()
            with self._cond:
                self._queue.appendleft(request)
                self.stats.requeued_container_down += 1
            return
        self._finish(request, outcome)

    def _download(self, request: AsyncRequest) -> bytes | None:
        if request.input_location is None:
            return request.inline_body or b""
        bucket, key = _split_s3(request.input_location)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001 - any S3 error is a RequestDownloadFailure
            self._count("download_failures")
            message = f"RequestDownloadFailure: could not read {request.input_location}: {exc}"
            self._finish(
                request, _Outcome(False, json.dumps({"error": message}).encode(), "application/json", reason=message)
            )
            return None

    def _invoke(self, request: AsyncRequest, body: bytes) -> _Outcome:
        headers = {"Content-Type": request.content_type}
        if request.accept:
            headers["Accept"] = request.accept
        if request.custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.custom_attributes
        # The read timeout is the invocation timeout: the container answers in one
        # piece once inference is done, so the first byte arrives at the end.
        timeout = httpx.Timeout(float(request.timeout_seconds), connect=_PING_TIMEOUT_S)
        try:
            response = self._http.post(
                f"{self.container_url}/invocations", content=body, headers=headers, timeout=timeout
            )
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _ContainerDown(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TimeoutException:
            self._count("timed_out")
            message = (
                f"ModelTimeout: the model did not answer within InvocationTimeoutSeconds={request.timeout_seconds}"
            )
            return _Outcome(False, json.dumps({"error": message}).encode(), "application/json", reason=message)
        content_type = response.headers.get("content-type", "application/octet-stream")
        if 200 <= response.status_code < 300:
            return _Outcome(True, response.content, content_type, status=response.status_code)
        kind = "client" if response.status_code < 500 else "server"
        reason = (
            f"ClientError: Received {kind} error ({response.status_code}) from model. "
            "See the SageMaker Endpoint logs in your account for more information."
        )
        return _Outcome(False, response.content, content_type, reason=reason, status=response.status_code)

    def _count(self, counter: str) -> None:
        with self._cond:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    def _expire(self, request: AsyncRequest, now: float) -> None:
        self._count("expired")
        waited = now - request.received_at
        message = (
            f"RequestExpired: the request waited {waited:.0f} s in the queue, "
            f"longer than RequestTTLSeconds={request.ttl_seconds}"
        )
        log.warning("%s: %s", request.inference_id, message)
        self._finish(
            request, _Outcome(False, json.dumps({"error": message}).encode(), "application/json", reason=message)
        )

    def _finish(self, request: AsyncRequest, outcome: _Outcome) -> None:
        location = request.output_location if outcome.ok else request.failure_location
        bucket, key = _split_s3(location)
        self.s3.put_object(Bucket=bucket, Key=key, Body=outcome.body, ContentType=outcome.content_type)
        self._count("completed" if outcome.ok else "failed")
        log.info("%s %s -> %s", request.inference_id, "completed" if outcome.ok else "failed", location)
        self._notify(request, outcome)

    def _notify(self, request: AsyncRequest, outcome: _Outcome) -> None:
        """SageMaker's async notification document (async-inference-check-predictions)."""
        topic = self.success_topic_arn if outcome.ok else self.error_topic_arn
        if not topic:
            return
        document: dict[str, Any] = {
            "awsRegion": self.region,
            "eventTime": _iso_now(),
            "receivedTime": request.received_time,
            "invocationStatus": "Completed" if outcome.ok else "Failed",
            "requestParameters": {
                "accept": request.accept,
                "contentType": request.content_type,
                "customAttributes": request.custom_attributes,
                "endpointName": self.endpoint_name,
                "inputLocation": request.input_location,
            },
            "responseParameters": (
                {"contentType": outcome.content_type, "outputLocation": request.output_location}
                if outcome.ok
                else {"contentType": outcome.content_type, "failureLocation": request.failure_location}
            ),
            "inferenceId": request.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if not outcome.ok:
            document["failureReason"] = outcome.reason
        document["requestParameters"] = {k: v for k, v in document["requestParameters"].items() if v is not None}
        try:
            self.sns.publish(TopicArn=topic, Message=json.dumps(document))
            self._count("notifications_sent")
        except Exception:
            log.exception("notification for %s failed", request.inference_id)


class _ValidationError(Exception):
    pass


class _RuntimeHandler(BaseHTTPRequestHandler):
    """rest-json wire protocol of InvokeEndpointAsync, as botocore serialises it."""

    runtime: AsyncInferenceRuntime
    protocol_version = "HTTP/1.1"  # keep-alive, like the real service; bodies carry Content-Length

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _PATH.match(urlsplit(self.path).path)
        if not match:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no operation at {self.path}")
            return
        name = unquote(match.group("name"))
        runtime = self.runtime
        if name != runtime.endpoint_name:
            self._error(
                HTTPStatus.BAD_REQUEST, "ValidationError", f"Endpoint {name} of account {runtime.account_id} not found."
            )
            return
        h = self.headers
        params = {
            "ContentType": h.get("X-Amzn-SageMaker-Content-Type"),
            "Accept": h.get("X-Amzn-SageMaker-Accept"),
            "CustomAttributes": h.get("X-Amzn-SageMaker-Custom-Attributes"),
            "InferenceId": h.get("X-Amzn-SageMaker-Inference-Id"),
            "InputLocation": h.get("X-Amzn-SageMaker-InputLocation"),
            "S3OutputPathExtension": h.get("X-Amzn-SageMaker-S3OutputPathExtension"),
            "Filename": h.get("X-Amzn-SageMaker-Filename"),
            "RequestTTLSeconds": h.get("X-Amzn-SageMaker-RequestTTLSeconds"),
            "InvocationTimeoutSeconds": h.get("X-Amzn-SageMaker-InvocationTimeoutSeconds"),
        }
        try:
            request = runtime.enqueue(params, body or None)
        except _ValidationError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "ValidationError", str(exc))
            return
        self._send(
            HTTPStatus.ACCEPTED,
            {"InferenceId": request.inference_id},
            {
                "X-Amzn-SageMaker-OutputLocation": request.output_location,
                "X-Amzn-SageMaker-FailureLocation": request.failure_location,
            },
        )

    def do_GET(self) -> None:
        # Not part of SageMaker: a peek for humans and tests (`curl .../_local/stats`).
        if urlsplit(self.path).path == "/_local/stats":
            stats = self.runtime.stats.snapshot() | {
                "backlog": self.runtime.backlog(),
                "containerHealthy": self.runtime.healthy,
            }
            self._send(HTTPStatus.OK, stats, {})
        else:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no operation at {self.path}")

    def _error(self, status: HTTPStatus, code: str, message: str) -> None:
        # botocore's rest-json parser reads the code from this header (or __type).
        self._send(status, {"message": message, "__type": code}, {"x-amzn-ErrorType": code})

    def _send(self, status: HTTPStatus, doc: dict[str, Any], headers: dict[str, str]) -> None:
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/?(.*)$", uri)
    if not match:
        raise _ValidationError(f"{uri!r} is not an s3://bucket/key location")
    return match.group(1), match.group(2)


def _int_param(params: dict[str, str | None], name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ValidationError(f"{name}={raw!r} is not an integer") from None
    low, high = bounds
    if not low <= value <= high:
        raise _ValidationError(f"{name}={value} is outside {low}-{high}")
    return value


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
