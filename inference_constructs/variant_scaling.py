"""Application Auto Scaling for real-time and serverless variants (async: autoscaling.py).

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


def variant_scalable_target(
    scope: Construct,
    *,
    endpoint_name: str,
    variant_name: str,
    scalable_dimension: str,
    min_capacity: int,
    max_capacity: int,
) -> appscaling.CfnScalableTarget:
    """The endpoint variant as a scalable target (construct id "Target" under `scope`).

    No RoleARN: Application Auto Scaling uses (and creates if needed) its service-linked
    role for SageMaker endpoints.
    """
    return appscaling.CfnScalableTarget(
        scope,
        "Target",
        service_namespace="sagemaker",
        scalable_dimension=scalable_dimension,
        resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
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


class VariantTargetTracking(Construct):
    """A scalable target on the endpoint's variant and one predefined target-tracking policy."""

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
        metric_type: str,
        target_value: float,
        scale_out_cooldown_seconds: int,
        scale_in_cooldown_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if scalable_dimension not in (INSTANCE_COUNT, PROVISIONED_CONCURRENCY):
            raise ValueError(
                f"scalable_dimension {scalable_dimension!r}: {INSTANCE_COUNT} or {PROVISIONED_CONCURRENCY}"
            )
        if min_capacity < 1:
            # Only async endpoints (and inference components) scale to zero.
            raise ValueError(f"min_capacity={min_capacity}: a real-time or serverless variant scales from 1")
        self.target = variant_scalable_target(
            self,
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            scalable_dimension=scalable_dimension,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        self.policy = appscaling.CfnScalingPolicy(
            self,
            "Track",
            # Unique per scalable target only; the metric type keeps it readable in the console.
            policy_name=metric_type,
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=predefined_tracking(
                metric_type=metric_type,
                target_value=target_value,
                scale_out_cooldown_seconds=scale_out_cooldown_seconds,
                scale_in_cooldown_seconds=scale_in_cooldown_seconds,
            ),
        )
