"""Template properties of every environment's stack: the documented pitfalls, pinned."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Capture, Match, Template

from app_config import load_environment
from inference_constructs.alarms import rollback_alarm_names
from tests.iam import actions, granted, role_statements
from tests.infra.conftest import ASYNC_ENVIRONMENTS, HUB_ENVIRONMENTS, NVME_ENVIRONMENTS


def _one(template: Template, resource_type: str) -> tuple[str, dict]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _logical_id(template: Template, resource_type: str, id_prefix: str) -> str:
    matches = [lid for lid in template.find_resources(resource_type) if lid.startswith(id_prefix)]
    assert len(matches) == 1, f"{resource_type} {id_prefix}*: {matches}"
    return matches[0]


def _execution_role(template: Template) -> str:
    roles = template.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "sagemaker.amazonaws.com"}}]}
            }
        },
    )
    assert len(roles) == 1
    return next(iter(roles))


# --------------------------------------------------------------------------- async endpoint config


@pytest.mark.parametrize("env_name", ASYNC_ENVIRONMENTS)
def test_async_results_go_to_the_output_and_failure_buckets(template: Template) -> None:
    output = _logical_id(template, "AWS::S3::Bucket", "StorageOutput")
    failure = _logical_id(template, "AWS::S3::Bucket", "StorageFailure")
    key = _logical_id(template, "AWS::KMS::Key", "StorageDataKey")
    success_topic = _logical_id(template, "AWS::SNS::Topic", "NotificationsSuccess")
    error_topic = _logical_id(template, "AWS::SNS::Topic", "NotificationsError")
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": {
                "OutputConfig": {
                    "S3OutputPath": {"Fn::Join": ["", ["s3://", {"Ref": output}, "/responses"]]},
                    "S3FailurePath": {"Fn::Join": ["", ["s3://", {"Ref": failure}, "/failures"]]},
                    "KmsKeyId": {"Fn::GetAtt": [key, "Arn"]},
                    "NotificationConfig": {"SuccessTopic": {"Ref": success_topic}, "ErrorTopic": {"Ref": error_topic}},
                }
            }
        },
    )
    # Responses can be sensitive: they are never copied into notifications.
    _, config = _one(template, "AWS::SageMaker::EndpointConfig")
    assert (
        "IncludeInferenceResponseIn"
        not in config["Properties"]["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
    )


def test_topics_are_encrypted_with_the_notification_key(template: Template) -> None:
    key = _logical_id(template, "AWS::KMS::Key", "NotificationsTopicKey")
    topics = {
        lid: t for lid, t in template.find_resources("AWS::SNS::Topic").items() if lid.startswith("Notifications")
    }
    assert len(topics) == 2
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}


@pytest.mark.parametrize("env_name", ASYNC_ENVIRONMENTS)
def test_variant_and_client_config_follow_the_environment(template: Template, env_name: str) -> None:
    config = load_environment(env_name)
    model = _logical_id(template, "AWS::SageMaker::Model", "InferenceModel")
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": {"Fn::GetAtt": [model, "ModelName"]},
                    "InstanceType": config.instance_type,
                    # CloudFormation rejects 0; scale-to-zero is the scalable target's MinCapacity.
                    "InitialInstanceCount": 1,
                    "ContainerStartupHealthCheckTimeoutInSeconds": config.container_startup_timeout_seconds,
                    "ModelDataDownloadTimeoutInSeconds": config.model_download_timeout_seconds,
                }
            ],
            "AsyncInferenceConfig": {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": config.max_concurrent_invocations_per_instance}
            },
        },
    )


@pytest.mark.parametrize("env_name", NVME_ENVIRONMENTS)
def test_no_storage_volume_key_on_nvme_instances(template: Template, env_name: str) -> None:
    # g4dn and g5 have local NVMe storage: SageMaker rejects an endpoint-config KmsKeyId for them.
    assert load_environment(env_name).has_nvme_storage
    _, config = _one(template, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" not in config["Properties"]


def test_endpoint_keeps_autoscaled_instance_count_on_update(template: Template) -> None:
    config_id = _logical_id(template, "AWS::SageMaker::EndpointConfig", "InferenceConfig")
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointConfigName": {"Fn::GetAtt": [config_id, "EndpointConfigName"]},
            "RetainAllVariantProperties": True,
        },
    )


@pytest.mark.parametrize("env_name", HUB_ENVIRONMENTS)  # multi-model: tests/infra/test_multi_model.py
def test_model_runs_the_image_asset_with_the_model_environment(template: Template, env_name: str) -> None:
    config = load_environment(env_name)
    image = Capture()
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "ExecutionRoleArn": {"Fn::GetAtt": [_execution_role(template), "Arn"]},
            "PrimaryContainer": {
                "Image": image,
                "Environment": Match.object_like({"HF_MODEL_ID": config.model.model_id, "HF_TASK": config.model.task}),
            },
        },
    )
    assert "container-assets" in json.dumps(image.as_object())


# --------------------------------------------------------------------------- names and ordering


# Properties that would give a resource a fixed physical name.
_NAME_PROPERTIES = {
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Key": "KeyName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
}


def test_no_fixed_physical_names(template: Template, env_name: str) -> None:
    named = []
    for resource in template.to_json()["Resources"].values():
        prop = _NAME_PROPERTIES.get(resource["Type"])
        if prop and prop in resource.get("Properties", {}):
            named.append(resource["Properties"][prop])
    # The only exception: the endpoint's rollback alarms, which the endpoint must name before
    # they exist (see alarms.rollback_alarm_names); an alarm is replaced only when its name changes.
    mode = load_environment(env_name).hosting.mode
    assert sorted(named) == sorted(rollback_alarm_names(f"AsyncInference-{env_name}", mode).values())


def test_sagemaker_resources_wait_for_the_role_policy(template: Template) -> None:
    role = _execution_role(template)
    policies = [
        lid
        for lid, policy in template.find_resources("AWS::IAM::Policy").items()
        if {"Ref": role} in policy["Properties"]["Roles"]
    ]
    assert policies, "the execution role has no inline policy"
    for resource_type in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
        _, resource = _one(template, resource_type)
        assert set(policies) <= set(resource.get("DependsOn", [])), resource_type


STATEFUL_LOGICAL_IDS = {
    "AWS::S3::Bucket": {
        "StorageAccessLogs96FB524C",
        "StorageInput124FA7A1",
        "StorageOutputBB69BB33",
        "StorageFailure71FD998B",
    },
    "AWS::KMS::Key": {"StorageDataKeyE15BA43B", "NotificationsTopicKey847416DA"},
    "AWS::SNS::Topic": {"NotificationsSuccess81EF3C92", "NotificationsErrorBEDE5C08"},
    "AWS::SageMaker::Endpoint": {"InferenceEndpointA45980A1"},
}


@pytest.mark.parametrize("resource_type", sorted(STATEFUL_LOGICAL_IDS))
def test_stateful_resources_keep_their_logical_ids(template: Template, resource_type: str) -> None:
    """A renamed construct path changes the logical id, and CloudFormation then REPLACES
    the resource: buckets with results, keys that decrypt them, the live endpoint."""
    assert STATEFUL_LOGICAL_IDS[resource_type] <= set(template.find_resources(resource_type))


# --------------------------------------------------------------------------- execution role


def test_execution_role_has_no_wildcard_or_managed_policies(template: Template) -> None:
    role_id = _execution_role(template)
    role = template.to_json()["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    for statement in role_statements(template, role_id):
        for action in actions(statement):
            assert action != "*"
            service, _, name = action.partition(":")
            if service in ("s3", "sns", "kms", "sagemaker", "iam"):
                assert "*" not in name, f"wildcard action {action}"


def test_execution_role_has_every_grant_it_needs(template: Template) -> None:
    statements = role_statements(template, _execution_role(template))
    ids = {
        name: _logical_id(template, rtype, name)
        for name, rtype in [
            ("StorageInput", "AWS::S3::Bucket"),
            ("StorageOutput", "AWS::S3::Bucket"),
            ("StorageFailure", "AWS::S3::Bucket"),
            ("StorageDataKey", "AWS::KMS::Key"),
            ("NotificationsTopicKey", "AWS::KMS::Key"),
            ("NotificationsSuccess", "AWS::SNS::Topic"),
            ("NotificationsError", "AWS::SNS::Topic"),
        ]
    }
    get_objects = " ".join(granted(statements, "s3:GetObject"))
    assert f'"{ids["StorageInput"]}"' in get_objects and "/requests/*" in get_objects
    assert "/uploads/*" not in get_objects, "clients write uploads/: the endpoint reads only the API's copies"
    put_objects = " ".join(granted(statements, "s3:PutObject"))
    assert f'"{ids["StorageOutput"]}"' in put_objects and "/responses/*" in put_objects
    assert f'"{ids["StorageFailure"]}"' in put_objects and "/failures/*" in put_objects
    assert f'"{ids["StorageInput"]}"' not in put_objects, "the endpoint never writes requests"
    publish = " ".join(granted(statements, "sns:Publish"))
    assert ids["NotificationsSuccess"] in publish and ids["NotificationsError"] in publish
    for key in ("StorageDataKey", "NotificationsTopicKey"):
        assert ids[key] in " ".join(granted(statements, "kms:GenerateDataKey")), key
        assert ids[key] in " ".join(granted(statements, "kms:Decrypt")), key
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken"):
        assert granted(statements, action), action
    assert "/aws/sagemaker/Endpoints/*" in " ".join(granted(statements, "logs:PutLogEvents"))
    assert granted(statements, "cloudwatch:PutMetricData")


# --------------------------------------------------------------------------- storage and topics


def test_data_buckets_are_private_encrypted_logged_and_expire(template: Template, env_name: str) -> None:
    storage = load_environment(env_name).storage
    key = _logical_id(template, "AWS::KMS::Key", "StorageDataKey")
    logs = _logical_id(template, "AWS::S3::Bucket", "StorageAccessLogs")
    for name, days in (
        ("StorageInput", storage.input_expiry_days),
        ("StorageOutput", storage.output_expiry_days),
        ("StorageFailure", storage.failure_expiry_days),
    ):
        bucket_id = _logical_id(template, "AWS::S3::Bucket", name)
        bucket = template.to_json()["Resources"][bucket_id]["Properties"]
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
        }
        assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs}
        assert {"ExpirationInDays": days, "Status": "Enabled"}.items() <= bucket["LifecycleConfiguration"]["Rules"][
            0
        ].items()
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_bucket_and_topic_refuses_plain_http(template: Template) -> None:
    insecure = Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    for bucket_id in template.find_resources("AWS::S3::Bucket"):
        template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {"Bucket": {"Ref": bucket_id}, "PolicyDocument": {"Statement": Match.array_with([insecure])}},
        )
    for topic_id in template.find_resources("AWS::SNS::Topic"):
        template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {"Topics": [{"Ref": topic_id}], "PolicyDocument": {"Statement": Match.array_with([insecure])}},
        )


def test_prod_retains_data_and_dev_does_not(synthesized) -> None:
    for env_name, policy in (("prod", "Retain"), ("dev", "Delete")):
        template = synthesized.templates[env_name]
        for bucket_id in STATEFUL_LOGICAL_IDS["AWS::S3::Bucket"]:
            assert template.to_json()["Resources"][bucket_id]["DeletionPolicy"] == policy, (env_name, bucket_id)


def test_outputs_name_the_endpoint_buckets_and_topics(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs["EndpointName"]["Value"] == {
        "Fn::GetAtt": [_logical_id(template, "AWS::SageMaker::Endpoint", "InferenceEndpoint"), "EndpointName"]
    }
    for output, prefix in (
        ("InputBucketName", "StorageInput"),
        ("OutputBucketName", "StorageOutput"),
        ("FailureBucketName", "StorageFailure"),
        ("SuccessTopicArn", "NotificationsSuccess"),
        ("ErrorTopicArn", "NotificationsError"),
    ):
        assert outputs[output]["Value"] == {
            "Ref": next(lid for lid in template.to_json()["Resources"] if lid.startswith(prefix))
        }, output


def test_image_asset_is_built_for_linux_amd64(synthesized, env_name: str) -> None:
    assets = json.loads((synthesized.outdir / f"AsyncInference-{env_name}.assets.json").read_text())
    images = list(assets["dockerImages"].values())
    assert images and all(image["source"].get("platform") == "linux/amd64" for image in images)
