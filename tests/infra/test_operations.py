"""Alarms, dashboard, deployment guardrails and the instance-type change procedure."""

from __future__ import annotations

import json

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk.assertions import Match, Template

import app as cdk_app
from api_handler.contract import API_HANDLER
from app_config import ConfigError, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS
from devtools.aws_contract.documented_facts import PUBLISHED_DIMENSIONS
from inference_constructs.alarms import rollback_alarm_names
from tests.infra.conftest import ASYNC_ENVIRONMENTS, cdk_context

ALARM_DESCRIPTION_MAX = (
    botocore.session.get_session()
    .get_service_model("cloudwatch")
    .operation_model("PutMetricAlarm")
    .input_shape.members["AlarmDescription"]
    .metadata["max"]
)

ENDPOINT = {"Fn::GetAtt": [Match.string_like_regexp("^InferenceEndpoint"), "EndpointName"]}


def _alarm_topic(template: Template) -> str:
    [topic] = [lid for lid in template.find_resources("AWS::SNS::Topic") if lid.startswith("AlarmsTopic")]
    return topic


def _endpoint_alarm(template: Template, metric: str) -> dict:
    found = [
        a["Properties"]
        for lid, a in template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric}}).items()
        if lid.startswith("Alarms")
    ]
    assert len(found) == 1, f"{metric}: {len(found)} operations alarms"
    return found[0]


def _expected(env_name: str) -> dict[str, tuple]:
    ops = load_environment(env_name).operations
    n = ops.failures_per_5_minutes
    return {
        # metric: (statistic, period, threshold, comparison, periods, missing data)
        "ApproximateAgeOfOldestRequest": (
            "Maximum",
            60,
            ops.max_request_age_seconds,
            "GreaterThanThreshold",
            5,
            "notBreaching",
        ),
        "HasBacklogWithoutCapacity": (
            "Minimum",
            60,
            1,
            "GreaterThanOrEqualToThreshold",
            ops.expected_cold_start_minutes + 5,
            "notBreaching",
        ),
        "InvocationFailures": ("Sum", 300, n, "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
        "Invocation5XXErrors": ("Sum", 300, n, "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
        "ExpiredRequests": ("Sum", 300, 0, "GreaterThanThreshold", 1, "notBreaching"),
        "RequestDownloadFailures": ("Sum", 300, 0, "GreaterThanThreshold", 1, "notBreaching"),
        "ResponseUploadFailures": ("Sum", 300, 0, "GreaterThanThreshold", 1, "notBreaching"),
        "NotificationFailures": ("Sum", 300, 0, "GreaterThanThreshold", 1, "notBreaching"),
    }


@pytest.mark.parametrize("env_name", ASYNC_ENVIRONMENTS)
@pytest.mark.parametrize("metric", sorted(_expected("dev")))
def test_endpoint_alarm(template: Template, env_name: str, metric: str) -> None:
    statistic, period, threshold, comparison, periods, missing = _expected(env_name)[metric]
    alarm = _endpoint_alarm(template, metric)
    topic = {"Ref": _alarm_topic(template)}
    assert alarm["Namespace"] == "AWS/SageMaker"
    # Exactly the dimension set the async-inference-monitor page says SageMaker publishes the
    # metric with (queue metrics: EndpointName; per-variant ones: EndpointName + VariantName).
    published = PUBLISHED_DIMENSIONS[("AWS/SageMaker", metric)]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert set(dimensions) == published
    assert json.dumps(dimensions["EndpointName"]) == json.dumps(template.to_json()["Outputs"]["EndpointName"]["Value"])
    if "VariantName" in published:
        assert dimensions["VariantName"] == "AllTraffic"
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == (statistic, period, threshold)
    assert (alarm["ComparisonOperator"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        comparison,
        periods,
        periods,
    )
    assert alarm["TreatMissingData"] == missing
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    # The on-call reader's line: present, and within PutMetricAlarm's AlarmDescription limit
    # (botocore's cloudwatch model; CloudFormation fails the deploy beyond it).
    assert 0 < len(alarm["AlarmDescription"]) <= ALARM_DESCRIPTION_MAX


def test_alarm_topic_is_encrypted_and_usable_by_cloudwatch(template: Template, env_name: str) -> None:
    [key] = [lid for lid in template.find_resources("AWS::KMS::Key") if lid.startswith("AlarmsTopicKey")]
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            },
        },
    )
    # The topic policy replaces SNS's default policy: it must admit CloudWatch itself.
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": _alarm_topic(template)}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        )
                    ]
                )
            },
        },
    )
    email = load_environment(env_name).alarm_email
    assert email, "someone must be told: every shipped environment subscribes an address"
    subscriptions = template.find_resources(
        "AWS::SNS::Subscription", {"Properties": {"TopicArn": {"Ref": _alarm_topic(template)}}}
    )
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == [email]


