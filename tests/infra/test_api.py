"""The client API as synthesized: auth, validation, throttling, logs, permissions, contract."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from openapi_spec_validator import validate as validate_openapi

import app as cdk_app
from api_handler.async_api import schemas
from api_handler.async_api.errors import DOCUMENTED_STATUSES
from api_handler.async_api.settings import DEFAULT_ALLOWED_CONTENT_TYPES, ENVIRONMENT, MAX_ASYNC_PAYLOAD_BYTES
from app_config import ConfigError, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS
from app_config.models import ApiConfig
from inference_constructs.handler_function import POWERTOOLS_VERSION, powertools_layer_parameter
from stacks.async_inference_stack import AsyncInferenceStack
from tests import iam
from tests.iam import role_statements
from tests.infra.conftest import cdk_context

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


# ----------------------------------------------------------------------------- helpers
def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)


def logical_id(stack: cdk.Stack, path: str) -> str:
    """Logical id of the CloudFormation resource at `path` (relative to the stack)."""
    construct = stack
    for part in path.split("/"):
        construct = construct.node.find_child(part)
    element = construct.node.default_child or construct  # an L2 or an L1 itself
    return stack.get_logical_id(element)  # type: ignore[arg-type]


def routes(template: Template) -> set[tuple[str, str]]:
    """(path, METHOD) of every API Gateway method, paths rebuilt from the resource tree."""
    tree = resources(template, "AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the RestApi's RootResourceId
            return ""
        node = tree[ref["Ref"]]["Properties"]
        return path_of(node["ParentId"]) + "/" + node["PathPart"]

    found = set()
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = "/" if "Fn::GetAtt" in resource else path_of(resource)
        found.add((path, props["HttpMethod"]))
    return found


def flatten(value: Any) -> str:
    """A resource ARN expression as readable text: {Fn::GetAtt: [X, Arn]} -> '<X.Arn>'."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten(part) for part in parts)
    raise AssertionError(f"unexpected expression {value}")


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    pairs = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Effect", "Action", "Resource", "Condition"}, f"unexpected keys in {statement}"
        # A condition narrows the grant: it is part of what the pair means.
        condition = f" if {json.dumps(statement['Condition'], sort_keys=True)}" if "Condition" in statement else ""
        pairs.update(
            (action, flatten(target) + condition)
            for action in iam.actions(statement)
            for target in iam.resources(statement)
        )
    return pairs


def listing_only(*prefixes: str) -> str:
    """How `grants` writes an s3:ListBucket limited to keys under `prefixes`."""
    return f" if {json.dumps({'StringLike': {'s3:prefix': [f'{p}*' for p in prefixes]}}, sort_keys=True)}"


# ----------------------------------------------------------------------------- auth, validation
def test_every_method_requires_iam_auth_and_has_a_validator(template: Template):
    methods = resources(template, "AWS::ApiGateway::Method")
    assert methods, "the API has no methods"
    for name, method in methods.items():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM", name
        assert "RequestValidatorId" in props, name
        assert props["Integration"]["Type"] == "AWS_PROXY", name


def test_upload_body_is_validated_against_the_handlers_draft04_schema(template: Template):
    [upload] = [
        m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST" and "RequestModels" in m["Properties"]
    ]
    validator = resources(template, "AWS::ApiGateway::RequestValidator")[upload["RequestValidatorId"]["Ref"]]
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    model = resources(template, "AWS::ApiGateway::Model")[upload["RequestModels"]["application/json"]["Ref"]]
    assert model["Properties"]["Schema"] == schemas.UPLOAD_REQUEST
    assert model["Properties"]["Schema"]["$schema"] == "http://json-schema.org/draft-04/schema#"


