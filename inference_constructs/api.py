"""The client API: API Gateway REST API (IAM auth) in front of one Lambda function.

Clients never touch S3 or SageMaker directly. The Lambda (api_handler/) stores the
payload, starts the async inference and reports status. This construct puts the gateway's
guard rails in front of it; the stack grants its role exactly what it needs on the resources'
owners (InferenceStorage.grant_api_access, InferenceEndpoint.grant_invoke). It takes the storage
as the construct that owns it and the environment's ApiConfig as it is, so a new API setting is
one field there and one use here, not a keyword threaded through the stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from api_handler.async_api import schemas
from api_handler.contract import (
    API_HANDLER,
    DEFAULT_SERVICE_NAME,
    LAMBDA_TIMEOUT_SECONDS,
    METRICS_NAMESPACE,
    STATUS,
    SUBMIT,
    SUBMIT_TO_MODEL,
    TEXT_MEDIA_PREFIXES,
    UPLOAD,
    Route,
    handler_environment,
)
from app_config.models import ApiConfig, UsagePlanConfig
from inference_constructs.encryption import allow_cloudwatch_logs
from inference_constructs.handler_function import handler_function
from inference_constructs.log_groups import encrypted_log_group
from inference_constructs.storage import InferenceStorage

LAMBDA_TIMEOUT = cdk.Duration.seconds(LAMBDA_TIMEOUT_SECONDS)

# JSON error body of every gateway-generated answer, matching the handler's {error, message, requestId}.
# $context.error.messageString is already a quoted JSON string.
GATEWAY_ERROR_TEMPLATE = (
    '{"error":"$context.error.responseType","message":$context.error.messageString,"requestId":"$context.requestId"}'
)


def binary_media_types(allowed_content_types: Sequence[str]) -> list[str]:
    return [item for item in allowed_content_types if not item.startswith(TEXT_MEDIA_PREFIXES)]


class InferenceApi(Construct):
    """REST API + Lambda for submitting async inferences and fetching their results.

    Guard rails: IAM (SigV4) authorization on every method, a request validator with a
    JSON-schema model, stage throttling, JSON access logs, execution logs without
    payloads (data trace off: inputs may be sensitive), X-Ray on stage and function,
    gateway errors in the handler's JSON error shape.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: InferenceStorage,
        settings: ApiConfig,
        endpoint_name: str,
        hosting_mode: str,
        default_invocation_timeout_seconds: int,
        default_request_ttl_seconds: int,
        log_retention_days: int,
        api_name: str | None = None,
        service_name: str = DEFAULT_SERVICE_NAME,
        retain_logs: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        data_key = storage.key
        # The log groups reuse the data key (no extra key to pay for): request ids and
        # callers in the logs deserve the same protection as the requests themselves.
        allow_cloudwatch_logs(data_key)

        handler = handler_function(
            self,
            "Handler",
            handler=API_HANDLER,
            description="Client API of the async inference endpoint",
            role_description="Client API Lambda: store requests, start async inferences, read results",
            memory_size_mb=settings.memory_size_mb,
            # Never below the stage burst limit (ApiConfig.lambda_reserved_concurrency).
            reserved_concurrency=settings.lambda_reserved_concurrency,
            timeout=LAMBDA_TIMEOUT,
            log_group=encrypted_log_group(
                self, "HandlerLogs", retention_days=log_retention_days, key=data_key, retain=retain_logs
            ),
            environment=handler_environment(
                input_bucket=storage.input_bucket.bucket_name,
                output_bucket=storage.output_bucket.bucket_name,
                failure_bucket=storage.failure_bucket.bucket_name,
                endpoint_name=endpoint_name,
                hosting_mode=hosting_mode,
                default_invocation_timeout_seconds=default_invocation_timeout_seconds,
                default_request_ttl_seconds=default_request_ttl_seconds,
                status_retry_after_seconds=settings.status_retry_after_seconds,
                service_name=service_name,
                metrics_namespace=METRICS_NAMESPACE,
                inline_result_max_bytes=settings.inline_result_max_bytes,
                max_request_bytes=settings.max_request_bytes,
                max_upload_bytes=settings.max_upload_bytes,
                allowed_content_types=settings.allowed_content_types,
            ),
        )
        self.function = handler.function
        self.role = handler.role

        self.access_logs = encrypted_log_group(
            self, "AccessLogs", retention_days=log_retention_days, key=data_key, retain=retain_logs
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            # Per environment: API Gateway metrics (and alarms) are keyed by ApiName, so two
            # environments in one account with the default name "RestApi" would blend.
            rest_api_name=api_name,
            description="Submit, track and fetch async inferences",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=binary_media_types(settings.allowed_content_types),
            # Execution logging needs the account-level API Gateway CloudWatch role; see docs/api.md.
            cloud_watch_role=settings.manage_account_cloudwatch_role,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage_name,
                throttling_rate_limit=settings.throttling_rate_limit,
                throttling_burst_limit=settings.throttling_burst_limit,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        # RestApi adds an "Endpoint" output on its own; the stack exports the URL once, as ApiUrl.
        self.rest_api.node.try_remove_child("Endpoint")
        self._gateway_responses()
        self._routes(api_key_required=settings.usage_plan is not None)
        if settings.usage_plan is not None:
            self._usage_plan(settings.usage_plan)

    # ------------------------------------------------------------------ API
    def _gateway_responses(self) -> None:
        """Answers API Gateway gives itself (auth failures, throttling, too large) in our JSON shape."""
        template = {"application/json": GATEWAY_ERROR_TEMPLATE}
        self.rest_api.add_gateway_response("Default4xx", type=apigw.ResponseType.DEFAULT_4_XX, templates=template)
        self.rest_api.add_gateway_response("Default5xx", type=apigw.ResponseType.DEFAULT_5_XX, templates=template)
        # Both are 429 with a Retry-After for the client: stage throttling clears within a second; a
        # usage plan's quota only when its period (a DAY at the shortest) rolls over, so retry hourly.
        for construct_id, response_type, retry_after_seconds in (
            ("Throttled", apigw.ResponseType.THROTTLED, 1),
            ("QuotaExceeded", apigw.ResponseType.QUOTA_EXCEEDED, 3600),
        ):
            self.rest_api.add_gateway_response(
                construct_id,
                type=response_type,
                status_code="429",
                templates=template,
                # A static header value is a quoted literal in API Gateway's mapping syntax.
                response_headers={"Retry-After": f"'{retry_after_seconds}'"},
            )

    def _routes(self, *, api_key_required: bool) -> None:
        api = self.rest_api
        integration = apigw.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False)
        params_only = api.add_request_validator(
            "ParametersValidator", validate_request_body=False, validate_request_parameters=True
        )
        body_and_params = api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        upload_model = api.add_model(
            "UploadRequestModel",
            content_type="application/json",
            schema=json_schema(schemas.UPLOAD_REQUEST),
            description="Body of POST /uploads",
        )
        # Declared (not required) so they are part of the API's contract and its docs.
        optional_headers = {
            "method.request.header.Content-Type": False,
            "method.request.header.Accept": False,
            "method.request.header.Idempotency-Key": False,
            "method.request.header.X-Invocation-Timeout-Seconds": False,
            "method.request.header.X-Request-TTL-Seconds": False,
            "method.request.header.X-Amzn-SageMaker-Target-Model": False,
            "method.request.header.X-Callback-Url": False,
            "method.request.querystring.model": False,
        }

        # Resources and methods from the routes the handler serves (api_handler/contract.py), all
        # to the one proxy integration and, with a usage plan, all behind an API key.
        def add_route(
            route: Route,
            validator: apigw.IRequestValidator,
            *,
            request_parameters: Mapping[str, bool] | None = None,
            request_models: Mapping[str, apigw.IModel] | None = None,
        ) -> None:
            api.root.resource_for_path(route.path).add_method(
                route.method,
                integration,
                request_validator=validator,
                request_parameters=request_parameters,
                request_models=request_models,
                api_key_required=api_key_required,
            )

        # The body of POST /invocations is the model's own input: any document of an
        # allowed type, so there is no body model; the handler checks type and size.
        add_route(SUBMIT, params_only, request_parameters=optional_headers)
        add_route(STATUS, params_only, request_parameters={"method.request.path.inference_id": True})
        # The same submit for a named model (api_handler/async_api/model_name.py): TargetModel on a
        # multi-model endpoint, custom attribute model=<name> otherwise. POST /invocations takes the
        # name as ?model= or X-Amzn-SageMaker-Target-Model too.
        add_route(
            SUBMIT_TO_MODEL,
            params_only,
            request_parameters={**optional_headers, "method.request.path.model_name": True},
        )
        add_route(UPLOAD, body_and_params, request_models={"application/json": upload_model})

    def _usage_plan(self, plan: UsagePlanConfig) -> None:
        usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="Per-client throttling and quota",
            throttle=apigw.ThrottleSettings(rate_limit=plan.rate_limit, burst_limit=plan.burst_limit),
            quota=apigw.QuotaSettings(limit=plan.quota_requests, period=apigw.Period[plan.quota_period]),
        )
        usage_plan.add_api_stage(stage=self.rest_api.deployment_stage)
        self.api_keys: dict[str, apigw.IApiKey] = {}
        for client in plan.clients:
            # No fixed key name or value: API Gateway generates both; clients fetch theirs
            # with `aws apigateway get-api-key --include-value`.
            key = self.rest_api.add_api_key(f"Key-{client}", description=f"API key of client {client}")
            usage_plan.add_api_key(key)
            self.api_keys[client] = key

    @property
    def url(self) -> str:
        return self.rest_api.url


def json_schema(document: Mapping[str, Any]) -> apigw.JsonSchema:
    """schemas.py's plain draft-04 dicts as CDK JsonSchema (the subset they use)."""
    types = {"object": apigw.JsonSchemaType.OBJECT, "string": apigw.JsonSchemaType.STRING}
    supported = {
        "$schema",
        "title",
        "description",
        "type",
        "required",
        "additionalProperties",
        "properties",
        "minLength",
        "maxLength",
        "pattern",
    }
    unknown = set(document) - supported
    if unknown:
        raise ValueError(f"json_schema does not translate {sorted(unknown)}; extend it")
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4 if "$schema" in document else None,
        title=document.get("title"),
        description=document.get("description"),
        type=types[document["type"]],
        required=document.get("required"),
        additional_properties=document.get("additionalProperties"),
        properties={name: json_schema(value) for name, value in document["properties"].items()}
        if "properties" in document
        else None,
        min_length=document.get("minLength"),
        max_length=document.get("maxLength"),
        pattern=document.get("pattern"),
    )