def test_alarm_email_subscribes_to_the_alarm_topic(tmp_path) -> None:
    from stacks.async_inference_stack import AsyncInferenceStack
    from tests.infra.conftest import ROOT

    config = parse_environment({**ENVIRONMENTS["dev"], "alarm_email": "oncall@example.com"})
    stack = AsyncInferenceStack(
        cdk.App(outdir=str(tmp_path), context=cdk_context()),
        "Mail",
        config=config,
        container_dir=ROOT / "container",
        build_dir=tmp_path / "build",
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": {"Ref": _alarm_topic(template)}},
    )


@pytest.mark.parametrize("env_name", ASYNC_ENVIRONMENTS)
def test_deployment_guardrails_roll_back_on_the_failure_alarms(template: Template, env_name: str) -> None:
    deployment = load_environment(env_name).deployment
    names = list(rollback_alarm_names(f"AsyncInference-{env_name}").values())
    # WaitIntervalInSeconds for every type: the SageMaker API requires it (TrafficRoutingConfig).
    routing: dict = {"Type": deployment.strategy.upper(), "WaitIntervalInSeconds": deployment.wait_interval_seconds}
    if deployment.strategy == "canary":
        routing |= {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": deployment.step_percent}}
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "RetainAllVariantProperties": True,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": routing,
                    "TerminationWaitInSeconds": deployment.termination_wait_seconds,
                    "MaximumExecutionTimeoutInSeconds": deployment.maximum_execution_timeout_seconds,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in names]},
            },
        },
    )
    # The names the endpoint watches are alarms that exist, on the endpoint's failure metrics.
    existing = {
        a["Properties"]["AlarmName"]: a["Properties"]["MetricName"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if "AlarmName" in a["Properties"]
    }
    assert {existing[n] for n in names} == {"InvocationFailures", "Invocation5XXErrors"}
    # SageMaker reads them with the execution role: DescribeAlarms on exactly these alarms.
    [statement] = [
        st
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st["Action"] == "cloudwatch:DescribeAlarms"
    ]
    resources = json.dumps(statement["Resource"])
    assert statement["Effect"] == "Allow" and all(f":alarm:{n}" in resources for n in names) and "*" not in resources


def test_prod_uses_a_canary_and_dev_all_at_once() -> None:
    assert load_environment("prod").deployment.strategy == "canary"
    assert load_environment("dev").deployment.strategy == "all_at_once"


def test_canary_needs_room_for_two_instances() -> None:
    raw = {**ENVIRONMENTS["dev"], "deployment": {"strategy": "canary"}}
    with pytest.raises(ConfigError, match=r"needs scaling.max_capacity >= 2 \(is 1\)"):
        parse_environment(raw)


def _dashboard_body(template: Template) -> str:
    [dashboard] = template.find_resources("AWS::CloudWatch::Dashboard").values()
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def _assert_dashboard_shows(template: Template, metrics: tuple[str, ...]) -> str:
    """Each metric stands in the dashboard as a whole quoted name; returns the body for further checks.

    The body is a JSON document inside a CloudFormation string, so its quotes come escaped.
    """
    body = _dashboard_body(template)
    missing = [metric for metric in metrics if f'\\"{metric}\\"' not in body]
    assert missing == [], missing
    return body


@pytest.mark.parametrize("env_name", ASYNC_ENVIRONMENTS)
def test_dashboard_shows_queue_capacity_failures_and_latency(template: Template) -> None:
    queue = ("ApproximateBacklogSize", "ApproximateAgeOfOldestRequest")
    capacity = ("HasBacklogWithoutCapacity", "ApproximateBacklogSizePerInstance")
    failures = ("InvocationFailures", "Invocation5XXErrors", "ExpiredRequests")
    latency = ("TotalProcessingTime", "ModelLatency")
    body = _assert_dashboard_shows(template, queue + capacity + failures + latency)
    assert "backlog / perInstance" in body
    assert "InferenceEndpoint" in body  # dimensions reference the generated endpoint name


def test_pausing_autoscaling_removes_only_the_scaling_resources(tmp_path) -> None:
    """Step 1 of an instance-type change: the scalable target must be gone before the variant changes."""
    app = cdk.App(outdir=str(tmp_path), context=cdk_context())
    [stack] = cdk_app.build_app(app, ["prod"], pause_autoscaling=True)
    template = Template.from_stack(stack)
    assert not template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    assert not template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"RetainAllVariantProperties": True})
    _endpoint_alarm(template, "HasBacklogWithoutCapacity")  # operations alarms stay


