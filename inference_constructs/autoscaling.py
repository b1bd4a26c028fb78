"""Application Auto Scaling for the async endpoint variant, including scale from zero.

Three policies, each for one job:

1. Target tracking (scale OUT only) on ApproximateAgeOfOldestRequest or
   ApproximateBacklogSizePerInstance: adds instances while requests wait too long.
   The tracked value is blanked (0) while HasBacklogWithoutCapacity is 1: during a
   cold start the waiting request's age (or the whole backlog "per instance") says
   nothing about how many instances the work needs, and tracking it would scale
   one request at zero to max_capacity.
2. Step scaling on HasBacklogWithoutCapacity: target tracking never scales out
   from zero instances (there is no per-instance value to track), so a request
   arriving at an idle endpoint needs this policy to get the first instance.
   It SETS the capacity to 1 (ExactCapacity), it does not add 1: its alarm stays
   in ALARM for the whole cold start (minutes: instance, image pull, model load),
   Application Auto Scaling applies a step policy again on every further breach
   while a scaling activity is still in progress, and a +1 step would keep adding
   instances until max_capacity. Setting 1 again is a no-op. It can lower the
   count only when no instance is in service at all (that is what the metric
   means), and target tracking is blanked then, so it never undoes a scale-out.
   That metric must never drive scale-in: it is 0 both when idle and when busy.
3. Step scaling to MinCapacity once ApproximateBacklogSize - which counts requests
   being processed as well as queued - has been 0 for `idle_minutes` in a row.

Scale-in is only ever done by (3). Target tracking's own scale-in is disabled
because it removes instances while others still hold in-flight requests, and
scale-in sends SIGTERM to a container that may be mid-request (SageMaker kills
it 30 s later). With (3) an instance is removed only when nothing is in flight.
The cost: a partially busy endpoint keeps its peak instance count until the
backlog drains. README "Scaling" discusses the trade-off.

All metrics are queue metrics, published with the EndpointName dimension only
(https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html); a
policy on Invocations never fires for async endpoints.

Semantics relied on (Application Auto Scaling user guide):
https://docs.aws.amazon.com/autoscaling/application/userguide/step-scaling-policy-overview.html
https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html
https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking-metric-math.html
devtools/scaling_simulator.py replays them over metric traces against the synthesized
template (tests/infra/test_scaling_simulation.py, docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from inference_constructs.alarms import NAMESPACE, async_metric
from inference_constructs.variant_scaling import INSTANCE_COUNT, ScalableVariant

# Statistic that makes each target-tracking metric meaningful: the OLDEST request's
# age (Maximum), the AVERAGE backlog per instance.
TRACKED_METRIC_STATISTICS = {
    "ApproximateAgeOfOldestRequest": "Maximum",
    "ApproximateBacklogSizePerInstance": "Average",
}


ONE_MINUTE = cdk.Duration.minutes(1)


@jsii.implements(cloudwatch.IAlarmAction)
class ScalingPolicyAction:
    """An L2 alarm's action that runs one of these L1 scaling policies: aws-cloudwatch-actions'
    ApplicationScalingAction takes only an L2 StepScalingAction."""

    def __init__(self, policy: appscaling.CfnScalingPolicy) -> None:
        self._policy = policy

    def bind(self, _scope: Construct, _alarm: cloudwatch.IAlarm) -> cloudwatch.AlarmActionConfig:
        return cloudwatch.AlarmActionConfig(alarm_action_arn=self._policy.ref)


# The tracked value: the metric, or 0 while no instance is in service (see the module docstring).
# FILL: a minute without a HasBacklogWithoutCapacity datapoint counts as "has capacity".
TRACKED_EXPRESSION = "IF(FILL(nocapacity, 0) > 0, 0, tracked)"


def _endpoint_metric(
    *, query_id: str, metric_name: str, endpoint_name: str, stat: str
) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
    return appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
        id=query_id,
        return_data=False,
        metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
            stat=stat,
            metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                namespace=NAMESPACE,
                metric_name=metric_name,
                dimensions=[
                    appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                        name="EndpointName", value=endpoint_name
                    )
                ],
            ),
        ),
    )


def tracked_metric(
    *, metric_name: str, endpoint_name: str
) -> appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty:
    """A customized metric-math specification: the predefined SageMaker metric is
    per-variant invocations, which async endpoints do not publish."""
    return appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
        metrics=[
            _endpoint_metric(
                query_id="tracked",
                metric_name=metric_name,
                endpoint_name=endpoint_name,
                stat=TRACKED_METRIC_STATISTICS[metric_name],
            ),
            _endpoint_metric(
                query_id="nocapacity",
                metric_name="HasBacklogWithoutCapacity",
                endpoint_name=endpoint_name,
                stat="Maximum",
            ),
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id="value", expression=TRACKED_EXPRESSION, label=f"{metric_name} while in service", return_data=True
            ),
        ],
    )


def scale_out_tracking(
    *, metric_name: str, endpoint_name: str, target_value: float, scale_out_cooldown_seconds: int
) -> appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty:
    return appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
        target_value=target_value,
        customized_metric_specification=tracked_metric(metric_name=metric_name, endpoint_name=endpoint_name),
        scale_out_cooldown=scale_out_cooldown_seconds,
        # Scale-in belongs to the idle policy; see the module docstring.
        disable_scale_in=True,
    )


def wake_one_instance(*, cooldown_seconds: int) -> appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty:
    """Set the count to exactly 1 whenever the alarm fires (metric - threshold >= 0).

    Idempotent: applied again and again during a cold start it still asks for one
    instance. The cooldown is the cold-start bound, as documentation of intent: with
    an exact capacity a repeat cannot add anything anyway.
    """
    return appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
        adjustment_type="ExactCapacity",
        metric_aggregation_type="Maximum",
        cooldown=cooldown_seconds,
        step_adjustments=[
            appscaling.CfnScalingPolicy.StepAdjustmentProperty(metric_interval_lower_bound=0, scaling_adjustment=1)
        ],
    )


def set_capacity(*, capacity: int) -> appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty:
    """Set the count to `capacity` whenever the alarm fires (metric below threshold)."""
    return appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
        adjustment_type="ExactCapacity",
        metric_aggregation_type="Maximum",
        step_adjustments=[
            appscaling.CfnScalingPolicy.StepAdjustmentProperty(
                metric_interval_upper_bound=0, scaling_adjustment=capacity
            )
        ],
    )


@dataclass(frozen=True)
class AsyncScalingPolicies:
    """The async endpoint's three policies (module docstring) and the alarms that run the step ones."""

    tracking_policy: appscaling.CfnScalingPolicy
    from_zero_policy: appscaling.CfnScalingPolicy
    from_zero_alarm: cloudwatch.Alarm
    idle_policy: appscaling.CfnScalingPolicy
    idle_alarm: cloudwatch.Alarm


