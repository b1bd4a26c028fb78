"""hosting.mode: realtime and serverless beside async, checked against AWS's contracts.

- The example environments (example-realtime, example-serverless) as synthesized by `make synth`.
- Config limits compared with botocore's sagemaker ProductionVariantServerlessConfig and the
  documented exclusions of serverless endpoints (refused at synth, naming the reason).
- Changing the mode of one environment changes only the endpoint, its scaling, its alarms and
  dashboard (and the API handler's mode and invoke grant): compared resource by resource.
"""

from __future__ import annotations

import copy
from typing import Any

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk.assertions import Match, Template

from app_config import ConfigError, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS
from app_config.hosting import SERVERLESS_MEMORY_SIZES_MB, ServerlessHosting
from inference_constructs.alarms import rollback_alarm_names
from stacks.async_inference_stack import AsyncInferenceStack
from tests.infra.conftest import ROOT, Synthesized, cdk_context

VARIANT_METRIC_DIMENSIONS = [
    {"Name": "EndpointName", "Value": {"Fn::GetAtt": [Match.string_like_regexp("^InferenceEndpoint"), "EndpointName"]}},
    {"Name": "VariantName", "Value": "AllTraffic"},
]


def _resources(template: Template, kind: str) -> dict[str, dict]:
    return template.find_resources(kind)


def _variant(template: Template) -> tuple[dict, dict]:
    [config] = _resources(template, "AWS::SageMaker::EndpointConfig").values()
    [variant] = config["Properties"]["ProductionVariants"]
    return config["Properties"], variant


def _assert_target_tracking(
    template: Template,
    *,
    dimension: str,
    capacity: tuple[int | None, int | None],
    predefined_metric: str,
    target: float,
) -> None:
    """The variant scales `dimension` within `capacity` (min, max), tracking `target` of a predefined metric.

    Application Auto Scaling's RegisterScalableTarget and PutScalingPolicy, as CloudFormation writes them.
    """
    low, high = capacity
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"ScalableDimension": dimension, "MinCapacity": low, "MaxCapacity": high},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": predefined_metric},
                "TargetValue": target,
            },
        },
    )


# ------------------------------------------------------------------ example-realtime


@pytest.fixture(scope="module")
def realtime(synthesized: Synthesized) -> Template:
    return synthesized.templates["example-realtime"]


@pytest.fixture(scope="module")
def serverless(synthesized: Synthesized) -> Template:
    return synthesized.templates["example-serverless"]


def test_realtime_endpoint_has_no_async_config_and_at_least_one_instance(realtime: Template) -> None:
    config, variant = _variant(realtime)
    hosting = load_environment("example-realtime")
    assert "AsyncInferenceConfig" not in config
    assert variant["InstanceType"] == hosting.instance_type
    # Starts at its minimum (>= 1): a real-time endpoint never has fewer instances than that.
    assert variant["InitialInstanceCount"] == hosting.hosting.min_capacity >= 1
    assert "ServerlessConfig" not in variant
    # A CUDA image on a GPU host still needs the driver (same as async).
    assert variant["InferenceAmiVersion"].startswith("al2")


def test_realtime_scales_on_invocations_per_instance_with_the_documented_target(realtime: Template) -> None:
    hosting = load_environment("example-realtime").hosting
    _assert_target_tracking(
        realtime,
        dimension="sagemaker:variant:DesiredInstanceCount",
        capacity=(hosting.min_capacity, hosting.max_capacity),
        predefined_metric="SageMakerVariantInvocationsPerInstance",
        # AWS's load-testing guide: target = peak RPS per instance x safety factor 0.5 x 60 (per minute).
        target=hosting.peak_requests_per_second_per_instance * 0.5 * 60,
    )
    # None of the async machinery: no queue metric anywhere in the template.
    body = str(realtime.to_json())
    for metric in (
        "ApproximateBacklogSize",
        "HasBacklogWithoutCapacity",
        "ApproximateAgeOfOldestRequest",
        "InvocationFailures",
    ):
        assert metric not in body, metric


def test_realtime_min_capacity_zero_is_refused() -> None:
    raw = {**copy.deepcopy(ENVIRONMENTS["example-realtime"]), "hosting": {"mode": "realtime", "min_capacity": 0}}
    with pytest.raises(
        ConfigError, match=r"hosting\.realtime\.min_capacity = 0: Input should be greater than or equal to 1"
    ):
        parse_environment(raw)


@pytest.mark.parametrize("env", ["example-realtime", "example-serverless"])
def test_deployments_roll_back_on_5xx_and_model_latency_alarms(synthesized: Synthesized, env: str) -> None:
    template = synthesized.templates[env]
    names = rollback_alarm_names(f"AsyncInference-{env}", load_environment(env).hosting.mode)
    assert set(names) == {"Invocation5XXErrors", "ModelLatency"}
    for metric, name in names.items():
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": name,
                "MetricName": metric,
                "Namespace": "AWS/SageMaker",
                "Dimensions": VARIANT_METRIC_DIMENSIONS,
            },
        )
    [endpoint] = _resources(template, "AWS::SageMaker::Endpoint").values()
    rollback = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert sorted(a["AlarmName"] for a in rollback) == sorted(names.values())


