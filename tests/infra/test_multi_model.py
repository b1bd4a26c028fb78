"""hosting.mode 'multimodel': a real-time multi-model endpoint, checked against SageMaker's own contract.

The contract: botocore's sagemaker ContainerDefinition (Mode, ModelDataUrl, MultiModelConfig)
and sagemaker-runtime InvokeEndpoint / InvokeEndpointAsync (TargetModel exists on the first only),
https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html (GPU: Triton only),
https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoint-cloudwatch-metrics.html.
"""

from __future__ import annotations

import copy
import json

import botocore.session
import pytest
from aws_cdk.assertions import Capture, Match, Template

from app_config import ConfigError, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS
from devtools.aws_contract import check_template

ENV = "example-multimodel"


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return synthesized.templates[ENV]


@pytest.fixture(scope="module")
def raw(synthesized) -> dict:
    return json.loads((synthesized.outdir / f"AsyncInference-{ENV}.template.json").read_text())


@pytest.fixture(scope="module")
def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def _env(**changes) -> dict:
    raw = copy.deepcopy(ENVIRONMENTS[ENV])
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


# ----------------------------------------------------------------------------- model and variant
def test_model_is_a_multi_model_container_over_the_prefix(template: Template, sagemaker_model) -> None:
    config = load_environment(ENV)
    container = Capture()
    template.has_resource_properties("AWS::SageMaker::Model", {"PrimaryContainer": container})
    value = container.as_object()
    assert value["Mode"] in sagemaker_model.shape_for("ContainerMode").enum
    assert value["Mode"] == "MultiModel"
    assert value["ModelDataUrl"] == config.model.uri and value["ModelDataUrl"].endswith("/")
    setting = value["MultiModelConfig"]["ModelCacheSetting"]
    assert setting in sagemaker_model.shape_for("ModelCacheSetting").enum
    assert setting == config.hosting.model_cache_setting
    # A single-model container setting has no place here: the model comes from the prefix.
    assert "HF_MODEL_ID" not in value.get("Environment", {})
    assert value["Environment"]["MODEL_SERVER_DEVICE"] == "cpu"
    assert "container-assets" in json.dumps(value["Image"])  # this project's image, not Triton's


def test_variant_is_real_time_on_a_cpu_instance(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": Match.absent(),
            "ProductionVariants": [
                Match.object_like(
                    {"InstanceType": load_environment(ENV).instance_type, "ServerlessConfig": Match.absent()}
                )
            ],
        },
    )


def test_single_model_environments_stay_single_model(synthesized) -> None:
    for name, template in synthesized.templates.items():
        if name == ENV:
            continue
        template.has_resource_properties(
            "AWS::SageMaker::Model",
            {"PrimaryContainer": Match.object_like({"Mode": Match.absent(), "MultiModelConfig": Match.absent()})},
        )


def test_execution_role_reads_objects_under_the_prefix_only(raw: dict) -> None:
    config = load_environment(ENV)
    reads = []
    for resource in raw["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "Execution" not in json.dumps(resource["Properties"]["Roles"]):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "s3:*" not in actions
            if "s3:ListBucket" in actions:
                # Batch transform lists its own input prefix in the stack's input bucket (batch_transform.py);
                # nothing lists the model bucket.
                assert config.model.bucket not in json.dumps(statement["Resource"])
                assert statement["Condition"]["StringLike"]["s3:prefix"] == ["requests/batch/*"]
            if "s3:GetObject" in actions:
                reads += [
                    json.dumps(r)
                    for r in (
                        statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    )
                ]
    on_model_bucket = [r for r in reads if config.model.bucket in r]
    assert on_model_bucket == [
        json.dumps(
            {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{config.model.bucket}/{config.model.prefix}*"],
                ]
            }
        )
    ]


# ----------------------------------------------------------------------------- scaling, alarms, dashboard
def test_scales_on_invocations_per_instance_from_one(template: Template) -> None:
    hosting = load_environment(ENV).hosting
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": hosting.min_capacity,
            "MaxCapacity": hosting.max_capacity,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )
    assert hosting.min_capacity >= 1
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "TargetValue": hosting.invocations_per_instance_target,
                }
            )
        },
    )


