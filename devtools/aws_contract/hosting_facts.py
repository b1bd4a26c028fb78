"""Documented facts of real-time and serverless hosting that botocore's model does not carry.

The service model checks ServerlessConfig's ranges (MemorySizeInMB 1024-6144, MaxConcurrency
and ProvisionedConcurrency 1-200); these checks add what only the pages say:

- MemorySizeInMB comes in 1 GB steps, ProvisionedConcurrency is at most MaxConcurrency, and a
  serverless endpoint has no GPU, VPC, network isolation, multiple variants, data capture or
  async configuration; its variant has no instance properties.
  https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html
  https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-create-config.html
- Serverless provisioned concurrency scales on sagemaker:variant:DesiredProvisionedConcurrency,
  within MaxConcurrency; a serverless variant has no instance count to scale.
  https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-autoscale.html
- Rolling deployments exclude serverless endpoints; canary and linear steps are shares of
  instances, which a serverless variant does not have.
  https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
- Only asynchronous endpoints scale their instance count to zero: a real-time variant's
  scalable target has MinCapacity >= 1.
  https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devtools.aws_contract.documented_facts import (
    Finding,
    _referenced_id,
    endpoint_config_mode,
    is_multi_model,
    listed,
    render,
    resources_of_type,
)
from devtools.aws_contract.service_models import is_intrinsic

SERVERLESS_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html"
MEMORY_STEP_MB = 1024
# Variant members that describe instances: meaningless (and refused) next to ServerlessConfig.
INSTANCE_MEMBERS = (
    "InstanceType",
    "InitialInstanceCount",
    "InferenceAmiVersion",
    "VolumeSizeInGB",
    "AcceleratorType",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "ManagedInstanceScaling",
    "InstancePools",
    "RoutingConfig",
    "EnableSSMAccess",
    "CapacityReservationConfig",
)
INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"


def _number(value: Any) -> float | None:
    if is_intrinsic(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@listed
def check_serverless_configs(template: dict[str, Any]) -> Iterator[Finding]:
    """Every serverless endpoint configuration within serverless's documented limits and exclusions."""
    resources = template.get("Resources", {})
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::EndpointConfig"):
        for problem in _serverless_config_problems(resources, props):
            yield Finding(logical_id, "serverless", f"{problem} ({SERVERLESS_PAGE})")


def _serverless_config_problems(resources: dict[str, Any], props: dict[str, Any]) -> Iterator[str]:
    """What breaks the serverless page in one endpoint configuration (nothing when it is not serverless)."""
    variants = [v for v in props.get("ProductionVariants") or [] if isinstance(v, dict)]
    serverless = [(i, v) for i, v in enumerate(variants) if v.get("ServerlessConfig")]
    if not serverless:
        return
    if len(variants) > 1:
        yield f"{len(variants)} production variants: a serverless endpoint serves one"
    for key in ("AsyncInferenceConfig", "DataCaptureConfig", "KmsKeyId"):
        if props.get(key) not in (None, {"Ref": "AWS::NoValue"}):
            yield f"{key} is set: serverless endpoints support no {key}"
    for index, variant in serverless:
        where = f"ProductionVariants[{index}]"
        config = variant["ServerlessConfig"]
        memory = _number(config.get("MemorySizeInMB"))
        if memory is not None and memory % MEMORY_STEP_MB:
            yield f"{where}.ServerlessConfig.MemorySizeInMB {memory:g} is not a multiple of 1024 (1 GB steps)"
        maximum, provisioned = _number(config.get("MaxConcurrency")), _number(config.get("ProvisionedConcurrency"))
        if maximum is not None and provisioned is not None and provisioned > maximum:
            yield f"{where}.ServerlessConfig.ProvisionedConcurrency {provisioned:g} exceeds MaxConcurrency {maximum:g}"
        for member in INSTANCE_MEMBERS:
            if variant.get(member) not in (None, {"Ref": "AWS::NoValue"}):
                yield f"{where} has {member} next to ServerlessConfig: a serverless variant has no instances"
        model = resources.get(_referenced_id(variant.get("ModelName")) or "", {}).get("Properties", {})
        if model.get("EnableNetworkIsolation") in (True, "true"):
            yield f"{where} serves a model with EnableNetworkIsolation: serverless endpoints do not support it"
        if model.get("VpcConfig"):
            yield f"{where} serves a model with VpcConfig: serverless endpoints do not support VPCs"
        if is_multi_model(model):
            yield (
                f"{where} serves a multi-model container (Mode MultiModel): serverless endpoints do not support "
                "multi-model"
            )


