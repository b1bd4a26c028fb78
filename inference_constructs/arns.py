"""ARNs this project writes into policies for resources it cannot reference."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def colon_resource_arn(scope: IConstruct, *, service: str, resource: str, resource_name: str = "*") -> str:
    """arn:<partition>:<service>:<region>:<account>:<resource>:<resource_name> in `scope`'s stack.

    CloudWatch alarms and CloudWatch Logs log groups put their name after a colon, not a slash:
    arn:aws:cloudwatch:Region:account-id:alarm:alarm-name
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_TagResource.html) and
    arn:aws:logs:Region:account-id:log-group:log-group-name
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
    Policies name these resources by ARN where a reference would be a dependency cycle (the
    resource's own key or topic policy, the alarms the endpoint rolls back on); the default "*"
    is every such resource of this account and region.
    """
    return cdk.Stack.of(scope).format_arn(
        service=service,
        resource=resource,
        resource_name=resource_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
