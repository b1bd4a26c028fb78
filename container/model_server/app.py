"""The HTTP surface: GET /ping and POST /invocations (the SageMaker contract).

Starlette rather than FastAPI: the contract is raw bodies in, raw bodies out,
so request models and OpenAPI would add per-request work and nothing else.
Nothing here computes: requests are admitted (readiness, size, content types),
decoded, and handed to the engine (engine.py), which validates them, batches
them and runs the model; ``python -m model_server serve`` runs the engine in a
process of its own (engine_process.py), so this process only speaks HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import codec, tasks
from .bodies import RELEASE_AFTER_BYTES, SPOOL_MEMORY_BYTES, read_body, release_memory
from .engine import Engine
from .engine_thread import ThreadEngine
from .errors import ModelNotReady, ServerError, UnsupportedMediaType, from_model_exception
from .loader import ModelState
from .settings import Settings

log = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
# Observability for clients and tests: how many inputs / requests shared the model call.
BATCH_SIZE_HEADER = "X-Batch-Size"
BATCH_REQUESTS_HEADER = "X-Batch-Requests"
# SageMaker sends SIGKILL this long after SIGTERM
# (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html):
# uvicorn drains HTTP requests for MODEL_SERVER_GRACEFUL_SHUTDOWN_S, the engine gets what is left.
STOP_GRACE_S = 30.0


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=codec.JSON, headers=headers)


def error_response(exc: ServerError) -> Response:
    return _json(exc.status, {"error": exc.title, "message": exc.message, "status": exc.status})


def refused(exc: ServerError) -> Response:
    """The error answer of a request that failed with `exc`, logged (a warning for 5xx)."""
    log.log(
        logging.WARNING if exc.status >= 500 else logging.INFO,
        "request failed",
        extra={"event": "request_error", "status": exc.status, "error": exc.message},
    )
    return error_response(exc)


class EchoCustomAttributes:
    """Echo ``X-Amzn-SageMaker-Custom-Attributes`` on every response that had it.

    Plain ASGI (not BaseHTTPMiddleware): it adds one header and must not add a
    task and a memory stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = None
        if scope["type"] == "http":
            value = next((v for k, v in scope["headers"] if k == CUSTOM_ATTRIBUTES), None)
        if value is None:
            await self.app(scope, receive, send)
            return

        async def send_echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (CUSTOM_ATTRIBUTES, value)]
            await send(message)

        await self.app(scope, receive, send_echo)


async def invoke_or_error(request: Request, engine: Engine, settings: Settings) -> Response:
    """Serve one inference request with `engine`; every failure is a JSON error answer."""
    try:
        return await invoke(request, engine, settings)
    except ServerError as exc:
        return refused(exc)
    except Exception as exc:
        log.exception("unexpected error")
        return error_response(from_model_exception(exc))


async def invoke(request: Request, engine: Engine, settings: Settings) -> Response:
    """/invocations against `engine` (the multi-model routes reuse it per model: multi_model_app.py)."""
    if engine.status != "ready":
        raise ModelNotReady(f"model is {engine.status}" + (f": {engine.error}" if engine.error else ""))
    task = engine.task
    headers = request.headers
    if engine.user_code:
        # User hooks decide what they accept and produce (toolkit semantics).
        body = await read_body(request, settings.max_request_bytes)
        hook = await engine.handle(
            body, headers.get("content-type") or codec.JSON, headers.get("accept"), dict(headers)
        )
        return Response(
            hook.body,
            status_code=hook.status,
            media_type=hook.content_type,
            headers={**hook.headers, BATCH_SIZE_HEADER: "1", BATCH_REQUESTS_HEADER: "1"},
        )
    # Everything about the request is checked before it joins a batch.
    accept = headers.get("accept")
    codec.check_accept(accept)
    kind = codec.request_kind(headers.get("content-type"))
    if kind not in tasks.input_kinds(task):
        raise UnsupportedMediaType(f"Content-Type {headers.get('content-type')!r} is not an input of {task}")
    body = await read_body(request, settings.max_request_bytes)
    if kind in (codec.KIND_IMAGE, codec.KIND_AUDIO, codec.KIND_NPY) or len(body) > SPOOL_MEMORY_BYTES:
        # Decoding media or a large document is real work: off the event loop, which answers /ping.
        payload = await run_in_threadpool(codec.decode, body, kind)
    else:
        payload = codec.decode(body, kind)
    # The engine validates (a 4xx naming the field) before the request joins a batch.
    outputs, info = await engine.infer(payload.inputs, payload.parameters)
    if payload.is_batch:
        result: Any = outputs
    elif settings.response_shape == "toolkit":
        result = tasks.single_output(task, outputs[0])
    else:
        result = outputs[0]
    data, media_type = codec.encode_response(result, accept)
    return Response(
        data,
        media_type=media_type,
        headers={BATCH_SIZE_HEADER: str(info.size), BATCH_REQUESTS_HEADER: str(info.requests)},
    )


def create_app(settings: Settings, state: ModelState | None = None, *, engine: Engine | None = None) -> ASGIApp:
    """The app, serving ``engine``; without one, the engine runs in this process (``ThreadEngine``)."""
    engine = engine or ThreadEngine(settings, state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The engine loads in the background: the server listens (and answers /ping 503) meanwhile.
        await engine.start()
        yield
        # uvicorn has drained in-flight requests by now (graceful shutdown): the engine is idle.
        await engine.stop(max(1.0, STOP_GRACE_S - settings.graceful_shutdown_s - 1.0))

    async def ping(request: Request) -> Response:
        status = engine.status
        if status == "ready":
            return _json(200, {"status": "healthy"})
        body: dict[str, str] = {"status": status}
        if engine.error:
            body["error"] = engine.error
        return _json(503, body)

    async def invocations(request: Request) -> Response:
        response = await _invoke_or_error(request)
        if getattr(request.state, "body_bytes", 0) >= RELEASE_AFTER_BYTES:
            # After the response is sent, when the request's buffers are gone.
            response.background = BackgroundTask(release_memory)
        return response

    async def _invoke_or_error(request: Request) -> Response:
        return await invoke_or_error(request, engine, settings)

    async def http_error(request: Request, exc: Exception) -> Response:
        # 404 / 405 as JSON too: every error body is JSON.
        if not isinstance(exc, HTTPException):  # Starlette routes only HTTPException here
            raise exc
        return _json(exc.status_code, {"error": exc.detail, "message": exc.detail, "status": exc.status_code})

    app = Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.engine = engine
    if isinstance(engine, ThreadEngine):
        app.state.model_state = engine.state
    return EchoCustomAttributes(app)