def add_async_policies(
    variant: ScalableVariant,
    *,
    metric_name: str,
    target_value: float,
    scale_out_cooldown_seconds: int,
    cold_start_seconds: int,
    idle_minutes_before_scale_in: int,
) -> AsyncScalingPolicies:
    """The three policies described in the module docstring, on an async endpoint's variant.

    Scale-in goes to the variant's MinCapacity (0 lets an idle endpoint cost nothing).
    """
    if metric_name not in TRACKED_METRIC_STATISTICS:
        raise ValueError(f"metric_name {metric_name!r}: choose one of {sorted(TRACKED_METRIC_STATISTICS)}")
    if variant.scalable_dimension != INSTANCE_COUNT:
        raise ValueError(f"an async endpoint scales {INSTANCE_COUNT}, not {variant.scalable_dimension}")
    tracking_policy = variant.add_policy(
        "TrackBacklog",
        policy_name="TrackBacklog",
        target_tracking=scale_out_tracking(
            metric_name=metric_name,
            endpoint_name=variant.endpoint_name,
            target_value=target_value,
            scale_out_cooldown_seconds=scale_out_cooldown_seconds,
        ),
    )
    from_zero_policy, from_zero_alarm = _step_on_alarm(
        variant,
        "ScaleOutFromZero",
        wake_one_instance(cooldown_seconds=cold_start_seconds),
        alarm_id="BacklogWithoutCapacityAlarm",
        alarm_description="Requests are queued and the endpoint has no instance: set the count to 1",
        metric=async_metric(variant.endpoint_name, "HasBacklogWithoutCapacity", "Average", ONE_MINUTE),
        minutes=1,
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        # Idle endpoints publish nothing: missing data is "no backlog", never a reason to scale.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    min_capacity = variant.min_capacity
    idle_policy, idle_alarm = _step_on_alarm(
        variant,
        "ScaleInWhenIdle",
        set_capacity(capacity=min_capacity),
        alarm_id="IdleAlarm",
        alarm_description=(
            f"No request queued or in flight for {idle_minutes_before_scale_in} minutes: scale in to {min_capacity}"
        ),
        metric=async_metric(variant.endpoint_name, "ApproximateBacklogSize", "Maximum", ONE_MINUTE),
        minutes=idle_minutes_before_scale_in,
        # Backlog is a count: "< 0.5" means exactly 0.
        threshold=0.5,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        # Missing data is no evidence of idleness: keep the current state.
        treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
    )
    return AsyncScalingPolicies(tracking_policy, from_zero_policy, from_zero_alarm, idle_policy, idle_alarm)


def _step_on_alarm(
    variant: ScalableVariant,
    name: str,
    step_scaling: appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty,
    *,
    alarm_id: str,
    alarm_description: str,
    metric: cloudwatch.IMetric,
    minutes: int,
    threshold: float,
    comparison_operator: cloudwatch.ComparisonOperator,
    treat_missing_data: cloudwatch.TreatMissingData,
) -> tuple[appscaling.CfnScalingPolicy, cloudwatch.Alarm]:
    """A step-scaling policy and the L2 alarm that runs it: the alarm fires once `metric` (a
    one-minute queue metric) has breached `threshold` in each of the last `minutes` minutes.

    The policy name is the construct id: it only has to be unique per scalable target, and
    reads well in the console.
    """
    policy = variant.add_policy(name, policy_name=name, step_scaling=step_scaling)
    alarm = cloudwatch.Alarm(
        variant,
        alarm_id,
        alarm_description=alarm_description,
        metric=metric,
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
        threshold=threshold,
        comparison_operator=comparison_operator,
        treat_missing_data=treat_missing_data,
    )
    alarm.add_alarm_action(ScalingPolicyAction(policy))
    return policy, alarm
