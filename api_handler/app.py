"""Lambda entry point of the client API (API Gateway REST API, Lambda proxy integration).

Routing, structured logs, metrics and tracing come from Powertools for AWS Lambda
(Python), attached as AWS's public layer; this module only wires HTTP to the service.

Routes (docs/api.md, docs/openapi.yaml):
    POST /invocations                 submit (inline body, or {"uploadId": ...}); 202 for an async
                                      endpoint, 200 with the result for realtime/serverless/multimodel;
                                      ?model=NAME or X-Amzn-SageMaker-Target-Model names a model
    POST /models/{model}/invocations  the same, for the named model (async_api/model_name.py)
    POST /uploads                     presigned POST form for a large payload
    GET  /invocations/{inference_id}  status and result
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from api_handler import contract
from api_handler.async_api import logic, schemas
from api_handler.async_api.callers import caller_of
from api_handler.async_api.errors import ApiError, BadRequest, NotFound, UnsupportedMediaType
from api_handler.async_api.json_input import parse_json
from api_handler.async_api.realtime import SYNC_MODES, SyncInferenceService, build_sync_clients
from api_handler.async_api.service import Deadline, InferenceService, build_clients
from api_handler.async_api.settings import Settings

_SERVICE = os.environ.get(contract.Env.POWERTOOLS_SERVICE_NAME, contract.DEFAULT_SERVICE_NAME)
logger = Logger(service=_SERVICE)
tracer = Tracer(service=_SERVICE)
metrics = Metrics(namespace=os.environ.get(contract.Env.POWERTOOLS_METRICS_NAMESPACE, contract.METRICS_NAMESPACE))
app = APIGatewayRestResolver()

# Leave time to serialize and return the answer before the Lambda timeout.
_ANSWER_MARGIN_SECONDS = 1.0
# {"contentType": ...} with a 256-character type is far below this; no reason to parse more.
_UPLOAD_REQUEST_MAX_BYTES = 4096


@cache
def service() -> InferenceService:
    """Settings and boto3 clients, created once per execution environment."""
    settings = Settings.from_environment(os.environ)
    if settings.hosting_mode in SYNC_MODES:  # real-time / serverless: InvokeEndpoint during the request
        return SyncInferenceService(settings, build_sync_clients(settings))
    return InferenceService(settings, build_clients(settings))


def _deadline() -> Deadline:
    remaining = getattr(app.lambda_context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return Deadline(lambda: remaining() / 1000 - _ANSWER_MARGIN_SECONDS)
    return Deadline()


def _event() -> Mapping[str, Any]:
    return app.current_event.raw_event


def _request_id(event: Mapping[str, Any] | None = None) -> str:
    event = event if event is not None else _event()
    context = event.get("requestContext")
    if isinstance(context, Mapping) and isinstance(context.get("requestId"), str):
        return str(context["requestId"])
    return str(getattr(app.lambda_context, "aws_request_id", "") or "unknown")


def _path_parameter(name: str, captured: str) -> str:
    """Path parameter `name` as API Gateway decoded it (once), else the resolver's capture.

    Not the resolver's capture when API Gateway has one: the resolver's route regex ends in `$`,
    which also matches before a trailing newline ("/invocations/<id>%0A")."""
    parameters = _event().get("pathParameters")
    if isinstance(parameters, Mapping) and isinstance(parameters.get(name), str):
        return str(parameters[name])
    return captured


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=dict(headers or {}),
    )


def _error_body(code: str, message: str, request_id: str) -> dict[str, str]:
    return {"error": code, "message": message, "requestId": request_id}


# ----------------------------------------------------------------------------- routes
@app.post(contract.SUBMIT.powertools_path)
@tracer.capture_method(capture_response=False)
def submit() -> Response[str]:
    return _submit(None)


@app.post(contract.SUBMIT_TO_MODEL.powertools_path)
@tracer.capture_method(capture_response=False)
def submit_to_model(model_name: str) -> Response[str]:
    return _submit(_path_parameter("model_name", model_name))


def _submit(path_model: str | None) -> Response[str]:
    svc = service()
    request = logic.parse_submit(_event(), svc.settings, path_model)
    receipt, replayed = svc.submit(request, caller_of(_event()), _deadline())
    url = logic.status_url(_event(), receipt.inferenceId)
    headers = {"Location": url}
    if replayed:
        headers[logic.REPLAYED_HEADER] = "true"
        metrics.add_metric(name="IdempotentReplays", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="InferencesSubmitted", unit=MetricUnit.Count, value=1)
    logger.info(
        "inference accepted",
        extra={
            "inference_id": receipt.inferenceId,
            "replayed": replayed,
            "upload_id": receipt.uploadId,
            "caller": receipt.caller,
        },
    )
    if svc.settings.hosting_mode in SYNC_MODES:
        # The result exists already: answer what GET /invocations/{id} would (200 Completed or Failed).
        answer = svc.status(receipt.inferenceId, caller_of(_event()), url, _deadline())
        return _json(answer.status, answer.body, {**answer.headers, **headers})
    return _json(202, logic.accepted_body(receipt, url), headers)


@app.post(contract.UPLOAD.powertools_path)
@tracer.capture_method(capture_response=False)
def create_upload() -> Response[str]:
    svc = service()
    event = _event()
    if not logic.is_json(logic.lower_headers(event).get("content-type")):
        raise UnsupportedMediaType('POST /uploads takes application/json: {"contentType": "<payload type>"}')
    body = logic.decode_body(event)
    if not body:
        raise BadRequest('the body is empty; send {"contentType": "<payload type>"}')
    if len(body) > _UPLOAD_REQUEST_MAX_BYTES:
        raise BadRequest(f"the body has {len(body)} bytes; an upload request is a small JSON object")
    document = parse_json(body, what="the body")
    try:
        validate(event=document, schema=schemas.UPLOAD_REQUEST)
    except SchemaValidationError as error:
        raise BadRequest(f"invalid upload request: {error.validation_message or error}") from None
    content_type = logic.require_content_type(document["contentType"], svc.settings.allowed_content_types)
    answer = svc.create_upload(content_type, caller_of(event), _deadline())
    metrics.add_metric(name="UploadsCreated", unit=MetricUnit.Count, value=1)
    return _json(201, answer)


@app.get(contract.STATUS.powertools_path)
@tracer.capture_method(capture_response=False)
def get_status(inference_id: str) -> Response[str]:
    inference_id = _path_parameter("inference_id", inference_id)
    if not logic.INFERENCE_ID.fullmatch(inference_id):
        # Not an id this API ever issues, so it names no inference: 404 like any unknown id.
        raise NotFound(f"no inference with id {inference_id[:80]!r} (ids look like 'r' or 'k' and 32 hex digits)")
    svc = service()
    answer = svc.status(inference_id, caller_of(_event()), logic.status_url(_event(), inference_id), _deadline())
    metrics.add_metric(name=f"Status{answer.body['status']}", unit=MetricUnit.Count, value=1)
    return _json(answer.status, answer.body, answer.headers)


# ----------------------------------------------------------------------------- errors
def _api_error(error: ApiError) -> Response[str]:
    level = logger.warning if error.status >= 500 else logger.info
    level("request refused", extra={"error": error.code, "status": error.status, "reason": error.message})
    _count_error(error.status)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    return _json(error.status, _error_body(error.code, error.message, _request_id()), headers)


@app.not_found
def _no_route(_: NotFoundError) -> Response[str]:
    event = app.current_event
    message = f"no route for {event.http_method} {event.path}"
    _count_error(404)
    return _json(404, _error_body("NotFound", message, _request_id()))


def _unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    _count_error(500)
    message = "unexpected error; quote the requestId when reporting it"
    return _json(500, _error_body("InternalError", message, _request_id()))


def _count_error(status: int) -> None:
    name = "ServerErrors" if status >= 500 else "ClientErrors"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


# Registered by call rather than as decorators: Powertools' exception_handler is unannotated,
# and as a decorator it would erase these functions' signatures for the type checker.
app.exception_handler(ApiError)(_api_error)
app.exception_handler(Exception)(_unexpected)


# ----------------------------------------------------------------------------- entry point
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def _resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda handler. Never raises: every outcome is a JSON answer with a documented status."""
    problem = _not_a_proxy_event(event)
    if problem:
        logger.warning("malformed event", extra={"problem": problem})
        request_id = str(getattr(context, "aws_request_id", "") or "unknown")
        return _raw_answer(400, _error_body("BadRequest", f"not an API Gateway proxy request: {problem}", request_id))
    try:
        answer: dict[str, Any] = _resolve(event, context)
        return answer
    except Exception:
        logger.exception("unhandled error outside the routes")
        return _raw_answer(500, _error_body("InternalError", "unexpected error", _request_id(event)))