def test_realtime_deploys_as_a_canary(realtime: Template) -> None:
    [endpoint] = _resources(realtime, "AWS::SageMaker::Endpoint").values()
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY" and routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}


# ------------------------------------------------------------------ example-serverless


def test_serverless_variant_has_serverless_config_and_no_instances(serverless: Template) -> None:
    config, variant = _variant(serverless)
    hosting = load_environment("example-serverless").hosting
    assert isinstance(hosting, ServerlessHosting)
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": hosting.memory_size_mb,
        "MaxConcurrency": hosting.max_concurrency,
        "ProvisionedConcurrency": hosting.provisioned_concurrency,
    }
    for member in ("InstanceType", "InitialInstanceCount", "InferenceAmiVersion"):
        assert member not in variant, member
    assert "AsyncInferenceConfig" not in config and "KmsKeyId" not in config
    serverless.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Environment": Match.object_like({"MODEL_SERVER_DEVICE": "cpu"})}},
    )


def test_serverless_scales_provisioned_concurrency_on_its_utilization(serverless: Template) -> None:
    hosting = load_environment("example-serverless").hosting
    assert isinstance(hosting, ServerlessHosting)
    _assert_target_tracking(
        serverless,
        dimension="sagemaker:variant:DesiredProvisionedConcurrency",
        capacity=(hosting.provisioned_concurrency, hosting.max_provisioned_concurrency),
        predefined_metric="SageMakerVariantProvisionedConcurrencyUtilization",
        target=hosting.provisioned_utilization_target,
    )


def test_serverless_alarms_watch_cold_starts_and_concurrency(serverless: Template) -> None:
    for metric in ("ModelSetupTime", "ServerlessConcurrentExecutionsUtilization"):
        serverless.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {"MetricName": metric, "Namespace": "AWS/SageMaker", "Dimensions": VARIANT_METRIC_DIMENSIONS},
        )
    [endpoint] = _resources(serverless, "AWS::SageMaker::Endpoint").values()
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE"


# ------------------------------------------------------------------ serverless limits vs botocore


def _serverless_shape() -> Any:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.shape_for("ProductionVariantServerlessConfig")


def test_memory_sizes_lie_within_botocores_range() -> None:
    memory = _serverless_shape().members["MemorySizeInMB"].metadata
    assert all(memory["min"] <= size <= memory["max"] for size in SERVERLESS_MEMORY_SIZES_MB)
    assert (min(SERVERLESS_MEMORY_SIZES_MB), max(SERVERLESS_MEMORY_SIZES_MB)) == (memory["min"], memory["max"])


@pytest.mark.parametrize(
    "member,field", [("MaxConcurrency", "max_concurrency"), ("ProvisionedConcurrency", "provisioned_concurrency")]
)
def test_concurrency_bounds_are_botocores(member: str, field: str) -> None:
    bounds = _serverless_shape().members[member].metadata
    base = {"mode": "serverless", "max_concurrency": 200}
    ServerlessHosting.model_validate({**base, field: bounds["max"]})
    ServerlessHosting.model_validate({**base, field: bounds["min"]})
    for outside in (bounds["min"] - 1, bounds["max"] + 1):
        with pytest.raises(ValueError):
            ServerlessHosting.model_validate({**base, field: outside})


