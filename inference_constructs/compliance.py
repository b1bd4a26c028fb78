"""Every cdk-nag acknowledgment of the project, each with its reason, in one place.

An entry names a construct path below the stack (a suffix such as
"Storage/AccessLogs") and the exact finding ids it acknowledges. `acknowledge_findings`
fails synth if an entry matches no construct, so a stale acknowledgment cannot
linger after the construct it excused is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct, IConstruct


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    reason: str


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "Storage/AccessLogs",
        "AwsSolutions-S1",
        "This is the server access log bucket of the data buckets; logging it to itself would loop.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*]",
        "Each async request is an object with a generated key under requests/; the key is unknown at deploy time.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/uploads/*]",
        "Large payloads are uploaded by clients under uploads/ with generated keys.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageOutputBB69BB33.Arn>/responses/*]",
        "SageMaker writes one response object per request, named after the generated inference id.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageFailure71FD998B.Arn>/failures/*]",
        "SageMaker writes one failure object per failed request, named after the generated inference id.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*]",
        "The endpoint's log group is named after the endpoint, whose name CloudFormation generates after this policy exists.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*:log-stream:*]",
        "Log streams are created per instance by SageMaker with generated names.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions; "
        "PutMetricData is limited to SageMaker namespaces by a condition.",
    ),
    # ---- client API (issue 4): inference_constructs/api.py
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*]",
        "The API writes each request's input and receipt under requests/<generated inference id>/ and reads receipts back.",
    ),
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/uploads/*]",
        "Presigned upload URLs (signed by this role) write uploads/<generated upload id>; the API checks them before submit.",
    ),
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageOutputBB69BB33.Arn>/responses/*]",
        "Status lookups read the response object SageMaker names per inference (its OutputLocation).",
    ),
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageFailure71FD998B.Arn>/failures/*]",
        "Status lookups read the failure object SageMaker names per inference (its FailureLocation).",
    ),
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::*]",
        "Lambda active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
    ),
    Finding(
        "Api/RestApi/CloudWatchRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "The account-level role API Gateway uses for execution logs of every API in the account and region; "
        "AWS's managed policy is the documented one for it (log group names are per API and stage).",
    ),
    Finding(
        "Api/RestApi/Default",
        "AwsSolutions-COG4",
        "Every method uses IAM (SigV4) authorization: the clients are AWS principals (services, CI, operators), not end users.",
    ),
    Finding(
        "Api/RestApi",
        "AwsSolutions-APIG3",
        "No WAF web ACL yet: every method is IAM-authenticated and throttled per stage; a WAF is an account-level "
        "decision (cost, shared ACLs) noted as follow-up in docs/api.md.",
    ),
)


def _relative_path(node: IConstruct, stack: cdk.Stack) -> str:
    return node.node.path.removeprefix(stack.node.path + "/")


def acknowledge_findings(stack: cdk.Stack, findings: tuple[Finding, ...] = FINDINGS) -> None:
    """Acknowledge each finding on the construct it names; fail on one that names nothing."""
    constructs: dict[str, Construct] = {_relative_path(c, stack): c for c in stack.node.find_all()}
    for finding in findings:
        target = constructs.get(finding.path)
        if target is None:
            raise ValueError(f"cdk-nag acknowledgment for {finding.rule} names no construct at {finding.path!r}")
        cdk.Validations.of(target).acknowledge(
            cdk.Acknowledgment(id=f"AwsSolutions::{finding.rule}", reason=finding.reason)
        )
