"""Every accepted compliance finding of the project, each with its reason, in one place:
cdk-nag acknowledgments (`FINDINGS`, `CI_IDENTITY_FINDINGS`) and checkov skips (`CHECKOV_SKIPS`).

Two packs check every stack (app.py adds them): AwsSolutions and NIST 800-53 rev 5. An entry
names a construct path below the stack (a suffix such as "Storage/AccessLogs") and the
exact finding id it acknowledges. `acknowledge_findings` fails synth if an entry matches
no construct, and tests/infra/test_compliance.py fails if an entry suppresses no finding
in any environment, so a stale acknowledgment cannot linger.

Acknowledgments use the pack-qualified id "<pack>::<rule>" (for example
"NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ"). cdk-nag 3.0.2 also honours the bare rule id,
but then drops the finding before CDK sees it: nothing reaches validation-report.json.
With the qualified id CDK itself suppresses the finding and records rule, construct and
reason under `suppressedViolations`, which is the audit trail (and what the tests read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, NIST80053R5Checks
from constructs import IConstruct

# The packs app.py runs, by cdk-nag pack name: the name prefixes every rule id of the pack.
PACKS: dict[str, type[NagPack]] = {
    "AwsSolutions": AwsSolutionsChecks,
    "NIST.800.53.R5": NIST80053R5Checks,
}


def pack_of(rule: str) -> str:
    """The pack a rule id belongs to: "NIST.800.53.R5-LambdaDLQ" -> "NIST.800.53.R5"."""
    for name in PACKS:
        if rule.startswith(f"{name}-"):
            return name
    raise ValueError(f"cdk-nag rule {rule!r} belongs to none of the packs the app runs: {sorted(PACKS)}")


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    reason: str

    @property
    def acknowledgment_id(self) -> str:
        return f"{pack_of(self.rule)}::{self.rule}"


# Why an inline policy (NIST IAMNoInlinePolicy), for every role of the project.
_INLINE_POLICY = (
    "An inline policy keeps a strict one-to-one relationship between the permissions and this one role, and is "
    "deleted with it; a customer-managed policy could be attached to other principals. AWS documents inline "
    "policies for this case: https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html"
)


FINDINGS: tuple[Finding, ...] = (
    # No AwsSolutions-S1 entry for Storage/AccessLogs: cdk-nag 3 exempts a bucket that is the
    # access-log destination of another bucket in the stack (checkov does not: CHECKOV_SKIPS).
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*]",
        "Each async request is an object with a generated key under requests/; the key is unknown at deploy time.",
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
        "The endpoint's log group is named after the endpoint, whose name CloudFormation generates after this policy "
        "exists.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*:log-stream:*]",
        "Log streams are created per instance by SageMaker with generated names.",
    ),
    # ---- batch transform: inference_constructs/batch_transform.py
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TransformJobs:log-stream:*]",
        "A transform job writes one log stream per instance, named <job name>/<instance id>/data-log by SageMaker "
        "when the job runs; the log group itself is named exactly.",
    ),
    Finding(
        "Batch/CallerPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:transform-job/batch-*]",
        "Each batch run is a new transform job with a generated name (batch-<model>-<random>, "
        "inference_client/batch.py); the prefix limits the policy to this project's jobs.",
    ),
    Finding(
        "Batch/CallerPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/batch/*]",
        "A batch dataset is any number of objects the caller names; the grant is objects under the batch input prefix "
        "only.",
    ),
    Finding(
        "Batch/CallerPolicy",
        "AwsSolutions-IAM5[Resource::<StorageOutputBB69BB33.Arn>/responses/batch/*]",
        "SageMaker names each result after its input object (<key>.out); the grant is the batch output prefix only.",
    ),
    Finding(
        "Execution/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions; "
        "PutMetricData is limited to SageMaker namespaces by a condition.",
    ),
    # ---- client API: inference_constructs/api.py
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*]",
        "The API writes each request's input and receipt under requests/<generated inference id>/ and reads receipts "
        "back.",
    ),
    Finding(
        "Api/HandlerRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/uploads/*]",
        "Presigned upload URLs (signed by this role) write uploads/<generated upload id>; the API checks them before "
        "submit.",
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
        "Lambda active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
        "permissions.",
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
        "Every method uses IAM (SigV4) authorization: the clients are AWS principals (services, CI, operators), not "
        "end users.",
    ),
    Finding(
        "Api/RestApi",
        "AwsSolutions-APIG3",
        "No WAF web ACL yet: every method is IAM-authenticated and throttled per stage; a WAF is an account-level "
        "decision (cost, shared ACLs) noted as follow-up in docs/api.md.",
    ),
    # ---- NIST 800-53 rev 5. Fixed rather than acknowledged: the API Lambda's
    # reserved concurrency, KMS-encrypted log groups, a versioned access log bucket.
    Finding("Execution/Role/DefaultPolicy", "NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_POLICY),
    Finding("Api/HandlerRole/DefaultPolicy", "NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_POLICY),
    Finding(
        "Storage/AccessLogs",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
        "S3 server access logging delivers only to a destination bucket encrypted with SSE-S3, not SSE-KMS: "
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html",
    ),
    *(
        Finding(
            f"Storage/{bucket}",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "No cross-region replica: objects are transient (lifecycle expiry in days), a request can be resubmitted, "
            "and a replica would double storage and KMS cost and need a second key and bucket per region.",
        )
        for bucket in ("AccessLogs", "Input", "Output", "Failure")
    ),
    Finding(
        "Storage/Input",
        "NIST.800.53.R5-S3BucketVersioningEnabled",
        "Request objects are written once under generated keys and deleted on purpose (consumed uploads); versions "
        "would keep every deleted payload. Outputs and failures, the product of GPU time, are versioned.",
    ),
    Finding(
        "Inference/Config",
        "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
        "The GPU instance types used (g4dn, g5) have NVMe instance storage, encrypted by a hardware module on the "
        "instance, which the API documents KmsKeyId does not encrypt; a serverless endpoint has no ML storage "
        "volume. app_config refuses encrypt_storage_volume for both (an EBS-backed instance type may set it, which "
        "removes this finding). Async results are encrypted with the data key (OutputConfig.KmsKeyId). "
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html",
    ),
    Finding(
        "Api/Handler",
        "NIST.800.53.R5-LambdaDLQ",
        "API Gateway invokes the handler synchronously and receives its errors; a dead-letter queue only ever "
        "receives failed asynchronous invocations: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html",
    ),
    Finding(
        "Api/Handler",
        "NIST.800.53.R5-LambdaInsideVPC",
        "The handler talks only to AWS APIs (S3, SageMaker runtime, KMS, X-Ray) over TLS with IAM; in a VPC it "
        "would need a NAT gateway or five interface endpoints per AZ, a fixed monthly cost for no new boundary.",
    ),
    Finding(
        "Api/RestApi",
        "NIST.800.53.R5-APIGWAssociatedWithWAF",
        "No WAF web ACL yet (as AwsSolutions-APIG3): every method is IAM-authenticated and throttled per stage; "
        "a WAF is an account-level decision (cost, shared ACLs).",
    ),
    Finding(
        "Api/RestApi",
        "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
        "Caching is wrong for this API: submits are POSTs, a status changes until the inference ends, and a "
        "cache keyed on the path would answer one caller with another's result; no cache means no cached data to "
        "encrypt.",
    ),
    Finding(
        "Api/RestApi",
        "NIST.800.53.R5-APIGWSSLEnabled",
        "The rule asks for a stage client certificate, which API Gateway presents only to HTTP backends; the "
        "only integration is Lambda (AWS_PROXY), reached over AWS's signed TLS API. "
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/getting-started-client-side-ssl-authentication.html",
    ),
)

# The CI identity stack (stacks/ci_identity_stack.py): its roles name exact bootstrap
# role ARNs and carry no managed policy, so AwsSolutions finds nothing there.
CI_IDENTITY_FINDINGS: tuple[Finding, ...] = (
    Finding("GitHub/DiffRole", "NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_POLICY),
    Finding("GitHub/DeployRole", "NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_POLICY),
)


# ---------------------------------------------------------------------------- checkov
@dataclass(frozen=True)
class CheckovSkip:
    """A checkov check this project fails on purpose, written into the resource's template
    Metadata (`checkov: {skip: [{id, comment}]}`), which checkov itself reads: a plain
    `checkov -d cdk.out` then reports it as skipped with this reason, and fails on anything new.

    `path` may be a glob (fnmatch) but must name exactly one construct; an L2 construct
    stands for its CloudFormation resource (default_child). `when` limits the skip to
    resources it holds for, so a setting that fixes the check also removes the skip.
    """

    path: str
    check: str
    reason: str
    when: Callable[[cdk.CfnResource], bool] | None = None


def _network_isolation_off(model: cdk.CfnResource) -> bool:
    """True unless the SageMaker model sets EnableNetworkIsolation (app_config's enable_network_isolation)."""
    return not getattr(model, "enable_network_isolation", None)


CHECKOV_SKIPS: tuple[CheckovSkip, ...] = (
    CheckovSkip(
        "Storage/AccessLogs",
        "CKV_AWS_18",
        "This is the server access log bucket of the data buckets; logging it to itself would loop.",
    ),
    CheckovSkip(
        "Storage/Input",
        "CKV_AWS_21",
        "Request objects are written once under generated keys and deleted on purpose (consumed uploads); versions "
        "would keep every deleted payload. Outputs and failures, the product of GPU time, are versioned.",
    ),
    CheckovSkip(
        "Inference/Model",
        "CKV_AWS_370",
        "The model is a hub model that the container downloads at start-up (HF_MODEL_ID), which needs the network; "
        "an environment serving an S3 or local artifact sets enable_network_isolation, which drops this skip.",
        when=_network_isolation_off,
    ),
    CheckovSkip(
        "Api/Handler",
        "CKV_AWS_116",
        "API Gateway invokes the handler synchronously and receives its errors; a dead-letter queue only ever "
        "receives failed asynchronous invocations.",
    ),
    CheckovSkip(
        "Api/Handler",
        "CKV_AWS_117",
        "The handler talks only to AWS APIs (S3, SageMaker runtime, KMS, X-Ray) over TLS with IAM; in a VPC it "
        "would need a NAT gateway or five interface endpoints per AZ, a fixed monthly cost for no new boundary.",
    ),
    CheckovSkip(
        "Api/Handler",
        "CKV_AWS_173",
        "The variables hold no secret (bucket and endpoint names, limits) and Lambda encrypts them at rest with its "
        "service key; a customer key would add a KMS grant to every deploy for nothing to protect.",
    ),
    CheckovSkip(
        "Api/RestApi/DeploymentStage.*/Resource",
        "CKV_AWS_120",
        "Caching is wrong for this API: submits are POSTs, a status changes until the inference ends, and a "
        "cache keyed on the path would answer one caller with another's result.",
    ),
)


def model_prefix_findings(bucket: str, prefix: str) -> tuple[Finding, ...]:
    """The acknowledgment a multi-model endpoint's prefix needs (its bucket and prefix are per environment)."""
    return (
        Finding(
            "Execution/Role/DefaultPolicy",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{bucket}/{prefix}*]",
            "A multi-model endpoint reads <prefix><TargetModel> for whichever model a request names "
            "(https://docs.aws.amazon.com/sagemaker/latest/dg/create-multi-model-endpoint.html); the grant is "
            "objects under exactly that prefix, which ends in '/'.",
        ),
    )


