"""The IAM role SageMaker assumes to run the model and deliver async results."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct


class SageMakerExecutionRole(Construct):
    """A role trusted by SageMaker with logs and metrics permissions only.

    Everything else (S3 requests and responses, SNS, KMS, ECR, the model object)
    is granted by the construct that owns the resource, from the stack. No AWS
    managed policy: AmazonSageMakerFullAccess would allow s3:* and far more.

    SageMaker checks the role's permissions when it creates the model and the
    endpoint. Grants land in the role's DefaultPolicy, a separate CloudFormation
    resource that may be created after the role; `InferenceEndpoint` therefore
    depends on the role construct (role and policies).
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the async inference model and writes its results",
        )
        stack = cdk.Stack.of(self)
        # Endpoint log groups are named after the endpoint, whose name CloudFormation
        # generates: the name cannot be referenced here without a dependency cycle.
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/Endpoints/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=[log_groups, f"{log_groups}:log-stream:*"],
            )
        )
        # PutMetricData has no resource-level permissions; the condition keeps the
        # container to SageMaker's namespaces.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            )
        )
