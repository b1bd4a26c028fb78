"""The scaling constructs refuse wiring Application Auto Scaling or SageMaker would not honour,
with an error naming the value, before anything reaches a template.

Scalable dimensions come from botocore's application-autoscaling model (ScalableDimension enum),
so a typo in our constants fails here rather than at deploy time.
"""

from __future__ import annotations

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_applicationautoscaling as appscaling

from inference_constructs.autoscaling import add_async_policies
from inference_constructs.variant_scaling import INSTANCE_COUNT, PROVISIONED_CONCURRENCY, ScalableVariant


def _variant(*, dimension: str = INSTANCE_COUNT, min_capacity: int = 1) -> ScalableVariant:
    return ScalableVariant(
        cdk.Stack(cdk.App(), "Scaling"),
        "Scaling",
        endpoint_name="endpoint",
        variant_name="AllTraffic",
        scalable_dimension=dimension,
        min_capacity=min_capacity,
        max_capacity=2,
    )


def _async_policies(variant: ScalableVariant, *, metric_name: str = "ApproximateBacklogSizePerInstance") -> None:
    add_async_policies(
        variant,
        metric_name=metric_name,
        target_value=5,
        scale_out_cooldown_seconds=60,
        cold_start_seconds=600,
        idle_minutes_before_scale_in=15,
    )


def test_the_dimensions_are_application_auto_scalings_sagemaker_variant_dimensions() -> None:
    model = botocore.session.get_session().get_service_model("application-autoscaling")
    assert {INSTANCE_COUNT, PROVISIONED_CONCURRENCY} <= set(model.shape_for("ScalableDimension").enum)


def test_an_unknown_dimension_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'sagemaker:variant:DesiredCopyCount'"):
        _variant(dimension="sagemaker:variant:DesiredCopyCount")


def test_a_real_time_variant_cannot_track_from_zero_instances() -> None:
    variant = _variant(min_capacity=0)
    with pytest.raises(ValueError, match=r"min_capacity=0: a real-time or serverless variant scales from 1"):
        variant.track_predefined_metric(
            metric_type="SageMakerVariantInvocationsPerInstance",
            target_value=100,
            scale_out_cooldown_seconds=60,
            scale_in_cooldown_seconds=300,
        )


def test_async_policies_need_the_instance_count_dimension() -> None:
    with pytest.raises(ValueError, match=r"not sagemaker:variant:DesiredProvisionedConcurrency"):
        _async_policies(_variant(dimension=PROVISIONED_CONCURRENCY))


def test_async_policies_track_only_a_queue_metric_with_a_known_statistic() -> None:
    with pytest.raises(ValueError, match=r"metric_name 'Invocations': choose one of"):
        _async_policies(_variant(min_capacity=0), metric_name="Invocations")


def test_async_policies_scale_an_idle_endpoint_to_zero() -> None:
    variant = _variant(min_capacity=0)
    _async_policies(variant)
    policies = [child for child in variant.node.children if isinstance(child, appscaling.CfnScalingPolicy)]
    assert {policy.policy_type for policy in policies} == {"TargetTrackingScaling", "StepScaling"}
    (idle,) = [policy for policy in policies if policy.policy_name == "ScaleInWhenIdle"]
    step = idle.step_scaling_policy_configuration
    assert isinstance(step, appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty)
    assert step.adjustment_type == "ExactCapacity"
    assert [(s.metric_interval_upper_bound, s.scaling_adjustment) for s in step.step_adjustments] == [(0, 0)]


@pytest.mark.parametrize("names", [(), ("target_tracking", "step_scaling")], ids=["neither", "both"])
def test_a_policy_takes_exactly_one_configuration(names: tuple[str, ...]) -> None:
    variant = _variant()
    properties = {
        "target_tracking": appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(target_value=1),
        "step_scaling": appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
            adjustment_type="ExactCapacity"
        ),
    }
    with pytest.raises(ValueError, match=r"scaling policy Odd: give exactly one of target_tracking, step_scaling"):
        variant.add_policy("Odd", policy_name="Odd", **{name: properties[name] for name in names})
