"""S3 buckets that carry async requests and responses, and the key that encrypts them."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from api_handler.async_api.callback_state import STATE_FILE
from api_handler.contract import (
    FAILURE_PREFIX,
    INPUT_PREFIX,
    OUTPUT_PREFIX,
    RECEIPT_FILE,
    UPLOAD_PREFIX,
    ResultPaths,
)
from inference_constructs.encryption import customer_managed_key, removal_policy

# The key prefixes inside the three buckets are the API's storage layout (api_handler/contract.py).
# IAM statements are scoped to them, so a principal that may write responses cannot overwrite
# anything else in the bucket.


class InferenceStorage(Construct):
    """Input, output and failure buckets encrypted with one customer-managed key.

    Secure defaults: public access blocked, TLS-only bucket policies, KMS with
    rotation, server access logs to a separate bucket (which must use SSE-S3:
    S3 log delivery cannot write with a customer-managed key), lifecycle expiry.
    Outputs and failures are versioned: they are the product of GPU time and
    an accidental overwrite or delete should be recoverable. Inputs are not:
    they are written once under a unique key and can be resubmitted.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        input_expiry_days: int,
        output_expiry_days: int,
        failure_expiry_days: int,
        access_log_expiry_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(retain=retain)
        self.key = customer_managed_key(
            self, "DataKey", description="Encrypts async inference requests, responses and failures", retain=retain
        )
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Versioned: an overwritten or deleted log object stays recoverable (audit records,
            # NIST AU-9). S3 writes each log object once under a unique key, so this costs only
            # the expired versions, kept one more day.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(access_log_expiry_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
            ],
            removal_policy=removal,
        )
        self.input_bucket = self._data_bucket("Input", expiry_days=input_expiry_days, versioned=False, removal=removal)
        self.output_bucket = self._data_bucket(
            "Output", expiry_days=output_expiry_days, versioned=True, removal=removal
        )
        self.failure_bucket = self._data_bucket(
            "Failure", expiry_days=failure_expiry_days, versioned=True, removal=removal
        )
        # The endpoint configuration's S3OutputPath and S3FailurePath, as the local stack computes them too.
        self.result_paths = ResultPaths(
            output_bucket=self.output_bucket.bucket_name, failure_bucket=self.failure_bucket.bucket_name
        )

    def _data_bucket(self, name: str, *, expiry_days: int, versioned: bool, removal: cdk.RemovalPolicy) -> s3.Bucket:
        rules = [
            s3.LifecycleRule(
                expiration=cdk.Duration.days(expiry_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                noncurrent_version_expiration=cdk.Duration.days(expiry_days) if versioned else None,
            )
        ]
        return s3.Bucket(
            self,
            name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # One data key per bucket per period instead of a KMS call per object.
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=f"{name.lower()}/",
            lifecycle_rules=rules,
            removal_policy=removal,
        )

    def grant_endpoint_io(self, grantee: iam.IGrantable) -> iam.Grant:
        """What SageMaker's execution role needs: read requests, write responses and failures.

        Written out instead of bucket.grant_read/grant_write, which grant wildcard
        actions (s3:GetObject*, s3:List*, s3:DeleteObject*) that the endpoint never uses.
        Not uploads/: clients write there, so the API copies an upload under requests/ and
        SageMaker reads only that copy (docs/api.md, upload flow).
        """
        read = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.input_bucket.arn_for_objects(f"{INPUT_PREFIX}*")],
        )
        write = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resource_arns=[
                self.output_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*"),
                self.failure_bucket.arn_for_objects(f"{FAILURE_PREFIX}*"),
            ],
        )
        # Decrypt to read requests (and to complete multipart uploads); GenerateDataKey to write.
        return read.combine(write).combine(self._grant_data_key(grantee))

    def grant_api_access(self, grantee: iam.IGrantable, *, writes_results: bool) -> iam.Grant:
        """Exactly what the API handler does, written out (bucket.grant_* would add wildcard actions).

        PutObject on uploads/* is what the presigned upload forms carry: S3 authorizes a
        presigned request as the principal that signed it. At submit the handler copies an
        upload into requests/ (GetObject on the source, PutObject on the copy), deletes the
        spent upload, and releases the claim or copy of a refused one: DeleteObject on both.
        `writes_results`: in the real-time and serverless modes the handler itself writes the
        model's answer where SageMaker would put an async result (api_handler/async_api/realtime.py).
        """
        requests = self.input_bucket.arn_for_objects(f"{INPUT_PREFIX}*")
        uploads = self.input_bucket.arn_for_objects(f"{UPLOAD_PREFIX}*")
        outputs = self.output_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*")
        failures = self.failure_bucket.arn_for_objects(f"{FAILURE_PREFIX}*")
        writes = [requests, uploads] + ([outputs, failures] if writes_results else [])
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"], resource_arns=writes)
        for actions, arns in (
            (["s3:GetObject"], [requests, uploads, outputs, failures]),
            (["s3:DeleteObject"], [requests, uploads]),
        ):
            grant = grant.combine(iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=arns))
        # GenerateDataKey to write SSE-KMS objects (also through presigned PUTs), Decrypt to read.
        grant = grant.combine(self._grant_data_key(grantee))
        return grant.combine(self._grant_list_results(grantee, input_prefixes=(INPUT_PREFIX, UPLOAD_PREFIX)))

    def grant_notifier_access(self, grantee: iam.IGrantable) -> iam.Grant:
        """Exactly what the callback notifier does (api_handler/notifier/notify.py), written out.

        It reads receipts and callback states (requests/*/receipt.json, requests/*/callback.json),
        writes callback states, and reads results and failures as GET /invocations/{id} does;
        bucket.grant_* would add wildcard actions and every key of the bucket.
        """
        receipts = self.input_bucket.arn_for_objects(f"{INPUT_PREFIX}*/{RECEIPT_FILE}")
        states = self.input_bucket.arn_for_objects(f"{INPUT_PREFIX}*/{STATE_FILE}")
        outputs = self.output_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*")
        failures = self.failure_bucket.arn_for_objects(f"{FAILURE_PREFIX}*")
        reads = iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[receipts, states, outputs, failures]
        )
        writes = iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"], resource_arns=[states])
        # As for the API: without ListBucket a missing object is a 403, not "not there yet".
        lists = self._grant_list_results(grantee, input_prefixes=(INPUT_PREFIX,))
        # Decrypt to read SSE-KMS objects, GenerateDataKey to write the state object.
        return reads.combine(writes).combine(lists).combine(self._grant_data_key(grantee))

    def _grant_data_key(self, grantee: iam.IGrantable) -> iam.Grant:
        """Decrypt and GenerateDataKey on the data key: what reading and writing SSE-KMS objects needs
        (key.grant_encrypt_decrypt would add kms:Encrypt, kms:ReEncrypt* and GenerateDataKey*)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["kms:Decrypt", "kms:GenerateDataKey"], resource_arns=[self.key.key_arn]
        )

    def _grant_list_results(self, grantee: iam.IGrantable, *, input_prefixes: Sequence[str]) -> iam.Grant:
        """s3:ListBucket on each bucket, only under `input_prefixes` of the input bucket and the
        result prefixes of the output and failure buckets.

        Without ListBucket, S3 answers 403 instead of 404 for a missing object, and a reader could
        not tell "not finished yet" / "unknown id" from a real denial. S3 evaluates that implicit
        ListBucket with the object's key as s3:prefix (observed behaviour, not in the API reference:
        a pending inference answering 500 instead of 202 after a deploy would mean otherwise), so the
        condition keeps the 404s and still denies listing any other prefix.
        """
        grants = (
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["s3:ListBucket"],
                resource_arns=[bucket.bucket_arn],
                conditions=list_within_prefixes_condition(prefixes),
            )
            for bucket, prefixes in (
                (self.input_bucket, input_prefixes),
                (self.output_bucket, (OUTPUT_PREFIX,)),
                (self.failure_bucket, (FAILURE_PREFIX,)),
            )
        )
        return functools.reduce(iam.Grant.combine, grants)


def list_within_prefixes_condition(prefixes: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """The s3:prefix condition that limits s3:ListBucket to keys under `prefixes`.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html
    """
    return {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}}


def list_within_prefixes(bucket: s3.IBucket, prefixes: Sequence[str]) -> iam.PolicyStatement:
    """s3:ListBucket on `bucket` only for keys under `prefixes`."""
    return iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions=list_within_prefixes_condition(prefixes)
    )
