"""Completion callbacks as synthesized: topics -> queue -> notifier, dead-letter queue and its
alarm, the generated signing secret, and the notifier's exact permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from api_handler.async_api.settings import ENVIRONMENT as API_ENVIRONMENT
from api_handler.async_api.settings import Settings
from api_handler.notifier.schedule import max_attempts
from api_handler.notifier.settings import ENVIRONMENT as NOTIFIER_ENVIRONMENT
from api_handler.notifier.settings import NotifierSettings
from app_config import load_environment
from tests import iam
from tests.infra.conftest import Synthesized

ASYNC_ENVS = ("dev", "prod")
SYNC_ENVS = ("example-realtime", "example-serverless", "example-multimodel")


def _one(template: Template, kind: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind} matching {props}, found {sorted(found)}"
    return next(iter(found.items()))


def _function(template: Template, handler_suffix: str) -> tuple[str, dict[str, Any]]:
    found = {
        k: v
        for k, v in template.find_resources("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"].endswith(handler_suffix)
    }
    assert len(found) == 1, f"expected one function with a handler ending {handler_suffix}, found {sorted(found)}"
    return next(iter(found.items()))


def _notifier(template: Template) -> tuple[str, dict[str, Any]]:
    return _function(template, "notifier.handler.handler")


def _resolved(value: Any) -> str:
    """A template value with CloudFormation intrinsics replaced by a plausible string."""
    return value if isinstance(value, str) else "placeholder-value"


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_both_topics_feed_the_queue_raw(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    queue_id, _ = _one(template, "AWS::SQS::Queue", {"RedrivePolicy": Match.any_value()})
    subscriptions = template.find_resources("AWS::SNS::Subscription", {"Properties": {"Protocol": "sqs"}})
    topics = sorted(
        json.dumps(s["Properties"]["TopicArn"])
        for s in subscriptions.values()
        if s["Properties"]["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    )
    success = json.dumps(
        {
            "Ref": synthesized.stacks[env].resolve(
                synthesized.stacks[env].node.find_child("Notifications").success_topic.topic_arn
            )["Ref"]
        }
    )
    assert len(topics) == 2 and success in topics
    for sub in subscriptions.values():
        assert sub["Properties"]["RawMessageDelivery"] is True


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_queue_dead_letters_and_the_alarm_watches_it(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    config = load_environment(env).callbacks
    dlq = Capture()
    _, queue = _one(
        template,
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                "maxReceiveCount": Match.any_value(),
            },
            "KmsMasterKeyId": Match.any_value(),
        },
    )
    attempts = max_attempts(
        base=config.retry_base_seconds,
        max_delay=config.retry_max_delay_seconds,
        window=config.retry_window_hours * 3600,
    )
    # SQS's own redrive must never cut the schedule short: only the notifier ends it at the window.
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] > attempts
    # Lambda's rule for SQS sources: visibility >= 6 x function timeout.
    _, function = _notifier(template)
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]
    dlq_props = template.to_json()["Resources"][dlq.as_string()]["Properties"]
    assert dlq_props["MessageRetentionPeriod"] == 14 * 86400 and "KmsMasterKeyId" in dlq_props
    alarm_topic = synthesized.stacks[env].resolve(synthesized.stacks[env].node.find_child("Alarms").topic.topic_arn)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq.as_string(), "QueueName"]}}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "AlarmActions": [alarm_topic],
        },
    )


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_event_source_reports_partial_batch_failures(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    notifier_id, function = _notifier(template)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": notifier_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": load_environment(env).callbacks.max_concurrency},
        },
    )
    assert function["Properties"]["ReservedConcurrentExecutions"] == load_environment(env).callbacks.max_concurrency


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_notifier_environment_is_what_its_settings_parse(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    _, function = _notifier(template)
    variables = function["Properties"]["Environment"]["Variables"]
    known = set(NOTIFIER_ENVIRONMENT) | set(API_ENVIRONMENT)
    assert {n for n in variables if not n.startswith("POWERTOOLS_")} <= known
    plain = {name: _resolved(value) for name, value in variables.items()}
    plain.update({"INPUT_BUCKET": "input-bucket", "OUTPUT_BUCKET": "output-bucket", "FAILURE_BUCKET": "failure-bucket"})
    settings = NotifierSettings.from_environment(plain)
    Settings.from_environment(plain)
    config = load_environment(env).callbacks
    assert settings.retry_window_seconds == config.retry_window_hours * 3600
    assert settings.max_payload_bytes == config.max_payload_bytes
    assert settings.allow_loopback_http is False


@pytest.mark.parametrize("env", (*ASYNC_ENVS, *SYNC_ENVS))
def test_loopback_callbacks_are_never_deployed(synthesized: Synthesized, env: str):
    for function in synthesized.templates[env].find_resources("AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "CALLBACK_ALLOW_LOOPBACK_HTTP" not in variables


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_api_accepts_callbacks_only_with_a_notifier(synthesized: Synthesized, env: str):
    _, api = _function(synthesized.templates[env], "app.handler")
    assert api["Properties"]["Environment"]["Variables"]["CALLBACKS_ENABLED"] == "true"


@pytest.mark.parametrize("env", SYNC_ENVS)
def test_no_callbacks_in_sync_modes(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    assert template.find_resources("AWS::SQS::Queue") == {}
    assert template.find_resources("AWS::SecretsManager::Secret") == {}
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "CALLBACKS_ENABLED" not in function["Properties"].get("Environment", {}).get("Variables", {})
    assert "CallbackSecretArn" not in template.to_json().get("Outputs", {})


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_signing_secret_is_generated_never_in_the_template(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    secret_id, secret = _one(template, "AWS::SecretsManager::Secret")
    props = secret["Properties"]
    assert "SecretString" not in props
    assert props["GenerateSecretString"] == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 48}
    assert "KmsKeyId" in props
    template.has_output("CallbackSecretArn", {"Value": {"Ref": secret_id}})


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_notifier_permissions_are_exactly_what_it_does(synthesized: Synthesized, env: str):
    template = synthesized.templates[env]
    _, function = _notifier(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: dict[str, list[Any]] = {}
    for statement in iam.role_statements(template, role_id):
        assert statement["Effect"] == "Allow"
        for action in iam.actions(statement):
            actions.setdefault(action, []).extend(iam.resources(statement))
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    puts = json.dumps(actions["s3:PutObject"])
    assert puts.count("Fn::Join") == 1 and "/requests/*/callback.json" in puts  # its state object, nothing else
    gets = json.dumps(actions["s3:GetObject"])
    assert "/requests/*/receipt.json" in gets and '/requests/*"' not in gets  # not the inputs themselves


def test_notifier_handler_imports_from_its_asset_as_lambda_imports_it(synthesized: Synthesized):
    """Lambda puts the asset root on sys.path and imports the Handler setting's module: do the
    same with the synthesized asset, in a clean interpreter that cannot see the repository."""
    import subprocess
    import sys

    _, function = _notifier(synthesized.templates["dev"])
    handler = function["Properties"]["Handler"]
    asset = synthesized.outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    module, _, name = handler.rpartition(".")
    code = (
        f"import importlib, sys; sys.path[:0] = [{str(asset)!r}]; "
        f"m = importlib.import_module({module!r}); assert callable(getattr(m, {name!r})); print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
        cwd=asset,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith(str(asset))


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_submit_declares_the_callback_header(synthesized: Synthesized, env: str):
    posts = synthesized.templates[env].find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "POST"}})
    declared = [m["Properties"].get("RequestParameters", {}) for m in posts.values()]
    # Optional (False): a submit without a callback is the common case.
    assert any(p.get("method.request.header.X-Callback-Url") is False for p in declared)


@pytest.mark.parametrize("env", ASYNC_ENVS)
def test_dashboard_shows_the_notifiers_counts_under_its_service_dimension(synthesized: Synthesized, env: str):
    _, function = _notifier(synthesized.templates[env])
    variables = function["Properties"]["Environment"]["Variables"]
    (dashboard,) = synthesized.templates[env].find_resources("AWS::CloudWatch::Dashboard").values()
    # The body is an Fn::Join of JSON text and references: join it with a stand-in for each reference.
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "ref" for p in parts))
    rows = [row for widget in body["widgets"] for row in widget.get("properties", {}).get("metrics", [])]
    # Powertools puts POWERTOOLS_SERVICE_NAME in the "service" dimension: the widgets must read that one.
    for name in ("CallbacksDelivered", "CallbackRetries", "CallbacksRefused", "CallbacksDeadLettered"):
        assert [variables["POWERTOOLS_METRICS_NAMESPACE"], name, "service", variables["POWERTOOLS_SERVICE_NAME"]] in [
            row[:4] for row in rows
        ], name
