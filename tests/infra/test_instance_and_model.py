"""Instance types, GPU drivers, the container's device, model pinning, network isolation, API names.

The contracts: botocore's sagemaker service model (instance type and AMI enums), AWS's
inference-gpu-drivers page (app_config/gpu_drivers.py), and `cdk synth`'s own exit.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

import app as cdk_app
from api_handler.async_api.settings import MAX_ASYNC_PAYLOAD_BYTES
from app_config import ConfigError, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS
from app_config.gpu_drivers import INFERENCE_AMIS, UnsupportedInstanceType, inference_ami_for
from app_config.image_cuda import image_cuda_version
from devtools.aws_contract.service_models import enum_values
from stacks.async_inference_stack import AsyncInferenceStack
from tests.infra.conftest import HUB_ENVIRONMENTS, ROOT, cdk_context, environments_in_mode


def _raw(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(ENVIRONMENTS["dev"]), **changes}


def _synth(tmp_path, **changes: Any) -> Template:
    stack = AsyncInferenceStack(
        cdk.App(outdir=str(tmp_path), context=cdk_context()),
        "Variant",
        config=parse_environment(_raw(**changes)),
        container_dir=ROOT / "container",
        build_dir=tmp_path / "build",
    )
    return Template.from_stack(stack)


def _cdk_synth(monkeypatch, capsys, tmp_path, raw: dict[str, Any]) -> str:
    """Run app.py's main() as `cdk synth -c env=candidate` does; return stderr, expecting exit 1."""
    monkeypatch.setitem(ENVIRONMENTS, "candidate", {**raw, "name": "candidate"})
    # The CLI hands main() its context through the environment of the (already running) jsii
    # process; here the App gets it directly.
    app_class = cdk.App
    monkeypatch.setattr(
        cdk_app.cdk, "App", lambda: app_class(outdir=str(tmp_path), context=cdk_context(env="candidate"))
    )
    with pytest.raises(SystemExit) as exited:
        cdk_app.main()
    assert exited.value.code == 1
    return capsys.readouterr().err


# ------------------------------------------------------------------------ instance types


def test_synth_refuses_an_instance_type_sagemaker_does_not_have(monkeypatch, capsys, tmp_path) -> None:
    error = _cdk_synth(monkeypatch, capsys, tmp_path, _raw(instance_type="ml.g4dn.huge"))
    assert "instance_type = 'ml.g4dn.huge'" in error and "ProductionVariantInstanceType" in error
    assert "did you mean ml.g4dn.xlarge" in error


def test_synth_refuses_a_gpu_type_no_supported_ami_covers(monkeypatch, capsys, tmp_path) -> None:
    # ml.p3 is a real SageMaker type (in botocore's enum) that no AMI for this image's CUDA supports.
    assert "ml.p3.2xlarge" in enum_values("sagemaker", "ProductionVariantInstanceType")
    error = _cdk_synth(monkeypatch, capsys, tmp_path, _raw(instance_type="ml.p3.2xlarge"))
    assert "'ml.p3.2xlarge'" in error and "no SageMaker inference AMI" in error and "inference-gpu-drivers" in error


def test_every_type_the_api_knows_is_accepted_or_refused_by_name() -> None:
    """Every ProductionVariantInstanceType either configures or fails naming the value."""
    for instance_type in enum_values("sagemaker", "ProductionVariantInstanceType"):
        try:
            parse_environment(_raw(instance_type=instance_type, allow_cpu_instance=True))
        except ConfigError as error:
            assert repr(instance_type) in str(error)


def test_cpu_type_needs_an_explicit_opt_in() -> None:
    with pytest.raises(ConfigError, match=r"instance_type 'ml.c5.xlarge' has no GPU: set allow_cpu_instance"):
        parse_environment(_raw(instance_type="ml.c5.xlarge"))
    with pytest.raises(ConfigError, match=r"'ml.inf2.xlarge' is an AWS Inferentia/Trainium"):
        parse_environment(_raw(instance_type="ml.inf2.xlarge", allow_cpu_instance=True))
    for graviton in ("ml.c7g.xlarge", "ml.m6gd.large", "ml.c6gn.xlarge"):
        with pytest.raises(ConfigError, match=rf"'{graviton}' is a Graviton \(arm64\) type"):
            parse_environment(_raw(instance_type=graviton, allow_cpu_instance=True))
    parse_environment(_raw(instance_type="ml.c7i.xlarge", allow_cpu_instance=True))


