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

from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from inference_constructs.alarms import NAMESPACE, async_metric
from inference_constructs.variant_scaling import variant_scalable_target

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

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


class EndpointAutoscaling(Construct):
    """Scalable target plus the three policies described in the module docstring."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        min_capacity: int,
        max_capacity: int,
        metric_name: str,
        target_value: float,
        scale_out_cooldown_seconds: int,
        cold_start_seconds: int,
        idle_minutes_before_scale_in: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if metric_name not in TRACKED_METRIC_STATISTICS:
            raise ValueError(f"metric_name {metric_name!r}: choose one of {sorted(TRACKED_METRIC_STATISTICS)}")

        self.target = variant_scalable_target(
            self,
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )

        self.tracking_policy = self._policy(
            "TrackBacklog",
            policy_type="TargetTrackingScaling",
            target_tracking_scaling_policy_configuration=scale_out_tracking(
                metric_name=metric_name,
                endpoint_name=endpoint_name,
                target_value=target_value,
                scale_out_cooldown_seconds=scale_out_cooldown_seconds,
            ),
        )

        self.from_zero_policy = self._policy(
            "ScaleOutFromZero",
            policy_type="StepScaling",
            step_scaling_policy_configuration=wake_one_instance(cooldown_seconds=cold_start_seconds),
        )
        self.from_zero_alarm = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacityAlarm",
            alarm_description="Requests are queued and the endpoint has no instance: set the count to 1",
            metric=async_metric(endpoint_name, "HasBacklogWithoutCapacity", "Average", ONE_MINUTE),
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # Idle endpoints publish nothing: missing data is "no backlog", never a reason to scale.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.from_zero_alarm.add_alarm_action(ScalingPolicyAction(self.from_zero_policy))

        self.idle_policy = self._policy(
            "ScaleInWhenIdle",
            policy_type="StepScaling",
            step_scaling_policy_configuration=set_capacity(capacity=min_capacity),
        )
        self.idle_alarm = cloudwatch.Alarm(
            self,
            "IdleAlarm",
            alarm_description=(
                f"No request queued or in flight for {idle_minutes_before_scale_in} minutes: scale in to {min_capacity}"
            ),
            metric=async_metric(endpoint_name, "ApproximateBacklogSize", "Maximum", ONE_MINUTE),
            evaluation_periods=idle_minutes_before_scale_in,
            datapoints_to_alarm=idle_minutes_before_scale_in,
            # Backlog is a count: "< 0.5" means exactly 0.
            threshold=0.5,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            # Missing data is no evidence of idleness: keep the current state.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.idle_alarm.add_alarm_action(ScalingPolicyAction(self.idle_policy))

    def _policy(self, construct_id: str, **properties: Any) -> appscaling.CfnScalingPolicy:
        # PolicyName is required and only has to be unique per scalable target; the
        # construct id keeps it readable in the console.
        return appscaling.CfnScalingPolicy(
            self,
            construct_id,
            policy_name=construct_id,
            scaling_target_id=self.target.ref,
            **properties,
        )
