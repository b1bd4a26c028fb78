"""The one way this project makes a Lambda function: a handler of the `api_handler` asset.

The API handler and the callback notifier are built the same way: the same asset, runtime,
architecture and Powertools layer, a role of their own that may write only to their own log
group, and X-Ray tracing. What differs (handler, memory, timeout, concurrency, environment, the
log group's key and retention) is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from inference_constructs.lambda_code import handler_code

# Keep equal to the aws-lambda-powertools pin in requirements-dev.txt (a test checks it):
# the tests run against the very version the Lambda gets from the layer.
POWERTOOLS_VERSION = "3.37.0"
RUNTIME = lambda_.Runtime.PYTHON_3_14  # the latest Python runtime aws-cdk-lib 2.275 offers
ARCHITECTURE = lambda_.Architecture.X86_64


def powertools_layer_parameter(version: str = POWERTOOLS_VERSION) -> str:
    """The public SSM parameter AWS publishes per region with the Powertools layer ARN."""
    return f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{version}"


@dataclass(frozen=True)
class HandlerFunction:
    """A function with the role it runs as (typed as a Role, for the owner's grants)."""

    function: lambda_.Function
    role: iam.Role


def handler_function(
    scope: Construct,
    name: str,
    *,
    handler: str,
    description: str,
    role_description: str,
    memory_size_mb: int,
    timeout: cdk.Duration,
    reserved_concurrency: int,
    environment: Mapping[str, str],
    log_group: logs.ILogGroup,
) -> HandlerFunction:
    """`name` (the function), `{name}Role` and the layer "PowertoolsLayer" in `scope` (so one
    such function per scope), logging to `log_group` (log_groups.encrypted_log_group).

    `reserved_concurrency` both caps what the function takes from the account's Lambda pool and
    reserves it.
    """
    # Own role instead of the default one: the default attaches the AWS managed
    # AWSLambdaBasicExecutionRole (logs on every log group, cdk-nag IAM4).
    role = iam.Role(
        scope, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=role_description
    )
    log_group.grant_write(role)
    # Resolved per region at deploy time from AWS's public parameter: no bundling, no
    # Docker at synth, and the layer matches the Powertools version the tests pin.
    layer_arn = ssm.StringParameter.value_for_string_parameter(scope, powertools_layer_parameter())
    function = lambda_.Function(
        scope,
        name,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        # One asset for every function (one upload, one hash): the handlers share its code.
        code=handler_code(),
        layers=[lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", layer_arn)],
        role=role,
        log_group=log_group,
        memory_size=memory_size_mb,
        reserved_concurrent_executions=reserved_concurrency,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        environment=dict(environment),
        description=description,
    )
    return HandlerFunction(function=function, role=role)
