"""Application Auto Scaling of an endpoint variant: the scalable target, and the policies of the
real-time and serverless variants (the async endpoint's policies: autoscaling.py).

Real-time: one target-tracking policy on the predefined SageMakerVariantInvocationsPerInstance
(invocations per instance per minute, published with EndpointName and VariantName for
real-time endpoints only). A real-time variant cannot scale to zero: MinCapacity >= 1.
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-loadtest.html (the target)

Serverless: nothing to scale but provisioned concurrency. Its scalable dimension is
sagemaker:variant:DesiredProvisionedConcurrency and the predefined metric
SageMakerVariantProvisionedConcurrencyUtilization (share of provisioned concurrency in use).
https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-autoscale.html
"""

from __future__ import annotations

from aws_cdk import aws_applicationautoscaling as appscaling
from constructs import Construct

INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"


class ScalableVariant(Construct):
    """The endpoint variant as a scalable target (construct id "Target"), and the policies on it.

    One construct for every hosting mode, like aws-applicationautoscaling's ScalableTarget with
    its scale_* methods: the target is the same thing everywhere, the modes differ only in the
    policies they add (`track_predefined_metric` here, autoscaling.add_async_policies).

    No RoleARN on the target: Application Auto Scaling uses (and creates if needed) its
    service-linked role for SageMaker endpoints.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        scalable_dimension: str,
        min_capacity: int,
        max_capacity: int,
    ) -> None:
        if scalable_dimension not in (INSTANCE_COUNT, PROVISIONED_CONCURRENCY):
            raise ValueError(
                f"scalable_dimension {scalable_dimension!r}: {INSTANCE_COUNT} or {PROVISIONED_CONCURRENCY}"
            )
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.scalable_dimension = scalable_dimension
        self.min_capacity = min_capacity
        self.target = appscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            scalable_dimension=scalable_dimension,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )

    def add_policy(
        self,
        construct_id: str,
        *,
        policy_name: str,
        target_tracking: appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty | None = None,
        step_scaling: appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty | None = None,
    ) -> appscaling.CfnScalingPolicy:
        """A policy on this target: target tracking or step scaling, whichever configuration is given.

        PolicyName is required and only has to be unique per scalable target, so callers pick
        one that reads well in the console.
        """
        if (target_tracking is None) == (step_scaling is None):
            raise ValueError(f"scaling policy {construct_id}: give exactly one of target_tracking, step_scaling")
        return appscaling.CfnScalingPolicy(
            self,
            construct_id,
            policy_name=policy_name,
            policy_type="TargetTrackingScaling" if target_tracking is not None else "StepScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=target_tracking,
            step_scaling_policy_configuration=step_scaling,
        )

    def track_predefined_metric(
        self, *, metric_type: str, target_value: float, scale_out_cooldown_seconds: int, scale_in_cooldown_seconds: int
    ) -> appscaling.CfnScalingPolicy:
        """The one policy of a real-time or serverless variant: target tracking on a predefined
        SageMaker metric, scaling out and in around `target_value` (construct id "Track")."""
        if self.min_capacity < 1:
            # Only async endpoints (and inference components) scale to zero.
            raise ValueError(f"min_capacity={self.min_capacity}: a real-time or serverless variant scales from 1")
        return self.add_policy(
            "Track",
            # The metric type keeps the name readable in the console.
            policy_name=metric_type,
            target_tracking=predefined_tracking(
                metric_type=metric_type,
                target_value=target_value,
                scale_out_cooldown_seconds=scale_out_cooldown_seconds,
                scale_in_cooldown_seconds=scale_in_cooldown_seconds,
            ),
        )


def predefined_tracking(
    *, metric_type: str, target_value: float, scale_out_cooldown_seconds: int, scale_in_cooldown_seconds: int
) -> appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty:
    """Target tracking on a predefined SageMaker metric: scales out and in around `target_value`."""
    return appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
        target_value=target_value,
        predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
            predefined_metric_type=metric_type
        ),
        scale_out_cooldown=scale_out_cooldown_seconds,
        scale_in_cooldown=scale_in_cooldown_seconds,
    )