def _endpoint_of(resource_id: Any) -> str | None:
    """The logical id of the AWS::SageMaker::Endpoint a scalable target's ResourceId names."""
    parts = resource_id.get("Fn::Join", [None, []])[1] if isinstance(resource_id, dict) else []
    for part in parts:
        found = _referenced_id(part)
        if found:
            return found
    return None


def _config_of(resources: dict, endpoint_id: str | None) -> dict[str, Any] | None:
    endpoint = resources.get(endpoint_id or "", {})
    if endpoint.get("Type") != "AWS::SageMaker::Endpoint":
        return None
    config = resources.get(_referenced_id(endpoint.get("Properties", {}).get("EndpointConfigName")) or "", {})
    return config.get("Properties") if config.get("Type") == "AWS::SageMaker::EndpointConfig" else None


@listed
def check_variant_scaling(template: dict[str, Any]) -> Iterator[Finding]:
    """Each scalable target of an endpoint variant fits the endpoint's hosting mode."""
    resources = template.get("Resources", {})
    for logical_id, props in resources_of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget"):
        if props.get("ServiceNamespace") != "sagemaker":
            continue
        config = _config_of(resources, _endpoint_of(props.get("ResourceId")))
        if config is None:
            continue
        mode = endpoint_config_mode(config)
        low = _number(props.get("MinCapacity"))
        if mode == "serverless":
            yield from _serverless_scaling(logical_id, props, config)
        elif props.get("ScalableDimension") == PROVISIONED_CONCURRENCY:
            yield Finding(
                logical_id,
                "variant-scaling",
                f"{PROVISIONED_CONCURRENCY} on a {mode} variant: only serverless variants have provisioned concurrency",
            )
        elif mode == "realtime" and low is not None and low < 1:
            yield Finding(
                logical_id,
                "realtime-scaling",
                f"MinCapacity {low:g} on a real-time variant: only asynchronous endpoints scale to zero "
                f"({render(props.get('ResourceId'))})",
            )


def _serverless_scaling(logical_id: str, props: dict[str, Any], config: dict[str, Any]) -> Iterator[Finding]:
    """A serverless variant scales its provisioned concurrency only, within its MaxConcurrency."""
    dimension = props.get("ScalableDimension")
    if dimension != PROVISIONED_CONCURRENCY:
        yield Finding(
            logical_id,
            "serverless-scaling",
            f"{dimension} on a serverless variant: only {PROVISIONED_CONCURRENCY} scales ({SERVERLESS_PAGE})",
        )
        return
    serverless = next(
        v["ServerlessConfig"]
        for v in config.get("ProductionVariants") or []
        if isinstance(v, dict) and v.get("ServerlessConfig")
    )
    maximum, high = _number(serverless.get("MaxConcurrency")), _number(props.get("MaxCapacity"))
    if maximum is not None and high is not None and high > maximum:
        yield Finding(
            logical_id, "serverless-scaling", f"MaxCapacity {high:g} exceeds the variant's MaxConcurrency {maximum:g}"
        )
    if serverless.get("ProvisionedConcurrency") is None:
        yield Finding(
            logical_id,
            "serverless-scaling",
            "scales provisioned concurrency of a variant that has no ProvisionedConcurrency",
        )


@listed
def check_serverless_deployments(template: dict[str, Any]) -> Iterator[Finding]:
    """A serverless endpoint's DeploymentConfig: blue/green all at once, never rolling, canary or linear."""
    resources = template.get("Resources", {})
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::Endpoint"):
        config = _config_of(resources, logical_id)
        if config is None or endpoint_config_mode(config) != "serverless":
            continue
        deployment = props.get("DeploymentConfig") or {}
        if deployment.get("RollingUpdatePolicy"):
            yield Finding(
                logical_id,
                "serverless-deployment",
                "RollingUpdatePolicy: rolling deployments exclude serverless endpoints",
            )
        routing = (deployment.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
        kind = routing.get("Type")
        if isinstance(kind, str) and kind != "ALL_AT_ONCE":
            yield Finding(
                logical_id,
                "serverless-deployment",
                f"traffic routing {kind}: its steps are shares of instances, which a serverless variant has none "
                "of; use ALL_AT_ONCE",
            )
