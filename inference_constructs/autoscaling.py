"""Application Auto Scaling for the async endpoint variant, including scale from zero.

Three policies, each for one job:

1. Target tracking (scale OUT only) on ApproximateAgeOfOldestRequest or
   ApproximateBacklogSizePerInstance: adds instances while requests wait too long.
2. Step scaling on HasBacklogWithoutCapacity: target tracking never scales out
   from zero instances (there is no per-instance value to track), so a request
   arriving at an idle endpoint needs this policy to get the first instance.
   That metric must never drive scale-in: it is 0 both when idle and when busy.
3. Step scaling to MinCapacity once ApproximateBacklogSize - which counts requests
   being processed as well as queued - has been 0 for `idle_minutes` in a row.

Scale-in is only ever done by (3). Target tracking's own scale-in is disabled
because it removes instances while others still hold in-flight requests, and
scale-in sends SIGTERM to a container that may be mid-request (SageMaker kills
it 30 s later). With (3) an instance is removed only when nothing is in flight.
The cost: a partially busy endpoint keeps its peak instance count until the
backlog drains. README "Scaling" discusses the trade-off.

All metrics use the only dimension SageMaker publishes async metrics with,
EndpointName; a metric with EndpointName+VariantName receives no data and a
policy on Invocations never fires for async endpoints.
"""

from __future__ import annotations

from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

NAMESPACE = "AWS/SageMaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

# Statistic that makes each target-tracking metric meaningful: the OLDEST request's
# age (Maximum), the AVERAGE backlog per instance.
TRACKED_METRIC_STATISTICS = {
    "ApproximateAgeOfOldestRequest": "Maximum",
    "ApproximateBacklogSizePerInstance": "Average",
}


def endpoint_dimensions(endpoint_name: str) -> list[cloudwatch.CfnAlarm.DimensionProperty]:
    return [cloudwatch.CfnAlarm.DimensionProperty(name="EndpointName", value=endpoint_name)]


def tracked_metric(
    *, metric_name: str, endpoint_name: str
) -> appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty:
    """A customized metric: the predefined SageMaker metric is per-variant invocations,
    which async endpoints do not publish."""
    return appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
        metric_name=metric_name,
        namespace=NAMESPACE,
        dimensions=[
            appscaling.CfnScalingPolicy.MetricDimensionProperty(name="EndpointName", value=endpoint_name)
        ],
        statistic=TRACKED_METRIC_STATISTICS[metric_name],
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


def add_one_instance(*, cooldown_seconds: int) -> appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty:
    """+1 instance whenever the alarm fires (metric - threshold >= 0)."""
    return appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
        adjustment_type="ChangeInCapacity",
        metric_aggregation_type="Average",
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
        idle_minutes_before_scale_in: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if metric_name not in TRACKED_METRIC_STATISTICS:
            raise ValueError(f"metric_name {metric_name!r}: choose one of {sorted(TRACKED_METRIC_STATISTICS)}")

        # No RoleARN: Application Auto Scaling uses (and creates if needed) its
        # service-linked role for SageMaker endpoints.
        self.target = appscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            scalable_dimension=SCALABLE_DIMENSION,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
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
            step_scaling_policy_configuration=add_one_instance(cooldown_seconds=scale_out_cooldown_seconds),
        )
        self.from_zero_alarm = cloudwatch.CfnAlarm(
            self,
            "BacklogWithoutCapacityAlarm",
            alarm_description="Requests are queued and the endpoint has no instance: add one",
            namespace=NAMESPACE,
            metric_name="HasBacklogWithoutCapacity",
            dimensions=endpoint_dimensions(endpoint_name),
            statistic="Average",
            period=60,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            # Idle endpoints publish nothing: missing data is "no backlog", never a reason to scale.
            treat_missing_data="notBreaching",
            alarm_actions=[self.from_zero_policy.ref],
        )

        self.idle_policy = self._policy(
            "ScaleInWhenIdle",
            policy_type="StepScaling",
            step_scaling_policy_configuration=set_capacity(capacity=min_capacity),
        )
        self.idle_alarm = cloudwatch.CfnAlarm(
            self,
            "IdleAlarm",
            alarm_description=(
                f"No request queued or in flight for {idle_minutes_before_scale_in} minutes: "
                f"scale in to {min_capacity}"
            ),
            namespace=NAMESPACE,
            metric_name="ApproximateBacklogSize",
            dimensions=endpoint_dimensions(endpoint_name),
            statistic="Maximum",
            period=60,
            evaluation_periods=idle_minutes_before_scale_in,
            datapoints_to_alarm=idle_minutes_before_scale_in,
            # Backlog is a count: "< 0.5" means exactly 0.
            threshold=0.5,
            comparison_operator="LessThanThreshold",
            # Missing data is no evidence of idleness: keep the current state.
            treat_missing_data="ignore",
            alarm_actions=[self.idle_policy.ref],
        )

    def _policy(self, construct_id: str, **properties: object) -> appscaling.CfnScalingPolicy:
        # PolicyName is required and only has to be unique per scalable target; the
        # construct id keeps it readable in the console.
        return appscaling.CfnScalingPolicy(
            self,
            construct_id,
            policy_name=construct_id,
            scaling_target_id=self.target.ref,
            **properties,
        )