def _raw_answer(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "multiValueHeaders": {},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _not_a_proxy_event(event: Any) -> str | None:
    """Why `event` is not a REST API proxy event, or None. Checks only what routing reads."""
    if not isinstance(event, Mapping):
        return "the event is not an object"
    if not isinstance(event.get("httpMethod"), str) or not event["httpMethod"].isalpha():
        return "httpMethod is missing or not a method name"
    if not isinstance(event.get("path"), str) or not event["path"].startswith("/"):
        return "path is missing or not absolute"
    for name in ("headers", "queryStringParameters", "pathParameters", "stageVariables", "requestContext"):
        if event.get(name) is not None and not isinstance(event[name], Mapping):
            return f"{name} is not an object"
    for name in ("headers", "queryStringParameters", "pathParameters"):
        values = event.get(name) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            return f"{name} must map strings to strings"
    for name in ("multiValueHeaders", "multiValueQueryStringParameters"):
        values = event.get(name)
        if values is None:
            continue
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v) for k, v in values.items()
        ):
            return f"{name} must map strings to lists of strings"
    if event.get("body") is not None and not isinstance(event["body"], str):
        return "body is not a string"
    if event.get("isBase64Encoded") is not None and not isinstance(event["isBase64Encoded"], bool):
        return "isBase64Encoded is not a boolean"
    return None
