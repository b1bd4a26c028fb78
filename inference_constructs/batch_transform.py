"""What a batch transform job of the environment's model needs, and who may start one.

A transform job runs the model (same image, same ModelDataUrl) with the model's execution
role, which must read the input objects, list the input prefix (S3DataType S3Prefix), write
the results and write the job's logs to /aws/sagemaker/TransformJobs.
https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html (CreateTransformJob API:
execution role permissions) and https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html

The data stays in the environment's buckets, under the request and response prefixes the role
already reads and writes (same encryption key, same lifecycle expiry): inputs under
requests/batch/, results under responses/batch/. The caller (the CLI's user) gets a managed
policy to start, describe and stop jobs named batch-* (inference_client/batch.py's names),
put inputs under requests/batch/ and read and list results under responses/batch/;
CreateTransformJob takes no role, so no iam:PassRole is needed.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from api_handler.contract import INPUT_PREFIX, OUTPUT_PREFIX
from inference_constructs.storage import InferenceStorage, list_within_prefixes

BATCH_INPUT_PREFIX = f"{INPUT_PREFIX}batch/"
BATCH_OUTPUT_PREFIX = f"{OUTPUT_PREFIX}batch/"
# inference_client.batch.new_job_name starts every job name with this.
JOB_NAME_PREFIX = "batch-"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


class BatchTransformAccess(Construct):
    """Grants on the execution role for transform jobs, and the callers' managed policy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        execution_role: iam.IRole,
        storage: InferenceStorage,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        input_bucket, output_bucket = storage.input_bucket, storage.output_bucket
        # S3Prefix input: SageMaker lists the prefix. The bucket ARN as resource, the prefix as
        # condition (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
        execution_role.add_to_principal_policy(list_within_prefixes(input_bucket, (BATCH_INPUT_PREFIX,)))
        # GetObject on requests/* and PutObject on responses/* (with the key) the role has already.
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRANSFORM_LOG_GROUP,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        execution_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                # Streams are named <job name>/<instance id>/data-log: unknown until the job runs.
                resources=[log_group, f"{log_group}:log-stream:*"],
            )
        )
        jobs = stack.format_arn(service="sagemaker", resource="transform-job", resource_name=f"{JOB_NAME_PREFIX}*")
        self.caller_policy = iam.ManagedPolicy(
            self,
            "CallerPolicy",
            description="Start, follow and stop batch transform jobs of this environment's model (python -m "
            "inference_client batch)",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:CreateTransformJob",
                        "sagemaker:DescribeTransformJob",
                        "sagemaker:StopTransformJob",
                    ],
                    resources=[jobs],
                ),
                # Put the dataset in, read the results back (SSE-KMS with the data key).
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[input_bucket.arn_for_objects(f"{BATCH_INPUT_PREFIX}*")]
                ),
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[output_bucket.arn_for_objects(f"{BATCH_OUTPUT_PREFIX}*")]
                ),
                list_within_prefixes(output_bucket, (BATCH_OUTPUT_PREFIX,)),
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[storage.key.key_arn]),
            ],
        )
        self.input_uri = f"s3://{input_bucket.bucket_name}/{BATCH_INPUT_PREFIX}"
        self.output_uri = f"s3://{output_bucket.bucket_name}/{BATCH_OUTPUT_PREFIX}"
