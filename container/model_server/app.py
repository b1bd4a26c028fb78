"""The HTTP surface: GET /ping and POST /invocations (the SageMaker contract).

Starlette rather than FastAPI: the contract is raw bodies in, raw bodies out,
so request models and OpenAPI would add per-request work and nothing else.
Nothing here computes: requests are decoded and validated, then handed to the
batcher, whose inference thread does the work.
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
from .batching import DynamicBatcher
from .bodies import RELEASE_AFTER_BYTES, SPOOL_MEMORY_BYTES, read_body, release_memory
from .errors import ModelNotReady, ServerError, UnsupportedMediaType, from_model_exception
from .loader import ModelState, start_loading
from .settings import Settings

log = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
# Observability for clients and tests: how many inputs / requests shared the model call.
BATCH_SIZE_HEADER = "X-Batch-Size"
BATCH_REQUESTS_HEADER = "X-Batch-Requests"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=codec.JSON, headers=headers)


def error_response(exc: ServerError) -> Response:
    return _json(exc.status, {"error": exc.title, "message": exc.message, "status": exc.status})


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


def create_app(settings: Settings, state: ModelState | None = None) -> ASGIApp:
    state = state or ModelState()

    def predict(inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        assert state.loaded is not None
        return state.loaded.model.predict_batch(inputs, parameters)

    batcher_box: dict[str, DynamicBatcher] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher = DynamicBatcher(
            predict, max_batch_size=settings.max_batch_size, max_wait_s=settings.max_batch_wait_ms / 1000
        )
        batcher.start()
        batcher_box["batcher"] = batcher
        # Load in the background: the server listens (and answers /ping 503) meanwhile.
        start_loading(settings, state)
        yield
        # uvicorn has drained in-flight requests by now (graceful shutdown).
        await batcher.close()

    async def ping(request: Request) -> Response:
        if state.status == "ready":
            return _json(200, {"status": "healthy"})
        body = {"status": state.status}
        if state.error:
            body["error"] = state.error
        return _json(503, body)

    async def invocations(request: Request) -> Response:
        response = await _invoke_or_error(request)
        if getattr(request.state, "body_bytes", 0) >= RELEASE_AFTER_BYTES:
            # After the response is sent, when the request's buffers are gone.
            response.background = BackgroundTask(release_memory)
        return response

    async def _invoke_or_error(request: Request) -> Response:
        try:
            return await _invoke(request)
        except ServerError as exc:
            log.log(logging.WARNING if exc.status >= 500 else logging.INFO, "request failed",
                    extra={"event": "request_error", "status": exc.status, "error": exc.message})
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving whatever happens
            log.exception("unexpected error")
            return error_response(from_model_exception(exc))

    async def _invoke(request: Request) -> Response:
        if state.status != "ready" or state.loaded is None:
            raise ModelNotReady(f"model is {state.status}" + (f": {state.error}" if state.error else ""))
        loaded = state.loaded
        batcher = batcher_box["batcher"]
        headers = request.headers
        if loaded.user_code is not None:
            # User hooks decide what they accept and produce (toolkit semantics).
            body = await read_body(request, settings.max_request_bytes)
            content_type = headers.get("content-type") or codec.JSON
            hook = await batcher.run_exclusive(
                lambda: loaded.user_code.handle(loaded.model, body, content_type, headers.get("accept"), dict(headers))
            )
            return Response(hook.body, status_code=hook.status, media_type=hook.content_type,
                            headers={**hook.headers, BATCH_SIZE_HEADER: "1", BATCH_REQUESTS_HEADER: "1"})
        # Everything about the request is checked before it joins a batch.
        accept = headers.get("accept")
        codec.check_accept(accept)
        kind = codec.request_kind(headers.get("content-type"))
        if kind not in tasks.input_kinds(loaded.task):
            raise UnsupportedMediaType(f"Content-Type {headers.get('content-type')!r} is not an input of {loaded.task}")
        body = await read_body(request, settings.max_request_bytes)
        if kind in (codec.KIND_IMAGE, codec.KIND_AUDIO, codec.KIND_NPY) or len(body) > SPOOL_MEMORY_BYTES:
            # Decoding media or a large document is real work: off the event loop, which answers /ping.
            payload = await run_in_threadpool(codec.decode, body, kind)
        else:
            payload = codec.decode(body, kind)
        loaded.model.validate(payload.inputs, payload.parameters)
        outputs, info = await batcher.submit(payload.inputs, payload.parameters)
        if payload.is_batch:
            result: Any = outputs
        elif settings.response_shape == "toolkit":
            result = tasks.single_output(loaded.task, outputs[0])
        else:
            result = outputs[0]
        data, media_type = codec.encode_response(result, accept)
        return Response(
            data, media_type=media_type,
            headers={BATCH_SIZE_HEADER: str(info.size), BATCH_REQUESTS_HEADER: str(info.requests)},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        # 404 / 405 as JSON too: every error body is JSON.
        assert isinstance(exc, HTTPException)
        return _json(exc.status_code, {"error": exc.detail, "message": exc.detail, "status": exc.status_code})

    app = Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.model_state = state
    return EchoCustomAttributes(app)