def test_autoscaling_context_rejects_unknown_values() -> None:
    app = cdk.App(context={"autoscaling": "off"})
    with pytest.raises(ConfigError, match="expected 'on' \\(default\\) or 'paused'"):
        cdk_app.autoscaling_paused(app)


def test_api_alarms_watch_this_api_and_handler(template: Template, env_name: str) -> None:
    ops = load_environment(env_name).operations
    topic = {"Ref": _alarm_topic(template)}
    [api] = template.find_resources("AWS::ApiGateway::RestApi").values()
    [latency_alarm] = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "Latency", "Namespace": "AWS/ApiGateway"}}
    ).values()
    props = latency_alarm["Properties"]
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]}["ApiName"] == api["Properties"]["Name"]
    assert (props["ExtendedStatistic"], props["Threshold"], props["TreatMissingData"]) == (
        "p99",
        ops.api_p99_latency_ms,
        "notBreaching",
    )
    assert props["AlarmActions"] == [topic]
    # The 5xx alarm is a percentage of requests, not a raw count.
    rate = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if "100 * errors / requests" in json.dumps(a["Properties"].get("Metrics", []))
    ]
    assert len(rate) == 1 and rate[0]["Threshold"] == ops.api_5xx_percent and rate[0]["AlarmActions"] == [topic]
    functions = template.find_resources("AWS::Lambda::Function")
    for metric in ("Errors", "Throttles"):
        [handler_alarm] = template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric, "Namespace": "AWS/Lambda"}}
        ).values()
        [dimension] = handler_alarm["Properties"]["Dimensions"]
        assert dimension["Name"] == "FunctionName"
        watched = functions[dimension["Value"]["Ref"]]["Properties"]
        assert watched["Handler"] == API_HANDLER, watched["Handler"]  # the API's function, not the notifier
        assert handler_alarm["Properties"]["Threshold"] == 0 and handler_alarm["Properties"]["AlarmActions"] == [topic]


def test_dashboard_shows_the_api_and_handler(template: Template) -> None:
    api = ("5XXError", "4XXError", "Latency", "IntegrationLatency")
    handler = ("Duration", "Errors", "Throttles")
    # The handler's own metrics, published with Powertools.
    submissions = ("InferencesSubmitted", "IdempotentReplays", "ServerErrors")
    _assert_dashboard_shows(template, api + handler + submissions)