def test_gateway_errors_use_the_handlers_json_error_shape(template: Template):
    expected = {"DEFAULT_4XX": None, "DEFAULT_5XX": None, "THROTTLED": "429", "QUOTA_EXCEEDED": "429"}
    found = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(found) == set(expected)
    for kind, status in expected.items():
        body = found[kind]["ResponseTemplates"]["application/json"]
        sample = body.replace("$context.error.messageString", '"m"').replace("$context.", "")
        assert set(json.loads(sample)) == {"error", "message", "requestId"}
        assert found[kind].get("StatusCode") == status
    assert found["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


# ----------------------------------------------------------------------------- stage
def test_stage_throttles_logs_and_traces(template: Template, env_name: str):
    config = load_environment(env_name).api
    [stage] = resources(template, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == config.stage_name
    assert props["TracingEnabled"] is True
    [settings] = props["MethodSettings"]
    assert settings == {
        "HttpMethod": "*",
        "ResourcePath": "/*",
        "ThrottlingRateLimit": config.throttling_rate_limit,
        "ThrottlingBurstLimit": config.throttling_burst_limit,
        "LoggingLevel": "INFO",
        "DataTraceEnabled": False,  # no request/response bodies in execution logs
        "MetricsEnabled": True,
    }
    access = props["AccessLogSetting"]
    fields = json.loads(access["Format"])
    assert {"requestId", "ip", "caller", "httpMethod", "resourcePath", "status"} <= set(fields)
    log_group_id = access["DestinationArn"]["Fn::GetAtt"][0]
    retention = resources(template, "AWS::Logs::LogGroup")[log_group_id]["Properties"]["RetentionInDays"]
    assert retention == load_environment(env_name).log_retention_days


def test_execution_logging_has_its_account_role(template: Template):
    template.has_resource_properties(
        "AWS::ApiGateway::Account",
        {"CloudWatchRoleArn": {"Fn::GetAtt": [Match.string_like_regexp("^ApiRestApiCloudWatchRole"), "Arn"]}},
    )


def test_api_url_is_a_stack_output(template: Template):
    outputs = template.find_outputs("ApiUrl")
    joined = json.dumps(outputs["ApiUrl"]["Value"])
    assert "execute-api" in joined and "ApiRestApiDeploymentStage" in joined
    assert not [name for name in template.to_json()["Outputs"] if name.startswith("ApiRestApiEndpoint")]


# ----------------------------------------------------------------------------- Lambda
def assert_handler_importable_from_asset(outdir: Path, function: dict[str, Any]) -> None:
    """Import the function's Handler the way Lambda does: only the staged asset directory on
    sys.path ahead of the libraries (the Powertools layer's, here the venv's)."""
    asset_dir = outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    module, _, name = function["Properties"]["Handler"].rpartition(".")
    probe = (
        "import importlib, pathlib, sys; sys.path.insert(0, sys.argv[1]); "
        "m = importlib.import_module(sys.argv[2]); "
        "assert pathlib.Path(m.__file__).is_relative_to(sys.argv[1]), m.__file__; "
        "assert callable(getattr(m, sys.argv[3]))"
    )
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-B", "-c", probe, str(asset_dir), module, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_function_runtime_layer_and_environment(synthesized, template: Template, env_name: str):
    stack = synthesized.stacks[env_name]
    config = load_environment(env_name)
    function_id = logical_id(stack, "Api/Handler")
    props = resources(template, "AWS::Lambda::Function")[function_id]["Properties"]

    # The newest Python runtime aws-cdk-lib knows (determine_latest_python_runtime lags behind it).
    newest = max(
        (getattr(lambda_.Runtime, name) for name in dir(lambda_.Runtime) if re.fullmatch(r"PYTHON_3_\d+", name)),
        key=lambda runtime: int(runtime.name.removeprefix("python3.")),
    )
    assert props["Runtime"] == newest.name == "python3.14"
    assert_handler_importable_from_asset(synthesized.outdir, resources(template, "AWS::Lambda::Function")[function_id])
    assert props["Timeout"] < 29  # inside API Gateway's integration timeout
    assert props["TracingConfig"] == {"Mode": "Active"}

    [layer] = props["Layers"]
    parameter = template.to_json()["Parameters"][layer["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == f"/aws/service/powertools/python/x86_64/{props['Runtime']}/{POWERTOOLS_VERSION}"

    variables = props["Environment"]["Variables"]
    assert variables["INPUT_BUCKET"] == {"Ref": logical_id(stack, "Storage/Input")}
    assert variables["OUTPUT_BUCKET"] == {"Ref": logical_id(stack, "Storage/Output")}
    assert variables["FAILURE_BUCKET"] == {"Ref": logical_id(stack, "Storage/Failure")}
    assert variables["ENDPOINT_NAME"] == {"Fn::GetAtt": [logical_id(stack, "Inference/Endpoint"), "EndpointName"]}
    assert variables["HOSTING_MODE"] == config.hosting.mode
    assert variables["DEFAULT_INVOCATION_TIMEOUT_SECONDS"] == str(config.invocation_timeout_seconds)
    assert variables["DEFAULT_REQUEST_TTL_SECONDS"] == str(config.request_ttl_seconds)
    assert variables["INLINE_RESULT_MAX_BYTES"] == str(config.api.inline_result_max_bytes)
    # The handler bounds upload policies by it; never above SageMaker's async payload limit.
    assert variables["MAX_UPLOAD_BYTES"] == str(config.api.max_upload_bytes)
    assert 1 <= int(variables["MAX_UPLOAD_BYTES"]) <= MAX_ASYNC_PAYLOAD_BYTES
    # Every variable set is one the handler reads (or a Powertools one): the contract cannot drift.
    assert {name for name in variables if not name.startswith("POWERTOOLS_")} <= set(ENVIRONMENT)


def test_powertools_layer_matches_the_version_the_tests_pin():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["aws-lambda-powertools"] == POWERTOOLS_VERSION
    assert powertools_layer_parameter().endswith(f"/{POWERTOOLS_VERSION}")


def test_lambda_asset_holds_first_party_code_only(synthesized, template: Template, env_name: str):
    stack = synthesized.stacks[env_name]
    function_id = logical_id(stack, "Api/Handler")
    key = resources(template, "AWS::Lambda::Function")[function_id]["Properties"]["Code"]["S3Key"]
    asset = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    # The package under the asset root, so Lambda imports it by the name the tests use.
    assert {"api_handler/app.py", "api_handler/contract.py", "api_handler/async_api/service.py"} <= set(files)
    assert all(f.startswith("api_handler/") and f.endswith(".py") and "__pycache__" not in f for f in files), files


def test_lambda_has_exactly_the_permissions_it_uses(synthesized, template: Template, env_name: str):
    stack = synthesized.stacks[env_name]
    role_id = logical_id(stack, "Api/HandlerRole")
    role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    bucket = {name: logical_id(stack, f"Storage/{name}") for name in ("Input", "Output", "Failure")}
    key = logical_id(stack, "Storage/DataKey")
    endpoint = logical_id(stack, "Inference/Endpoint")
    logs = logical_id(stack, "Api/HandlerLogs")
    requests, uploads = f"<{bucket['Input']}.Arn>/requests/*", f"<{bucket['Input']}.Arn>/uploads/*"
    outputs, failures = f"<{bucket['Output']}.Arn>/responses/*", f"<{bucket['Failure']}.Arn>/failures/*"
    # Per hosting mode: async starts inferences with InvokeEndpointAsync (SageMaker writes the
    # results); realtime/serverless call InvokeEndpoint and write the answer themselves.
    if load_environment(env_name).hosting.mode == "async":
        by_mode = {("sagemaker:InvokeEndpointAsync", f"<{endpoint}.EndpointArn>")}
    else:
        by_mode = {
            ("sagemaker:InvokeEndpoint", f"<{endpoint}.EndpointArn>"),
            ("s3:PutObject", outputs),
            ("s3:PutObject", failures),
        }
    assert grants(role_statements(template, role_id)) == by_mode | {
        ("logs:CreateLogStream", f"<{logs}.Arn>"),
        ("logs:PutLogEvents", f"<{logs}.Arn>"),
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
        ("s3:PutObject", requests),
        ("s3:PutObject", uploads),
        ("s3:GetObject", requests),
        ("s3:GetObject", uploads),
        # A spent upload is deleted; a refused upload's claim and copy are released.
        ("s3:DeleteObject", requests),
        ("s3:DeleteObject", uploads),
        ("s3:GetObject", f"<{bucket['Output']}.Arn>/responses/*"),
        ("s3:GetObject", f"<{bucket['Failure']}.Arn>/failures/*"),
        # Listing (which S3 needs to answer 404 for a missing key) only under the API's prefixes.
        ("s3:ListBucket", f"<{bucket['Input']}.Arn>" + listing_only("requests/", "uploads/")),
        ("s3:ListBucket", f"<{bucket['Output']}.Arn>" + listing_only("responses/")),
        ("s3:ListBucket", f"<{bucket['Failure']}.Arn>" + listing_only("failures/")),
        ("kms:Decrypt", f"<{key}.Arn>"),
        ("kms:GenerateDataKey", f"<{key}.Arn>"),
    }


def test_api_gateway_may_invoke_only_this_function_from_this_api(synthesized, template: Template, env_name: str):
    stack = synthesized.stacks[env_name]
    function_id = logical_id(stack, "Api/Handler")
    permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert len(permissions) == len(routes(template))  # one per method; no test-invoke permissions
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = flatten(permission["SourceArn"])
        assert "/test-invoke-stage/" not in source
        assert f"<{logical_id(stack, 'Api/RestApi')}>" in source


# ----------------------------------------------------------------------------- OpenAPI contract
def test_openapi_document_is_valid():
    validate_openapi(OPENAPI)


def test_openapi_describes_exactly_the_deployed_routes(template: Template):
    documented = {
        (path, method.upper()) for path, item in OPENAPI["paths"].items() for method in item if method in HTTP_METHODS
    }
    assert documented == routes(template)


def test_openapi_statuses_are_the_handlers_plus_the_gateways():
    documented = {
        int(status)
        for item in OPENAPI["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
    }
    assert documented == set(DOCUMENTED_STATUSES) | {403}  # 403: SigV4/IAM refusals by API Gateway


def test_openapi_upload_schema_is_the_validated_one():
    documented = OPENAPI["components"]["schemas"]["UploadRequest"]
    deployed = schemas.UPLOAD_REQUEST
    assert documented["required"] == deployed["required"]
    assert documented["additionalProperties"] == deployed["additionalProperties"]
    for name, rules in deployed["properties"].items():
        assert {k: v for k, v in rules.items() if k != "description"} == documented["properties"][name]
    reference = OPENAPI["components"]["schemas"]["UploadReference"]
    assert reference["properties"]["uploadId"]["pattern"] == schemas.UPLOAD_ID_PATTERN


def test_openapi_documents_the_override_headers_with_sagemakers_limits():
    parameters = OPENAPI["components"]["parameters"]
    assert parameters["InvocationTimeout"]["name"] == "X-Invocation-Timeout-Seconds"
    assert (
        parameters["InvocationTimeout"]["schema"]["minimum"],
        parameters["InvocationTimeout"]["schema"]["maximum"],
    ) == (1, 3600)
    assert parameters["RequestTtl"]["name"] == "X-Request-TTL-Seconds"
    assert (parameters["RequestTtl"]["schema"]["minimum"], parameters["RequestTtl"]["schema"]["maximum"]) == (60, 21600)


# ----------------------------------------------------------------------------- config
def test_config_default_content_types_are_the_handlers():
    assert ApiConfig().allowed_content_types == DEFAULT_ALLOWED_CONTENT_TYPES


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ({"usage_plan": {"clients": ["a"], "rate_limit": 100}}, "must not exceed the stage"),
        ({"usage_plan": {"clients": ["bad name"]}}, "letters, digits"),
        ({"usage_plan": {"clients": []}}, "clients"),
        ({"allowed_content_types": ["json"]}, "not a lower-case media type"),
        ({"stage_name": "v-1"}, "stage_name"),
        ({"max_request_bytes": 10_000_000}, "max_request_bytes"),
    ],
)
def test_bad_api_config_fails_naming_the_field(api, message):
    raw = {**ENVIRONMENTS["dev"], "api": api}
    with pytest.raises(ConfigError, match=message):
        parse_environment(raw)


# ----------------------------------------------------------------------------- usage plan variant
def test_shipped_environments_have_no_usage_plan(template: Template):
    assert resources(template, "AWS::ApiGateway::UsagePlan") == {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        assert method["Properties"].get("ApiKeyRequired") in (None, False)


@pytest.fixture(scope="module")
def usage_plan_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """dev with a usage plan: synthesized once, with cdk-nag, like the real app."""
    raw = {
        **ENVIRONMENTS["dev"],
        "api": {
            "usage_plan": {
                "clients": ["team-a", "team-b"],
                "rate_limit": 5,
                "burst_limit": 10,
                "quota_requests": 1000,
                "quota_period": "WEEK",
            }
        },
    }
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("usage-plan")), context=cdk_context())
    stack = AsyncInferenceStack(
        app,
        "AsyncInference-plan",
        config=parse_environment(raw),
        container_dir=cdk_app.ROOT / "container",
        build_dir=cdk_app.ROOT / ".build" / "models",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    return Template.from_stack(stack)


def test_usage_plan_meters_each_client_with_its_own_key(usage_plan_template: Template):
    template = usage_plan_template
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 5, "BurstLimit": 10},
            "Quota": {"Limit": 1000, "Period": "WEEK"},
            "ApiStages": [
                Match.object_like({"Stage": {"Ref": Match.string_like_regexp("^ApiRestApiDeploymentStage")}})
            ],
        },
    )
    keys = resources(template, "AWS::ApiGateway::ApiKey")
    assert len(keys) == 2
    for key in keys.values():
        assert "Name" not in key["Properties"] and "Value" not in key["Properties"]  # generated, never in the template
    assert len(resources(template, "AWS::ApiGateway::UsagePlanKey")) == 2
    for method in resources(template, "AWS::ApiGateway::Method").values():
        assert method["Properties"]["ApiKeyRequired"] is True
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"  # keys meter, IAM authenticates