def _serverless(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(ENVIRONMENTS["example-serverless"])
    hosting = changes.pop("hosting", {})
    raw["hosting"] = {**raw["hosting"], **hosting}
    return {**raw, **changes}


@pytest.mark.parametrize(
    "changes,fragments",
    [
        ({"instance_type": "ml.g5.xlarge"}, ["instance_type='ml.g5.xlarge' (a GPU instance type)", "no GPUs"]),
        (
            {"instance_type": "ml.c5.xlarge", "allow_cpu_instance": True},
            ["serverless endpoints run on CPU capacity SageMaker picks"],
        ),
        (
            {"enable_network_isolation": True, "model": {"kind": "s3", "uri": "s3://bucket-name/model.tar.gz"}},
            ["do not support network isolation"],
        ),
        ({"deployment": {"strategy": "canary"}}, ["deployment.strategy='canary'", "a serverless variant has none"]),
        ({"deployment": {"strategy": "linear"}}, ["deployment.strategy='linear'"]),
        ({"encrypt_storage_volume": True}, ["no ML storage volume"]),
        ({"hosting": {"memory_size_mb": 1500}}, ["memory_size_mb=1500", "1024, 2048, 3072, 4096, 5120, 6144"]),
        ({"hosting": {"memory_size_mb": 8192}}, ["memory_size_mb=8192"]),
        (
            {"hosting": {"max_concurrency": 4, "provisioned_concurrency": 5, "max_provisioned_concurrency": None}},
            ["provisioned_concurrency (5) must not exceed max_concurrency (4)"],
        ),
        ({"hosting": {"max_provisioned_concurrency": 11}}, ["max_provisioned_concurrency (11) must be between"]),
        (
            {"hosting": {"max_concurrency": 201}},
            ["hosting.serverless.max_concurrency = 201", "less than or equal to 200"],
        ),
        ({"hosting": {"instance_count": 2}}, ["hosting.serverless.instance_count", "Extra inputs are not permitted"]),
    ],
)
def test_serverless_refuses_what_it_does_not_support(changes: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_environment(_serverless(**changes))
    for fragment in fragments:
        assert fragment in str(raised.value), (fragment, str(raised.value))


def test_unknown_mode_names_the_choices() -> None:
    raw = {**copy.deepcopy(ENVIRONMENTS["dev"]), "hosting": {"mode": "batch"}}
    with pytest.raises(ConfigError, match=r"hosting: .*'async', 'realtime', 'serverless'"):
        parse_environment(raw)


# ------------------------------------------------------------------ changing the mode


def _synth_in_mode(tmp_path, hosting: dict[str, Any]) -> dict[str, dict]:
    raw = {
        "name": "modes",
        "model": copy.deepcopy(ENVIRONMENTS["dev"]["model"]),
        "alarm_email": "ops@example.com",
        "hosting": hosting,
    }
    app = cdk.App(outdir=str(tmp_path / hosting["mode"]), context=cdk_context())
    stack = AsyncInferenceStack(
        app,
        "AsyncInference-modes",
        config=parse_environment(raw),
        container_dir=ROOT / "container",
        build_dir=tmp_path / "build",
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    # The image tag is the hash of container/: equal in both modes unless container/ changed
    # between the two synths (another edit in the working tree); the comparison is about modes.
    for resource in resources.values():
        if resource["Type"] == "AWS::SageMaker::Model":
            resource["Properties"]["PrimaryContainer"]["Image"] = "IMAGE"
    return resources


# What a mode change may touch: the endpoint (model environment, config, endpoint), its scaling,
# its alarms and dashboard, the execution role's permission to read the (renamed) rollback alarms,
# the API handler's HOSTING_MODE variable and invoke/result grants, and the completion callbacks,
# which follow an async endpoint's SNS notifications and exist only in async mode.
MODE_SPECIFIC = (
    "Inference",
    "Scaling",
    "Alarms",
    "Dashboard",
    "ExecutionRoleDefaultPolicy",
    "ApiHandler",
    "ApiHandlerRoleDefaultPolicy",
    "Callbacks",
)
SHARED = ("AlarmsTopic", "ApiHandlerLogs", "ApiHandlerRole")


def _may_change(logical_id: str) -> bool:
    shared = any(logical_id.startswith(p) for p in SHARED) and not logical_id.startswith("ApiHandlerRoleDefaultPolicy")
    return not shared and any(logical_id.startswith(prefix) for prefix in MODE_SPECIFIC)


@pytest.mark.parametrize("other", [{"mode": "realtime"}, {"mode": "serverless"}])
def test_changing_the_mode_changes_only_the_endpoint_its_scaling_and_alarms(tmp_path, other: dict[str, Any]) -> None:
    before = _synth_in_mode(tmp_path, {"mode": "async"})
    after = _synth_in_mode(tmp_path, other)
    changed = sorted(lid for lid in set(before) | set(after) if before.get(lid) != after.get(lid))
    assert changed, "the mode changed nothing"
    unexpected = [lid for lid in changed if not _may_change(lid)]
    assert unexpected == [], unexpected
    # Storage, keys, topics, image, API and its log groups stay the very same resources.
    for prefix in ("Storage", "Notifications", "ApiRestApi", "ApiAccessLogs", "AlarmsTopic", "ExecutionRole8"):
        same = [lid for lid in before if lid.startswith(prefix)]
        assert same and all(before[lid] == after.get(lid) for lid in same), prefix
    # The endpoint itself is updated in place (same logical id), its config replaced.
    endpoints = [lid for lid in after if after[lid]["Type"] == "AWS::SageMaker::Endpoint"]
    assert endpoints and all(lid in before for lid in endpoints)
    # Real-time keeps the GPU model as it is; only serverless (CPU) changes the model's device.
    [model] = [lid for lid in after if after[lid]["Type"] == "AWS::SageMaker::Model"]
    assert (before[model] != after[model]) == (other["mode"] == "serverless")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_one_line_turns_a_shipped_environment_real_time(env: str) -> None:
    raw = {**copy.deepcopy(ENVIRONMENTS[env]), "hosting": {"mode": "realtime"}}
    config = parse_environment(raw)
    assert config.hosting.mode == "realtime" and config.instance_type == ENVIRONMENTS[env]["instance_type"]
    assert config.container_device == "cuda"


def test_one_line_to_serverless_names_what_a_gpu_environment_must_drop() -> None:
    # dev pins a GPU instance type: serverless has none, and says so instead of ignoring it.
    with pytest.raises(ConfigError, match=r"instance_type='ml.g4dn.xlarge' \(a GPU instance type\)"):
        parse_environment({**copy.deepcopy(ENVIRONMENTS["dev"]), "hosting": {"mode": "serverless"}})
