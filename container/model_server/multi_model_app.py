"""The HTTP surface of a server with several models (multi_model.py): SageMaker's model-management API.

https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html, as SageMaker calls it on a
multi-model endpoint (``SAGEMAKER_MULTI_MODEL=true``), and for a ``<name>/``-folders artifact:

    GET    /ping                       200 while the server runs, with zero models too
    POST   /models                     {"model_name", "url"}: load; 409 loaded, 404 no model at url,
                                       422 does not load, 507 does not fit in memory
    GET    /models?limit=&next_page_token=   {"models": [{"modelName", "modelUrl"}], "nextPageToken"}
    GET    /models/{name}              {"modelName", "modelUrl"}; 404 not loaded
    DELETE /models/{name}              unload (the engine process ends: its memory is free on return)
    POST   /models/{name}/invoke       as /invocations, for that model (X-Amzn-SageMaker-Target-Model
                                       is SageMaker's name of it, echoed back); 404 not loaded
    POST   /invocations                the model named by X-Amzn-SageMaker-Target-Model or by
                                       `model=<name>` in X-Amzn-SageMaker-Custom-Attributes; with a
                                       folders artifact, loaded on demand (least recently used evicted)

Request handling per model is app.invoke: the same decoding, batching (one batcher per engine,
so per model) and errors as the single-model /invocations.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .app import EchoCustomAttributes, _json, error_response, invoke_or_error, refused
from .bodies import RELEASE_AFTER_BYTES, release_memory
from .errors import BadRequest, ServerError
from .multi_model import ModelRegistry, model_folders, model_from_attributes, page
from .settings import Settings

log = logging.getLogger(__name__)

TARGET_MODEL = "x-amzn-sagemaker-target-model"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
# {"model_name": ..., "url": ...} with a long path is far below this.
MAX_LOAD_REQUEST_BYTES = 64 * 1024


def _model_document(name: str, url: str) -> dict[str, str]:
    return {"modelName": name, "modelUrl": url}


def _errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ServerError as exc:
            return refused(exc)

    return wrapped


def create_multi_model_app(settings: Settings, registry: ModelRegistry) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if registry.folders_dir is not None:
            log.info("model folders", extra={"event": "model_folders", "models": model_folders(registry.folders_dir)})
        yield
        await registry.close()

    async def ping(request: Request) -> Response:
        # Healthy with zero models: SageMaker loads them on demand after the endpoint is InService.
        return _json(200, {"status": "healthy", "models": len(registry.names())})

    @_errors
    async def load(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_LOAD_REQUEST_BYTES:
            raise BadRequest(f'the body has {len(body)} bytes; a load request is {{"model_name", "url"}}')
        try:
            document = json.loads(body or b"null")
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise BadRequest('the body must be {"model_name": "...", "url": "/opt/ml/models/.../model"}')
        missing = [key for key in ("model_name", "url") if not isinstance(document.get(key), str) or not document[key]]
        if missing:
            raise BadRequest(f'missing or empty {", ".join(missing)}: send {{"model_name": "...", "url": "..."}}')
        model = await registry.load(document["model_name"], document["url"])
        return _json(200, {**_model_document(model.name, model.url), "status": f"model {model.name} loaded"})

    @_errors
    async def list_models(request: Request) -> Response:
        raw_limit = request.query_params.get("limit") or request.query_params.get("max_results")
        if raw_limit is not None and (not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE):
            raise BadRequest(f"limit={raw_limit!r}: a whole number from 1 to {MAX_PAGE}")
        limit = int(raw_limit) if raw_limit else DEFAULT_PAGE
        token = request.query_params.get("next_page_token") or request.query_params.get("nextPageToken")
        names, next_token = page(registry.names(), limit, token)
        body: dict[str, Any] = {"models": [_model_document(n, registry.get(n).url) for n in names]}
        if next_token is not None:
            body["nextPageToken"] = next_token
        return _json(200, body)

    @_errors
    async def describe(request: Request) -> Response:
        model = registry.get(request.path_params["name"])
        return _json(200, _model_document(model.name, model.url))

    @_errors
    async def unload(request: Request) -> Response:
        name = request.path_params["name"]
        await registry.unload(name)
        return _json(200, {"status": f"model {name} unloaded"})

    async def invoke_named(request: Request) -> Response:
        response = await _serve(request, request.path_params["name"])
        target = request.headers.get(TARGET_MODEL)
        if target is not None:
            response.headers[TARGET_MODEL] = target
        return response

    async def invocations(request: Request) -> Response:
        name = request.headers.get(TARGET_MODEL) or model_from_attributes(
            request.headers.get("x-amzn-sagemaker-custom-attributes")
        )
        if not name:
            known = (
                ", ".join(model_folders(registry.folders_dir) if registry.folders_dir else registry.names()) or "none"
            )
            return error_response(
                BadRequest(
                    "this server hosts several models: name one with model=<name> in "
                    "X-Amzn-SageMaker-Custom-Attributes (or header X-Amzn-SageMaker-Target-Model); "
                    f"models: {known}"
                )
            )
        return await _serve(request, name)

    async def _serve(request: Request, name: str) -> Response:
        try:
            model = await registry.acquire(name)
        except ServerError as exc:
            log.info(
                "request for a model refused",
                extra={"event": "request_error", "status": exc.status, "error": exc.message},
            )
            return error_response(exc)
        try:
            response = await invoke_or_error(request, model.engine, settings)
        finally:
            registry.release(model)
        if getattr(request.state, "body_bytes", 0) >= RELEASE_AFTER_BYTES:
            response.background = BackgroundTask(release_memory)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # Starlette routes only HTTPException here
            raise exc
        return _json(exc.status_code, {"error": exc.detail, "message": exc.detail, "status": exc.status_code})

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/models", load, methods=["POST"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/models/{name}", describe, methods=["GET"]),
            Route("/models/{name}", unload, methods=["DELETE"]),
            Route("/models/{name}/invoke", invoke_named, methods=["POST"]),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.registry = registry
    return EchoCustomAttributes(app)


def serving_app(settings: Settings) -> ASGIApp:
    """What ``serve`` runs: one model, or the registry of models when SageMaker asks for multi-model
    hosting (SAGEMAKER_MULTI_MODEL=true: start with none) or MODEL_DIR holds ``<name>/`` model folders."""
    from .app import create_app
    from .engine_process import EngineProcess

    folders = [] if (settings.multi_model or settings.hf_model_id) else model_folders(settings.model_dir)
    if not settings.multi_model and not folders:
        return create_app(settings, engine=EngineProcess(settings))
    registry = ModelRegistry(
        settings,
        engine_factory=lambda model_settings, name: EngineProcess(model_settings, name=name),
        # SageMaker evicts on a multi-model endpoint (it unloads and retries after a 507).
        evict=not settings.multi_model,
        folders_dir=settings.model_dir if folders else None,
    )
    return create_multi_model_app(settings, registry)
