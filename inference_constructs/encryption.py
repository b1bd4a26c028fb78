"""The one way this project makes a KMS key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct


def removal_policy(*, retain: bool) -> cdk.RemovalPolicy:
    """RETAIN keeps data (and the keys that decrypt it) when a stack is deleted."""
    return cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY


def customer_managed_key(scope: Construct, construct_id: str, *, description: str, retain: bool) -> kms.Key:
    """A customer-managed key with yearly rotation (cdk-nag KMS5).

    Customer-managed rather than AWS-managed: the key policy can then admit the
    principals that really use it (SageMaker's role, CloudWatch, subscribers).
    """
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy(retain=retain),
    )
