"""A small client of the async inference API (docs/api.md): submit, upload, status, result, wait.

Standard library HTTP plus botocore for SigV4, nothing else: the client runs
wherever boto3 does. Two rules shape it:

- Every submit carries an ``Idempotency-Key`` (a fresh UUID unless the caller
  gives one) and every retry of that submit reuses it, so a timeout or a
  dropped connection never starts the same job twice: the API answers a replay
  with the original inference id.
- A deployed API uses IAM authorization: requests are signed with SigV4 for the
  ``execute-api`` service, credentials from botocore's usual chain (environment,
  profile, SSO, instance role). The local pipeline (`make local`) checks no
  signature: requests to 127.0.0.1 / localhost go unsigned unless signing is forced,
  and all unsigned requests are one (anonymous) caller there. Inferences belong to
  the caller that submitted them (docs/api.md): poll with the same credentials.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

# Inline bodies up to this size go straight to POST /invocations; larger ones through
# POST /uploads + a presigned POST form. The API's default inline limit is 4 MiB
# (MAX_REQUEST_BYTES), and API Gateway's 10 MB and Lambda's 6 MB (base64) limits
# apply on the way; a 413 for a smaller body falls back to the upload flow too.
DEFAULT_UPLOAD_THRESHOLD = 4 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEFAULT = urllib.request.build_opener()
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


# (bytes sent so far, total bytes): called as a request body goes out, from 0 to total.
UploadProgressHook = Callable[[int, int], None]
# Read size of a streamed body: progress is reported about every this many bytes.
_PROGRESS_BLOCK = 256 * 1024


class _ProgressReader:
    """A request body that reports how much of it http.client has read (i.e. sent)."""

    def __init__(self, body: bytes, hook: UploadProgressHook) -> None:
        self.view, self.hook, self.sent = memoryview(body), hook, 0
        hook(0, len(body))

    def read(self, size: int = -1) -> bytes:
        size = _PROGRESS_BLOCK if size is None or size < 0 else min(size, _PROGRESS_BLOCK)
        block = self.view[self.sent : self.sent + size].tobytes()
        if block:
            self.sent += len(block)
            self.hook(self.sent, len(self.view))
        return block


class ClientError(Exception):
    """Anything that stops a client call; the message says what and why."""


class ApiError(ClientError):
    """The API answered with an error status (after retries, if it was retryable)."""

    def __init__(self, status: int, body: Any, message: str | None = None) -> None:
        self.status = status
        self.body = body
        self.code = body.get("error") if isinstance(body, dict) else None
        detail = body.get("message") if isinstance(body, dict) else None
        super().__init__(message or f"HTTP {status}{f' {self.code}' if self.code else ''}: {detail or body}")


class InferenceFailed(ClientError):
    def __init__(self, status_document: dict[str, Any]) -> None:
        self.document = status_document
        reason = status_document.get("failureReason") or "no failure reason recorded"
        super().__init__(f"inference {status_document.get('inferenceId')} failed: {reason}")


class NotReady(ClientError):
    def __init__(self, status_document: dict[str, Any]) -> None:
        self.document = status_document
        super().__init__(f"inference {status_document.get('inferenceId')} is {status_document.get('status')}")


class WaitTimeout(ClientError):
    pass


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode("utf-8", errors="replace")

    def retry_after(self) -> float | None:
        raw = self.headers.get("retry-after")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None


@dataclass(frozen=True)
class _HttpCall:
    """One request as the client's methods ask for it; every retry sends the same call."""

    method: str
    url: str
    body: bytes
    headers: Mapping[str, str]
    # False for presigned S3 URLs and forms: they carry their own authorization.
    sign: bool
    # Told (bytes sent, total) as the body goes out.
    progress: UploadProgressHook | None


@dataclass
class Result:
    """A completed inference's output: the bytes the model returned and their type."""

    body: bytes
    content_type: str | None
    document: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOCAL_HOSTS


