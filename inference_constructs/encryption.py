"""The one way this project makes a KMS key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from inference_constructs.arns import colon_resource_arn


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


def allow_cloudwatch_logs(key: kms.IKey) -> None:
    """Let CloudWatch Logs encrypt this account's and region's log groups with `key`.

    The key policy, not IAM, must admit the regional service principal
    logs.<region>.amazonaws.com, or creating the log group fails. The condition names
    log groups of this account and region only: their generated names cannot be
    referenced here (the log groups reference the key).
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
    """
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{cdk.Stack.of(key).region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": colon_resource_arn(key, service="logs", resource="log-group")
                }
            },
        )
    )
