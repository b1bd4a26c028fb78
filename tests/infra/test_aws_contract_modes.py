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

SERVERLESS_CONFIG = ("ProductionVariants", 0, "ServerlessConfig")


def _serverless_config(template: dict) -> tuple[str, dict]:
    lid, config = _one(template, "AWS::SageMaker::EndpointConfig")
    return lid, config["ProductionVariants"][0]


def _set(props: dict, path: tuple[str | int, ...], value: object) -> None:
    """Breaks one member of a real resource: props[path[0]][path[1]]... = value."""
    *parents, last = path
    for key in parents:
        props = props[key]
    props[last] = value


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        # botocore's ProductionVariantServerlessConfig ranges.
        (
            (*SERVERLESS_CONFIG, "MemorySizeInMB"),
            8192,
            ("MemorySizeInMB", "above ServerlessMemorySizeInMB's maximum 6144"),
        ),
        (
            (*SERVERLESS_CONFIG, "MaxConcurrency"),
            201,
            ("MaxConcurrency", "above ServerlessMaxConcurrency's maximum 200"),
        ),
        # The serverless pages: 1 GB steps (not in botocore's range), a variant without instances.
        ((*SERVERLESS_CONFIG, "MemorySizeInMB"), 1536, ("serverless", "1536 is not a multiple of 1024")),
        (("ProductionVariants", 0, "InstanceType"), "ml.g5.xlarge", ("InstanceType next to ServerlessConfig",)),
    ],
    ids=["memory-above-range", "concurrency-above-range", "memory-between-steps", "instance-type"],
)
def test_serverless_config_beyond_the_documented_limits_is_refused(
    serverless: dict, path: tuple[str | int, ...], value: object, fragments: tuple[str, ...]
) -> None:
    lid, config = _one(serverless, "AWS::SageMaker::EndpointConfig")
    _set(config, path, value)
    _assert_finds(serverless, lid, *fragments)


def test_provisioned_above_max_concurrency_is_refused(serverless: dict) -> None:
    lid, variant = _serverless_config(serverless)
    variant["ServerlessConfig"]["ProvisionedConcurrency"] = variant["ServerlessConfig"]["MaxConcurrency"] + 1
    _assert_finds(serverless, lid, "ProvisionedConcurrency", "exceeds MaxConcurrency")


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        (("EnableNetworkIsolation",), True, ("EnableNetworkIsolation",)),
        (
            ("VpcConfig",),
            {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]},
            ("VpcConfig", "do not support VPCs"),
        ),
        (("PrimaryContainer", "Mode"), "MultiModel", ("Mode MultiModel", "do not support multi-model")),
    ],
    ids=["network-isolation", "vpc", "multi-model"],
)
def test_model_features_serverless_lacks_are_refused(
    serverless: dict, path: tuple[str, ...], value: object, fragments: tuple[str, ...]
) -> None:
    """The model a serverless variant serves: the finding names the endpoint configuration serving it."""
    _, model = _one(serverless, "AWS::SageMaker::Model")
    _set(model, path, value)
    lid, _ = _serverless_config(serverless)
    _assert_finds(serverless, lid, *fragments)


def test_second_variant_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    lid, config = _one(serverless, "AWS::SageMaker::EndpointConfig")
    config["ProductionVariants"].append({**config["ProductionVariants"][0], "VariantName": "Second"})
    _assert_finds(serverless, lid, "2 production variants")


def test_canary_on_a_serverless_endpoint_is_refused(serverless: dict) -> None:
    lid, endpoint = _one(serverless, "AWS::SageMaker::Endpoint")
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    routing.update({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}})
    _assert_finds(serverless, lid, "serverless-deployment", "CANARY")


# ------------------------------------------------------------------ scaling per mode


@pytest.mark.parametrize(
    ("mode", "member", "value", "fragments"),
    [
        ("serverless", "MaxCapacity", 500, ("serverless-scaling", "exceeds the variant's MaxConcurrency")),
        (
            "serverless",
            "ScalableDimension",
            "sagemaker:variant:DesiredInstanceCount",
            ("only sagemaker:variant:DesiredProvisionedConcurrency scales",),
        ),
        ("realtime", "MinCapacity", 0, ("realtime-scaling", "only asynchronous endpoints scale to zero")),
    ],
    ids=["serverless-beyond-max-concurrency", "serverless-instance-count", "realtime-to-zero"],
)
def test_scaling_the_mode_does_not_support_is_refused(
    request: pytest.FixtureRequest, mode: str, member: str, value: object, fragments: tuple[str, ...]
) -> None:
    template = request.getfixturevalue(mode)
    lid, target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    target[member] = value
    _assert_finds(template, lid, *fragments)


def test_async_scaling_to_zero_stays_allowed(dev: dict) -> None:
    _, target = _one(dev, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["MinCapacity"] == 0
    assert _findings(dev) == []