def test_cpu_type_runs_the_container_on_cpu_without_an_ami(tmp_path) -> None:
    template = _synth(tmp_path, instance_type="ml.c5.xlarge", allow_cpu_instance=True)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Environment": Match.object_like({"MODEL_SERVER_DEVICE": "cpu"})}},
    )
    [config] = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    assert "InferenceAmiVersion" not in config["Properties"]["ProductionVariants"][0]


def test_storage_volume_key_on_an_ebs_instance_is_the_data_key(tmp_path) -> None:
    """CreateEndpointConfig's KmsKeyId encrypts the ML storage volume (EBS-backed types only)."""
    template = _synth(tmp_path, instance_type="ml.c5.xlarge", allow_cpu_instance=True, encrypt_storage_volume=True)
    [config] = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    key_id, attribute = config["Properties"]["KmsKeyId"]["Fn::GetAtt"]
    assert attribute == "Arn"
    assert template.to_json()["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    # The same customer-managed key that encrypts the request and result buckets.
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": Match.object_like(
                                {"KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]}}
                            )
                        }
                    )
                ]
            }
        },
    )


@pytest.mark.parametrize("env_name", environments_in_mode("async", "realtime"))
def test_shipped_gpu_environments_run_cuda_on_a_driver_for_the_images_cuda(template: Template, env_name: str) -> None:
    config = load_environment(env_name)
    cuda = image_cuda_version(ROOT / "container")
    [endpoint_config] = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    variant = endpoint_config["Properties"]["ProductionVariants"][0]
    ami = next(a for a in INFERENCE_AMIS if a.name == variant["InferenceAmiVersion"])
    assert config.instance_family in ami.families
    assert ami.cuda >= tuple(int(x) for x in cuda.split("."))
    assert variant["InferenceAmiVersion"] in enum_values("sagemaker", "ProductionVariantInferenceAmiVersion")
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Environment": Match.object_like(
                    {
                        "MODEL_SERVER_DEVICE": "cuda",
                        # The largest request the API can submit: SageMaker's async payload limit (1 GB).
                        "MODEL_SERVER_MAX_REQUEST_BYTES": str(MAX_ASYNC_PAYLOAD_BYTES),
                    }
                )
            }
        },
    )
    assert MAX_ASYNC_PAYLOAD_BYTES >= 10**9


def test_every_ami_of_the_table_is_one_the_api_accepts() -> None:
    assert {ami.name for ami in INFERENCE_AMIS} <= set(enum_values("sagemaker", "ProductionVariantInferenceAmiVersion"))


@pytest.mark.parametrize(
    ("instance_type", "cuda", "expected"),
    [
        ("ml.g6.xlarge", "12.2", "al2-ami-sagemaker-inference-gpu-2"),
        ("ml.g5.xlarge", "12.4", "al2-ami-sagemaker-inference-gpu-3-1"),
        ("ml.g4dn.xlarge", "12.8", "al2023-ami-sagemaker-inference-gpu-4-1"),
        ("ml.g6e.xlarge", "13.0", "al2023-ami-sagemaker-inference-gpu-4-1"),
        ("ml.c5.xlarge", "13.0", None),
    ],
)
def test_oldest_sufficient_driver_is_chosen(instance_type: str, cuda: str, expected: str | None) -> None:
    assert inference_ami_for(instance_type, cuda) == expected


@pytest.mark.parametrize(
    ("instance_type", "cuda"), [("ml.g5.xlarge", "13.1"), ("ml.p3.2xlarge", "12.4"), ("ml.g5.xlarge", None)]
)
def test_no_covering_ami_is_an_error_naming_the_type(instance_type: str, cuda: str | None) -> None:
    with pytest.raises(UnsupportedInstanceType, match=repr(instance_type)):
        inference_ami_for(instance_type, cuda)