# ---- completion callbacks: inference_constructs/callbacks.py. Only where the notifier
# exists (async hosting with callbacks enabled), so the stack adds these as `extra` / skips.
CALLBACK_FINDINGS: tuple[Finding, ...] = (
    Finding(
        "Callbacks/NotifierRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*/receipt.json]",
        "The notifier reads the receipt of whichever inference completed: requests/<generated id>/receipt.json, "
        "that file name only.",
    ),
    Finding(
        "Callbacks/NotifierRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageInput124FA7A1.Arn>/requests/*/callback.json]",
        "The notifier records each inference's delivery state in requests/<generated id>/callback.json, that file "
        "name only; it can write nothing else in the bucket.",
    ),
    Finding(
        "Callbacks/NotifierRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageOutputBB69BB33.Arn>/responses/*]",
        "The event carries the result SageMaker wrote under responses/<generated name> (its OutputLocation).",
    ),
    Finding(
        "Callbacks/NotifierRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<StorageFailure71FD998B.Arn>/failures/*]",
        "A failed event carries the failure SageMaker wrote under failures/<generated name>.",
    ),
    Finding(
        "Callbacks/NotifierRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::*]",
        "Lambda active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
        "permissions.",
    ),
    Finding("Callbacks/NotifierRole/DefaultPolicy", "NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_POLICY),
    Finding(
        "Callbacks/Notifier",
        "NIST.800.53.R5-LambdaDLQ",
        "The notifier is invoked by an SQS event source mapping, for which a function dead-letter queue is never "
        "used; its source queue has the dead-letter queue (redrive policy) and the notifier dead-letters events "
        "past the retry window itself: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html",
    ),
    Finding(
        "Callbacks/Notifier",
        "NIST.800.53.R5-LambdaInsideVPC",
        "The notifier's job is an HTTPS POST to callers' public endpoints: in a VPC it would need a NAT gateway; "
        "destinations are checked after DNS resolution (only public addresses) instead.",
    ),
    Finding(
        "Callbacks/SigningSecret",
        "AwsSolutions-SMG4",
        "A signing secret shared with every receiver cannot rotate on a schedule without breaking their "
        "verification; rotation is an operator's step with an overlap (docs/api.md, Callbacks).",
    ),
    Finding(
        "Callbacks/SigningSecret",
        "NIST.800.53.R5-SecretsManagerRotationEnabled",
        "A signing secret shared with every receiver cannot rotate on a schedule without breaking their "
        "verification; rotation is an operator's step with an overlap (docs/api.md, Callbacks).",
    ),
)
CALLBACK_CHECKOV_SKIPS: tuple[CheckovSkip, ...] = (
    CheckovSkip(
        "Callbacks/Notifier",
        "CKV_AWS_116",
        "SQS event source: a function dead-letter queue only receives failed asynchronous invocations; the source "
        "queue has the dead-letter queue.",
    ),
    CheckovSkip(
        "Callbacks/Notifier",
        "CKV_AWS_117",
        "The notifier POSTs to callers' public HTTPS endpoints; destinations are checked after DNS resolution.",
    ),
    CheckovSkip(
        "Callbacks/Notifier",
        "CKV_AWS_173",
        "The variables hold no secret (names, ARNs, limits; the signing secret is read from Secrets Manager) and "
        "Lambda encrypts them at rest with its service key.",
    ),
)


# ---------------------------------------------------------------------------- applying both
def _relative_path(node: IConstruct, stack: cdk.Stack) -> str:
    return node.node.path.removeprefix(stack.node.path + "/")


def _cfn_resource(construct: IConstruct, path: str) -> cdk.CfnResource:
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise ValueError(f"checkov skip at {path!r}: {construct.node.path} is no CloudFormation resource")
    return resource


def acknowledge_findings(
    stack: cdk.Stack,
    findings: tuple[Finding, ...] = FINDINGS,
    *,
    checkov_skips: tuple[CheckovSkip, ...] = CHECKOV_SKIPS,
    extra: tuple[Finding, ...] = (),
) -> None:
    """Acknowledge each cdk-nag finding and record each checkov skip on the construct it
    names; fail on an entry that names nothing. `extra`: findings that depend on the
    environment's configuration (model_prefix_findings)."""
    constructs: dict[str, IConstruct] = {_relative_path(c, stack): c for c in stack.node.find_all()}
    for finding in (*findings, *extra):
        target = constructs.get(finding.path)
        if target is None:
            raise ValueError(f"cdk-nag acknowledgment for {finding.rule} names no construct at {finding.path!r}")
        cdk.Validations.of(target).acknowledge(cdk.Acknowledgment(id=finding.acknowledgment_id, reason=finding.reason))

    # Keyed by construct path: jsii may hand out a new proxy object per lookup of a resource.
    resources: dict[str, cdk.CfnResource] = {}
    skips: dict[str, list[dict[str, str]]] = defaultdict(list)
    for skip in checkov_skips:
        matches = [construct for path, construct in constructs.items() if fnmatchcase(path, skip.path)]
        if len(matches) != 1:
            raise ValueError(f"checkov skip of {skip.check} names {len(matches)} constructs at {skip.path!r}, not one")
        resource = _cfn_resource(matches[0], skip.path)
        if skip.when is None or skip.when(resource):
            resources[resource.node.path] = resource
            skips[resource.node.path].append({"id": skip.check, "comment": skip.reason})
    for path, entries in skips.items():
        # One Metadata key per resource: add_metadata replaces, so all skips go in at once.
        resources[path].add_metadata("checkov", {"skip": entries})