def region_from_url(url: str) -> str | None:
    match = _EXECUTE_API_HOST.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


class SigV4Signer:
    """Signs requests for API Gateway (service ``execute-api``) with botocore."""

    def __init__(self, region: str, session: Any | None = None) -> None:
        import botocore.session

        self.region = region
        self.session = session or botocore.session.get_session()
        credentials = self.session.get_credentials()
        if credentials is None:
            raise ClientError(
                "no AWS credentials found for signing (environment, ~/.aws profile, SSO or instance role); "
                "use --no-sign for an API without IAM authorization"
            )
        self.credentials = credentials

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        # Refreshable credentials (SSO, roles) are re-read on every request.
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())


class InferenceClient:
    def __init__(
        self,
        base_url: str,
        *,
        sign: bool | None = None,
        region: str | None = None,
        session: Any | None = None,
        timeout: float = 35.0,
        max_attempts: int = 5,
        upload_threshold: int = DEFAULT_UPLOAD_THRESHOLD,
        sleep: Callable[[float], None] = time.sleep,
        on_upload_progress: UploadProgressHook | None = None,
    ) -> None:
        if not re.match(r"^https?://", base_url):
            raise ClientError(f"API URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.upload_threshold = upload_threshold
        self.sleep = sleep
        # Told (bytes sent, total) while a payload goes out: inline submits and presigned uploads.
        self.on_upload_progress = on_upload_progress
        if sign is None:
            sign = not is_local(base_url)
        self.signer: SigV4Signer | None = None
        if sign:
            region = region or region_from_url(base_url) or _session_region(session)
            if not region:
                raise ClientError("cannot tell the API's region from its URL: pass --region (or set AWS_REGION)")
            self.signer = SigV4Signer(region, session)

    # ------------------------------------------------------------------ HTTP
    def _url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def _send(self, call: _HttpCall) -> HttpResponse:
        """One attempt at `call`, signed unless it says not to."""
        method, url, body = call.method, call.url, call.body
        headers = {"Accept": "application/json", "User-Agent": "inference-client/1", **call.headers}
        if call.sign and self.signer is not None:
            headers = self.signer.sign(method, url, headers, body)
        data: bytes | _ProgressReader | None = body if method in ("POST", "PUT") else None
        if data and call.progress is not None:
            # A file-like body is sent in blocks as it is read; an explicit Content-Length keeps
            # urllib from switching to chunked encoding (which S3 presigned requests refuse).
            data = _ProgressReader(body, call.progress)
            headers = {**headers, "Content-Length": str(len(body))}
        # The API's own URL (checked http(s) in __init__) or a presigned S3 URL it answered with.
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - see above
        # Loopback never goes through a proxy from the environment (HTTP_PROXY and friends).
        opener = _DIRECT if is_local(url) else _DEFAULT
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return HttpResponse(
                    response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
                )
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    def _request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        sign: bool = True,
        retry: bool = True,
        progress: UploadProgressHook | None = None,
    ) -> HttpResponse:
        """Send with bounded retries on network errors, 429 and 5xx (exponential backoff, full jitter).

        Only idempotent requests are retried: GETs, uploads to a presigned form or URL, and
        submits, which always carry an Idempotency-Key.
        """
        call = _HttpCall(method, url, body, dict(headers or {}), sign, progress)
        attempts = self.max_attempts if retry else 1
        last_error: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(call)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last_error = error
                response = None
            if response is not None and response.status not in RETRYABLE_STATUSES:
                return response
            if attempt == attempts:
                if response is not None:
                    return response
                break
            delay = random.uniform(0, min(8.0, 0.25 * 2**attempt))  # noqa: S311 - jitter, not crypto
            if response is not None and response.retry_after() is not None:
                delay = max(delay, min(response.retry_after() or 0, 30.0))
            self.sleep(delay)
        reason = getattr(last_error, "reason", last_error)
        raise ClientError(f"cannot reach {url} after {attempts} attempt(s): {reason}")

    @staticmethod
    def _expect(response: HttpResponse, *statuses: int) -> Any:
        if response.status not in statuses:
            raise ApiError(response.status, response.json())
        return response.json()

    # ------------------------------------------------------------------ API
    def submit(
        self,
        payload: bytes,
        content_type: str,
        *,
        accept: str | None = None,
        idempotency_key: str | None = None,
        invocation_timeout_seconds: int | None = None,
        request_ttl_seconds: int | None = None,
        force_upload: bool = False,
        callback_url: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Start an inference; returns the API's 202 document (inferenceId, status, statusUrl), or
        for a realtime/serverless endpoint its 200 document with the result already in it."""
        if not payload:
            raise ClientError("the payload is empty: nothing to infer")
        key = idempotency_key or str(uuid.uuid4())
        headers = {"Idempotency-Key": key}
        if accept:
            headers["Accept"] = accept
        if invocation_timeout_seconds is not None:
            headers["X-Invocation-Timeout-Seconds"] = str(invocation_timeout_seconds)
        if request_ttl_seconds is not None:
            headers["X-Request-TTL-Seconds"] = str(request_ttl_seconds)
        if callback_url is not None:  # the completion event goes there (the API checks the URL)
            headers["X-Callback-Url"] = callback_url
        if model is not None:  # one of the endpoint's models (docs/api.md, "Naming a model")
            headers["X-Amzn-SageMaker-Target-Model"] = model
        if not force_upload and len(payload) <= self.upload_threshold:
            response = self._request(
                "POST",
                self._url("invocations"),
                payload,
                {**headers, "Content-Type": content_type},
                progress=self.on_upload_progress,
            )
            if response.status != 413:
                return self._accepted(response)
            # Too large for this API's inline limit: same request through an upload.
        upload_id = self.upload(payload, content_type)
        body = json.dumps({"uploadId": upload_id}).encode()
        response = self._request(
            "POST", self._url("invocations"), body, {**headers, "Content-Type": "application/json"}
        )
        return self._accepted(response)

    def _accepted(self, response: HttpResponse) -> dict[str, Any]:
        # 202 InProgress from an async endpoint; 200 with the final status document (Completed
        # or Failed, same shape as GET /invocations/{id}) from a realtime or serverless one.
        document = self._expect(response, 200, 202)
        document["replayed"] = response.headers.get("idempotent-replayed") == "true"
        return document

    def upload(self, payload: bytes, content_type: str) -> str:
        """POST /uploads, then send the payload to S3 with the presigned form; returns the uploadId.

        The API answers a presigned POST (docs/api.md): S3 itself refuses a file over
        ``maxBytes`` or of another Content-Type, so the size is checked here first rather
        than after sending a gigabyte. The upload is single use: submit it once.
        """
        response = self._request(
            "POST",
            self._url("uploads"),
            json.dumps({"contentType": content_type}).encode(),
            {"Content-Type": "application/json"},
        )
        grant = self._expect(response, 200, 201)
        limit = grant.get("maxBytes")
        if isinstance(limit, int) and len(payload) > limit:
            raise ClientError(f"the payload has {len(payload)} bytes; this API accepts uploads of at most {limit}")
        if grant.get("method") == "POST" and isinstance(grant.get("fields"), dict):
            body, form_type = multipart_form(
                grant["fields"],
                str(grant.get("fileField") or "file"),
                payload,
                str(grant["fields"].get("Content-Type") or content_type),
            )
            method, headers = "POST", {"Content-Type": form_type}
        else:  # an API from before presigned POSTs: a presigned PUT with the headers it signed
            body, method = payload, str(grant.get("method") or "PUT")
            headers = dict(grant.get("headers") or {"Content-Type": content_type})
        # The presigned form/URL carries its own authorization: never SigV4-sign it again.
        sent = self._request(method, grant["uploadUrl"], body, headers, sign=False, progress=self.on_upload_progress)
        if not 200 <= sent.status < 300:
            raise ApiError(
                sent.status, sent.json(), f"S3 refused the upload with HTTP {sent.status}: {s3_error(sent.body)}"
            )
        return str(grant["uploadId"])

    def status(self, inference_id: str) -> tuple[dict[str, Any], float | None]:
        """The status document and the server's Retry-After hint (seconds) while in progress."""
        response = self._request("GET", self._url(f"invocations/{quote(inference_id, safe='')}"))
        document = self._expect(response, 200, 202)
        return document, response.retry_after()

    def result(self, inference_id: str, document: dict[str, Any] | None = None) -> Result:
        """The output of a completed inference; InferenceFailed / NotReady otherwise."""
        if document is None:
            document, _ = self.status(inference_id)
        state = document.get("status")
        if state == "Failed":
            raise InferenceFailed(document)
        if state != "Completed":
            raise NotReady(document)
        content_type = document.get("contentType")
        if "outputUrl" in document:
            fetched = self._request("GET", document["outputUrl"], sign=False)
            if fetched.status != 200:
                raise ApiError(fetched.status, fetched.json(), f"download of the result failed: HTTP {fetched.status}")
            return Result(fetched.body, content_type, document)
        encoding, output = document.get("outputEncoding"), document.get("output")
        if encoding == "json":
            return Result(json.dumps(output, ensure_ascii=False).encode("utf-8"), content_type, document)
        if encoding == "base64":
            return Result(base64.b64decode(output or ""), content_type, document)
        return Result(str(output if output is not None else "").encode("utf-8"), content_type, document)

    def wait(
        self,
        inference_id: str,
        *,
        timeout: float | None = None,
        initial_interval: float = 0.5,
        max_interval: float = 15.0,
        on_progress: Callable[[float, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, Any]:
        """Poll until Completed or Failed; returns the final status document.

        The interval grows by half each poll up to ``max_interval``, and never
        undercuts the server's Retry-After (capped at ``max_interval`` too).
        """
        started = clock()
        interval = initial_interval
        # Bounded even without a timeout: max_interval * 100000 polls is weeks.
        for _ in range(100_000):
            document, retry_after = self.status(inference_id)
            elapsed = clock() - started
            if on_progress is not None:
                on_progress(elapsed, document)
            if document.get("status") in ("Completed", "Failed"):
                return document
            delay = min(max(interval, retry_after or 0.0), max_interval)
            if timeout is not None and elapsed + delay > timeout:
                raise WaitTimeout(f"inference {inference_id} still {document.get('status')} after {elapsed:.0f} s")
            self.sleep(delay)
            interval = min(interval * 1.5, max_interval)
        raise WaitTimeout(f"inference {inference_id} did not finish")  # pragma: no cover


def multipart_form(fields: Mapping[str, str], file_field: str, payload: bytes, file_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) for an S3 POST upload, and its Content-Type.

    S3 reads the form fields in order and ignores everything after the file, so the
    file goes last (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html).
    """
    boundary = uuid.uuid4().hex * 2
    while boundary.encode() in payload:  # pragma: no cover - 64 random hex digits
        boundary = uuid.uuid4().hex * 2
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="payload"\r\n'
        f"Content-Type: {file_type}\r\n\r\n".encode()
    )
    return b"".join([*parts, payload, f"\r\n--{boundary}--\r\n".encode()]), f"multipart/form-data; boundary={boundary}"


def s3_error(body: bytes) -> str:
    """'EntityTooLarge: Your proposed upload exceeds the maximum allowed size' from S3's XML error."""
    text = body[:2000].decode("utf-8", errors="replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    if code:
        return f"{code.group(1)}: {message.group(1) if message else ''}".rstrip(": ")
    return text[:300]


def _session_region(session: Any | None) -> str | None:
    try:
        import botocore.session

        return (session or botocore.session.get_session()).get_config_variable("region")
    except Exception:  # noqa: BLE001 - no region configured is answered by the caller
        return None