@pytest.mark.parametrize(
    ("base_image", "constraints", "expected"),
    [
        ("pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime", "", "12.8"),
        ("nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", "", "12.4"),
        ("python:3.11.14-slim-bookworm", "numpy==2.0.0\nnvidia-cuda-runtime-cu12==12.8.90\n", "12.8"),
        ("python:3.11.14-slim-bookworm", "nvidia-cuda-runtime==13.0.96\n", "13.0"),
        ("python:3.11.14-slim-bookworm", "numpy==2.0.0\n", None),
    ],
)
def test_image_cuda_version_comes_from_where_the_image_gets_cuda(
    tmp_path, base_image: str, constraints: str, expected: str | None
) -> None:
    (tmp_path / "Dockerfile").write_text(f"ARG BASE_IMAGE={base_image}\nFROM ${{BASE_IMAGE}}\n")
    (tmp_path / "constraints.txt").write_text(constraints)
    assert image_cuda_version(tmp_path) == expected


def test_container_environment_cannot_contradict_the_stack() -> None:
    with pytest.raises(ConfigError, match="'MODEL_SERVER_DEVICE' is set by the stack"):
        parse_environment(_raw(container_environment={"MODEL_SERVER_DEVICE": "cpu"}))


# ------------------------------------------------------------------------ model pinning and isolation


@pytest.mark.parametrize("env_name", HUB_ENVIRONMENTS)
def test_shipped_hub_models_are_pinned_to_a_commit(template: Template, env_name: str) -> None:
    model = load_environment(env_name).model
    assert model.kind == "hub" and len(model.revision) == 40 and int(model.revision, 16) >= 0
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Environment": Match.object_like({"HF_MODEL_REVISION": model.revision})}},
    )


def test_revision_must_be_a_full_commit() -> None:
    with pytest.raises(ConfigError, match=r"model.hub.revision = 'main': 'main' is not a commit id"):
        parse_environment(_raw(model={"kind": "hub", "model_id": "org/model", "revision": "main"}))


def test_unpinned_hub_model_warns_at_synth(tmp_path) -> None:
    template_stack = AsyncInferenceStack(
        cdk.App(outdir=str(tmp_path), context=cdk_context()),
        "Unpinned",
        config=parse_environment(_raw(model={"kind": "hub", "model_id": "org/model"})),
        container_dir=ROOT / "container",
        build_dir=tmp_path / "build",
    )
    Annotations.from_stack(template_stack).has_warning(
        "*", Match.string_like_regexp("hub model 'org/model' has no revision")
    )


def test_network_isolation_is_refused_for_hub_models() -> None:
    with pytest.raises(ConfigError, match="enable_network_isolation=True with a hub model"):
        parse_environment(_raw(enable_network_isolation=True))


def test_network_isolation_for_an_s3_model(tmp_path) -> None:
    template = _synth(
        tmp_path, enable_network_isolation=True, model={"kind": "s3", "uri": "s3://models-bucket/m/model.tar.gz"}
    )
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"EnableNetworkIsolation": True, "PrimaryContainer": {"ModelDataUrl": "s3://models-bucket/m/model.tar.gz"}},
    )
    assert "EnableNetworkIsolation" not in json.dumps(
        _synth(tmp_path / "off", model={"kind": "s3", "uri": "s3://models-bucket/m/model.tar.gz"}).find_resources(
            "AWS::SageMaker::Model"
        )
    )


# ------------------------------------------------------------------------ names per environment


def test_each_environment_names_its_rest_api(synthesized) -> None:
    names = {}
    for env_name, template in synthesized.templates.items():
        [api] = template.find_resources("AWS::ApiGateway::RestApi").values()
        names[env_name] = api["Properties"]["Name"]
        # The API alarms watch this API's name, not another environment's.
        [latency] = template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"Namespace": "AWS/ApiGateway", "MetricName": "Latency"}}
        ).values()
        assert {d["Name"]: d["Value"] for d in latency["Properties"]["Dimensions"]}["ApiName"] == names[env_name]
    assert names == {name: f"async-inference-{name}" for name in synthesized.templates}
    assert len(set(names.values())) == len(names)