def test_model_loading_alarm_reads_the_published_dimensions(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SageMaker",
            "MetricName": "ModelLoadingWaitTime",
            # Average: the metric's valid statistics have no percentiles.
            "Statistic": "Average",
            "Dimensions": Match.array_with(
                [Match.object_like({"Name": "EndpointName"}), {"Name": "VariantName", "Value": "AllTraffic"}]
            ),
        },
    )
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    names = {a["Properties"].get("MetricName") for a in alarms.values()}
    # Queue metrics of async endpoints are never published for a real-time endpoint.
    assert not names & {
        "ApproximateBacklogSize",
        "ApproximateAgeOfOldestRequest",
        "HasBacklogWithoutCapacity",
        "InvocationFailures",
    }


def test_api_invokes_with_invoke_endpoint(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"HOSTING_MODE": "multimodel"})}}
    )
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert 'sagemaker:InvokeEndpoint"' in policies and "sagemaker:InvokeEndpointAsync" not in policies


# ----------------------------------------------------------------------------- the contract check
def test_example_meets_the_contract(raw: dict) -> None:
    assert check_template(raw, image_cuda_version=None) == []


def test_contract_check_refuses_a_prefix_without_slash_and_a_gpu_variant(raw: dict) -> None:
    broken = copy.deepcopy(raw)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::Model":
            resource["Properties"]["PrimaryContainer"]["ModelDataUrl"] = "s3://bucket/models"
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            resource["Properties"]["ProductionVariants"][0]["InstanceType"] = "ml.g5.xlarge"
    facts = {f.fact for f in check_template(broken, image_cuda_version="12.4")}
    assert {"multi-model-prefix", "multi-model-gpu"} <= facts


def test_contract_check_refuses_multi_model_on_an_async_config(raw: dict) -> None:
    broken = copy.deepcopy(raw)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            resource["Properties"]["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://bucket/out"}}
    assert "multi-model-realtime" in {f.fact for f in check_template(broken, image_cuda_version=None)}


def test_contract_check_knows_the_loading_metrics_only_for_multi_model(raw: dict) -> None:
    single = copy.deepcopy(raw)
    for resource in single["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::Model":
            resource["Properties"]["PrimaryContainer"].pop("Mode")
            resource["Properties"]["PrimaryContainer"].pop("MultiModelConfig")
    findings = check_template(single, image_cuda_version=None)
    assert any(f.fact == "metric-published" and "ModelLoadingWaitTime" in f.message for f in findings)


# ----------------------------------------------------------------------------- refused at synth
def test_gpu_instance_type_is_refused_naming_triton_and_the_page() -> None:
    with pytest.raises(ConfigError) as error:
        parse_environment(_env(instance_type="ml.g5.xlarge"))
    message = str(error.value)
    assert (
        "Triton" in message and "https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html" in message
    )
    assert "ml.g5.xlarge" in message


def test_default_instance_type_is_a_gpu_and_refused() -> None:
    with pytest.raises(ConfigError, match="Triton"):
        parse_environment(_env(instance_type=None))


def test_prefix_must_end_in_a_slash() -> None:
    with pytest.raises(ConfigError, match="ending in '/'"):
        parse_environment(_env(model={"kind": "s3_prefix", "uri": "s3://bucket/models"}))


def test_multimodel_needs_a_prefix_and_a_prefix_needs_multimodel() -> None:
    with pytest.raises(ConfigError, match="s3_prefix"):
        parse_environment(_env(model={"kind": "s3", "uri": "s3://bucket/model.tar.gz"}))
    dev = copy.deepcopy(ENVIRONMENTS["dev"])
    dev["model"] = {"kind": "s3_prefix", "uri": "s3://bucket/models/"}
    with pytest.raises(ConfigError, match="multi-model endpoint only"):
        parse_environment(dev)


def test_cache_setting_is_botocores_enum(sagemaker_model) -> None:
    for value in sagemaker_model.shape_for("ModelCacheSetting").enum:
        parse_environment(_env(hosting={**ENVIRONMENTS[ENV]["hosting"], "model_cache_setting": value}))
    with pytest.raises(ConfigError, match="model_cache_setting"):
        parse_environment(_env(hosting={**ENVIRONMENTS[ENV]["hosting"], "model_cache_setting": "On"}))


def test_invoke_endpoint_async_has_no_target_model() -> None:
    """Why multi-model endpoints are real-time: the async call cannot name a model."""
    runtime = botocore.session.get_session().get_service_model("sagemaker-runtime")
    assert "TargetModel" in runtime.operation_model("InvokeEndpoint").input_shape.members
    assert "TargetModel" not in runtime.operation_model("InvokeEndpointAsync").input_shape.members
