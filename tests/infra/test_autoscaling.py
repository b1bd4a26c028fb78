"""Autoscaling: metrics that really receive data, scale from zero, scale-in only when idle."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from app_config import load_environment
from tests.infra.conftest import ASYNC_ENVIRONMENTS

ENDPOINT_DIMENSION = [
    {"Name": "EndpointName", "Value": {"Fn::GetAtt": [Match.string_like_regexp("^InferenceEndpoint"), "EndpointName"]}}
]


@pytest.fixture(params=ASYNC_ENVIRONMENTS)
def env_name(request: pytest.FixtureRequest) -> str:
    """This module is about async endpoints' scaling: the async environments only
    (real-time and serverless scaling: tests/infra/test_hosting_modes.py)."""
    return request.param


def _policy_id(template: Template, prefix: str) -> str:
    [policy_id] = [
        lid for lid in template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy") if lid.startswith(prefix)
    ]
    return policy_id


def test_scalable_target_is_the_variant_with_min_zero(template: Template, env_name: str) -> None:
    scaling = load_environment(env_name).scaling
    assert scaling.min_capacity == 0
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 0,
            "MaxCapacity": scaling.max_capacity,
            "ResourceId": {
                "Fn::Join": [
                    "",
                    [
                        "endpoint/",
                        {"Fn::GetAtt": [Match.string_like_regexp("^InferenceEndpoint"), "EndpointName"]},
                        "/variant/AllTraffic",
                    ],
                ]
            },
        },
    )


def _query(metric: str, stat: str, query_id: str) -> dict:
    return {
        "Id": query_id,
        "ReturnData": False,
        "MetricStat": {
            "Stat": stat,
            "Metric": {"MetricName": metric, "Namespace": "AWS/SageMaker", "Dimensions": ENDPOINT_DIMENSION},
        },
    }


def test_target_tracking_uses_the_configured_async_metric(template: Template, env_name: str) -> None:
    scaling = load_environment(env_name).scaling
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": scaling.target_value,
                "DisableScaleIn": True,
                "CustomizedMetricSpecification": {
                    "Metrics": [
                        _query(
                            scaling.metric,
                            "Maximum" if scaling.metric == "ApproximateAgeOfOldestRequest" else "Average",
                            "tracked",
                        ),
                        _query("HasBacklogWithoutCapacity", "Maximum", "nocapacity"),
                        # Blank while no instance serves: a cold start is not a reason to add instances.
                        Match.object_like(
                            {"Id": "value", "Expression": "IF(FILL(nocapacity, 0) > 0, 0, tracked)", "ReturnData": True}
                        ),
                    ]
                },
            },
        },
    )


def test_scale_out_from_zero_on_backlog_without_capacity(template: Template) -> None:
    policy_id = _policy_id(template, "ScalingScaleOutFromZero")
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": {
                # Set 1, do not add 1: the policy is applied again on every breach of a cold start.
                "AdjustmentType": "ExactCapacity",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "HasBacklogWithoutCapacity",
            "Namespace": "AWS/SageMaker",
            "Dimensions": ENDPOINT_DIMENSION,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": policy_id}],
        },
    )


def test_backlog_without_capacity_never_drives_scale_in(template: Template) -> None:
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "HasBacklogWithoutCapacity"}}
    )
    scale_in = {_policy_id(template, "ScalingScaleInWhenIdle")}
    for alarm in alarms.values():
        actions = alarm["Properties"].get("AlarmActions", []) + alarm["Properties"].get("OKActions", [])
        assert not ({a.get("Ref") for a in actions if isinstance(a, dict)} & scale_in)


def test_scale_in_only_when_nothing_is_queued_or_in_flight(template: Template, env_name: str) -> None:
    scaling = load_environment(env_name).scaling
    policy_id = _policy_id(template, "ScalingScaleInWhenIdle")
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ExactCapacity",
                "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": scaling.min_capacity}],
            }
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            # Backlog counts requests being processed as well as queued ones.
            "MetricName": "ApproximateBacklogSize",
            "Namespace": "AWS/SageMaker",
            "Dimensions": ENDPOINT_DIMENSION,
            "Statistic": "Maximum",
            "Threshold": 0.5,
            "ComparisonOperator": "LessThanThreshold",
            "Period": 60,
            "EvaluationPeriods": scaling.idle_minutes_before_scale_in,
            "DatapointsToAlarm": scaling.idle_minutes_before_scale_in,
            "TreatMissingData": "ignore",
            "AlarmActions": [{"Ref": policy_id}],
        },
    )


# Metrics SageMaker publishes for async endpoints, with EndpointName as the only dimension.
ASYNC_METRICS = {
    "ApproximateBacklogSize",
    "ApproximateBacklogSizePerInstance",
    "ApproximateAgeOfOldestRequest",
    "HasBacklogWithoutCapacity",
}


def test_no_policy_or_alarm_on_a_metric_that_never_fires(template: Template) -> None:
    """Invocations/InvocationsPerInstance are not published for async endpoints, and a
    metric with EndpointName+VariantName dimensions receives no async data."""
    for policy in template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "TargetTrackingScaling"}}
    ).values():
        configuration = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert "PredefinedMetricSpecification" not in configuration
        metrics = [
            q["MetricStat"]["Metric"]
            for q in configuration["CustomizedMetricSpecification"]["Metrics"]
            if "MetricStat" in q
        ]
        assert metrics
        for metric in metrics:
            assert metric["MetricName"] in ASYNC_METRICS
            assert [d["Name"] for d in metric["Dimensions"]] == ["EndpointName"]
    scaling_alarms = [
        alarm["Properties"]
        for lid, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
        if lid.startswith("Scaling")
    ]
    assert scaling_alarms
    for alarm in scaling_alarms:
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["MetricName"] in ASYNC_METRICS
        assert [d["Name"] for d in alarm["Dimensions"]] == ["EndpointName"]


@pytest.mark.parametrize("metric", ["ApproximateBacklogSizePerInstance"])
def test_backlog_per_instance_is_selectable(metric: str, tmp_path) -> None:
    import aws_cdk as cdk

    from app_config import parse_environment
    from app_config.environments import ENVIRONMENTS
    from stacks.async_inference_stack import AsyncInferenceStack
    from tests.infra.conftest import ROOT, cdk_context

    raw = {**ENVIRONMENTS["dev"], "scaling": {**ENVIRONMENTS["dev"]["scaling"], "metric": metric, "target_value": 5}}
    app = cdk.App(outdir=str(tmp_path), context=cdk_context())
    stack = AsyncInferenceStack(
        app, "Backlog", config=parse_environment(raw), container_dir=ROOT / "container", build_dir=tmp_path / "build"
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 5,
                "CustomizedMetricSpecification": {
                    "Metrics": Match.array_with([Match.object_like(_query(metric, "Average", "tracked"))])
                },
            }
        },
    )
