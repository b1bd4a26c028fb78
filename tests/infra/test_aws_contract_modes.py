"""The contract check (devtools/aws_contract) on real-time and serverless templates, and proof that it bites.

Each rule gets a deliberately broken copy of a real synthesized template (example-realtime,
example-serverless): the check must name the resource and the documented fact.
"""

from __future__ import annotations

import copy

import pytest

from app_config.image_cuda import image_cuda_version
from devtools.aws_contract import check_template
from devtools.aws_contract.documented_facts import ASYNC_METRICS_PAGE, SERVERLESS_METRICS_PAGE, template_modes
from tests.infra.conftest import ROOT, Synthesized

CUDA = image_cuda_version(ROOT / "container")


@pytest.fixture
def realtime(synthesized: Synthesized) -> dict:
    return copy.deepcopy(synthesized.templates["example-realtime"].to_json())


@pytest.fixture
def serverless(synthesized: Synthesized) -> dict:
    return copy.deepcopy(synthesized.templates["example-serverless"].to_json())


@pytest.fixture
def dev(synthesized: Synthesized) -> dict:
    return copy.deepcopy(synthesized.templates["dev"].to_json())


def _findings(template: dict) -> list[str]:
    return [str(f) for f in check_template(template, image_cuda_version=CUDA)]


def _assert_finds(template: dict, *fragments: str) -> None:
    findings = _findings(template)
    assert any(all(fragment in finding for fragment in fragments) for finding in findings), (fragments, findings)


def _one(template: dict, kind: str, where=lambda props: True) -> tuple[str, dict]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == kind and where(resource.get("Properties", {})):
            return logical_id, resource["Properties"]
    raise AssertionError(f"no {kind}")


def test_modes_are_read_from_the_endpoint_configuration(realtime: dict, serverless: dict, dev: dict) -> None:
    assert (template_modes(dev), template_modes(realtime), template_modes(serverless)) == (
        {"async"},
        {"realtime"},
        {"serverless"},
    )


@pytest.mark.parametrize("env", ["example-realtime", "example-serverless"])
def test_example_environments_meet_the_contract(synthesized: Synthesized, env: str) -> None:
    assert _findings(synthesized.templates[env].to_json()) == []


# ------------------------------------------------------------------ metrics per mode


def test_a_queue_metric_on_a_realtime_endpoint_never_receives_data(realtime: dict) -> None:
    lid, alarm = _one(realtime, "AWS::CloudWatch::Alarm", lambda p: p.get("MetricName") == "ModelLatency")
    alarm["MetricName"] = "ApproximateBacklogSize"
    _assert_finds(realtime, lid, "metric-published", "ApproximateBacklogSize", "realtime endpoint")


def test_invocations_per_instance_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    # Serverless endpoints have no instances; the serverless page's list is exhaustive.
    lid, alarm = _one(serverless, "AWS::CloudWatch::Alarm", lambda p: p.get("MetricName") == "ModelLatency")
    alarm["MetricName"] = "InvocationsPerInstance"
    _assert_finds(serverless, lid, "InvocationsPerInstance", SERVERLESS_METRICS_PAGE)


def test_realtime_metric_read_without_the_variant_dimension(realtime: dict) -> None:
    lid, alarm = _one(realtime, "AWS::CloudWatch::Alarm", lambda p: p.get("MetricName") == "Invocation5XXErrors")
    alarm["Dimensions"] = [d for d in alarm["Dimensions"] if d["Name"] == "EndpointName"]
    _assert_finds(realtime, lid, "metric-dimensions", "Invocation5XXErrors", "never receives data")


def test_realtime_metrics_are_still_refused_on_async_endpoints(dev: dict) -> None:
    lid, alarm = _one(dev, "AWS::CloudWatch::Alarm", lambda p: p.get("MetricName") == "Invocation5XXErrors")
    alarm["MetricName"] = "OverheadLatency"
    _assert_finds(dev, lid, "OverheadLatency is not published for asynchronous endpoints", ASYNC_METRICS_PAGE)


# ------------------------------------------------------------------ serverless limits


def _serverless_config(template: dict) -> tuple[str, dict]:
    lid, config = _one(template, "AWS::SageMaker::EndpointConfig")
    return lid, config["ProductionVariants"][0]


def test_memory_outside_botocores_range_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["ServerlessConfig"]["MemorySizeInMB"] = 8192
    _assert_finds(serverless, lid, "MemorySizeInMB", "above ServerlessMemorySizeInMB's maximum 6144")


def test_memory_between_the_gigabyte_steps_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["ServerlessConfig"]["MemorySizeInMB"] = 1536
    _assert_finds(serverless, lid, "serverless", "1536 is not a multiple of 1024")


def test_max_concurrency_above_200_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["ServerlessConfig"]["MaxConcurrency"] = 201
    _assert_finds(serverless, lid, "MaxConcurrency", "above ServerlessMaxConcurrency's maximum 200")


def test_provisioned_above_max_concurrency_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["ServerlessConfig"]["ProvisionedConcurrency"] = variant["ServerlessConfig"]["MaxConcurrency"] + 1
    _assert_finds(serverless, lid, "ProvisionedConcurrency", "exceeds MaxConcurrency")


def test_instance_type_next_to_serverless_config_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["InstanceType"] = "ml.g5.xlarge"
    _assert_finds(serverless, lid, "InstanceType next to ServerlessConfig")


def test_network_isolation_on_a_serverless_model_is_refused(serverless: dict) -> None:
    _, model = _one(serverless, "AWS::SageMaker::Model")
    model["EnableNetworkIsolation"] = True
    lid, _ = _serverless_config(serverless)
    _assert_finds(serverless, lid, "EnableNetworkIsolation")


def test_multi_model_container_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    _, model = _one(serverless, "AWS::SageMaker::Model")
    model["PrimaryContainer"]["Mode"] = "MultiModel"
    lid, _ = _serverless_config(serverless)
    _assert_finds(serverless, lid, "Mode MultiModel", "do not support multi-model")


def test_second_variant_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    lid, config = _one(serverless, "AWS::SageMaker::EndpointConfig")
    config["ProductionVariants"].append({**config["ProductionVariants"][0], "VariantName": "Second"})
    _assert_finds(serverless, lid, "2 production variants")


def test_canary_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    lid, endpoint = _one(serverless, "AWS::SageMaker::Endpoint")
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    routing.update({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}})
    _assert_finds(serverless, lid, "serverless-deployment", "CANARY")


def test_provisioned_scaling_beyond_max_concurrency_is_refused(serverless: dict) -> None:
    lid, target = _one(serverless, "AWS::ApplicationAutoScaling::ScalableTarget")
    target["MaxCapacity"] = 500
    _assert_finds(serverless, lid, "serverless-scaling", "exceeds the variant's MaxConcurrency")


def test_instance_count_scaling_on_a_serverless_variant_is_refused(serverless: dict) -> None:
    lid, target = _one(serverless, "AWS::ApplicationAutoScaling::ScalableTarget")
    target["ScalableDimension"] = "sagemaker:variant:DesiredInstanceCount"
    _assert_finds(serverless, lid, "only sagemaker:variant:DesiredProvisionedConcurrency scales")


# ------------------------------------------------------------------ real-time scaling


def test_realtime_scaling_to_zero_is_refused(realtime: dict) -> None:
    lid, target = _one(realtime, "AWS::ApplicationAutoScaling::ScalableTarget")
    target["MinCapacity"] = 0
    _assert_finds(realtime, lid, "realtime-scaling", "only asynchronous endpoints scale to zero")


def test_async_scaling_to_zero_stays_allowed(dev: dict) -> None:
    _, target = _one(dev, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["MinCapacity"] == 0
    assert _findings(dev) == []
