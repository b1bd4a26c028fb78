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

from typing import Any

from devtools.aws_contract.documented_facts import Finding, _referenced_id, endpoint_config_mode, render
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


def check_serverless_configs(template: dict[str, Any]) -> list[Finding]:
    """Every serverless endpoint configuration within serverless's documented limits and exclusions."""
    resources = template.get("Resources", {})
    findings = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::EndpointConfig":
            continue
        props = resource.get("Properties", {})
        variants = [v for v in props.get("ProductionVariants") or [] if isinstance(v, dict)]
        serverless = [(i, v) for i, v in enumerate(variants) if v.get("ServerlessConfig")]
        if not serverless:
            continue

        def found(message: str, logical_id: str = logical_id) -> None:
            findings.append(Finding(logical_id, "serverless", f"{message} ({SERVERLESS_PAGE})"))

        if len(variants) > 1:
            found(f"{len(variants)} production variants: a serverless endpoint serves one")
        for key in ("AsyncInferenceConfig", "DataCaptureConfig", "KmsKeyId"):
            if props.get(key) not in (None, {"Ref": "AWS::NoValue"}):
                found(f"{key} is set: serverless endpoints support no {key}")
        for index, variant in serverless:
            config = variant["ServerlessConfig"]
            memory = _number(config.get("MemorySizeInMB"))
            if memory is not None and memory % MEMORY_STEP_MB:
                found(
                    f"ProductionVariants[{index}].ServerlessConfig.MemorySizeInMB {memory:g} is not a multiple of "
                    "1024 (1 GB steps)"
                )
            maximum, provisioned = _number(config.get("MaxConcurrency")), _number(config.get("ProvisionedConcurrency"))
            if maximum is not None and provisioned is not None and provisioned > maximum:
                found(
                    f"ProductionVariants[{index}].ServerlessConfig.ProvisionedConcurrency {provisioned:g} exceeds "
                    f"MaxConcurrency {maximum:g}"
                )
            for member in INSTANCE_MEMBERS:
                if variant.get(member) not in (None, {"Ref": "AWS::NoValue"}):
                    found(
                        f"ProductionVariants[{index}] has {member} next to ServerlessConfig: a serverless variant has "
                        "no instances"
                    )
            model = resources.get(_referenced_id(variant.get("ModelName")) or "", {}).get("Properties", {})
            if model.get("EnableNetworkIsolation") in (True, "true"):
                found(
                    f"ProductionVariants[{index}] serves a model with EnableNetworkIsolation: serverless endpoints do "
                    "not support it"
                )
            if model.get("VpcConfig"):
                found(
                    f"ProductionVariants[{index}] serves a model with VpcConfig: serverless endpoints do not support "
                    "VPCs"
                )
            containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
            if any(isinstance(c, dict) and c.get("Mode") == "MultiModel" for c in containers):
                found(
                    f"ProductionVariants[{index}] serves a multi-model container (Mode MultiModel): serverless "
                    "endpoints do not support multi-model"
                )
    return findings


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


def check_variant_scaling(template: dict[str, Any]) -> list[Finding]:
    """Each scalable target of an endpoint variant fits the endpoint's hosting mode."""
    resources = template.get("Resources", {})
    findings = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ApplicationAutoScaling::ScalableTarget":
            continue
        props = resource.get("Properties", {})
        if props.get("ServiceNamespace") != "sagemaker":
            continue
        config = _config_of(resources, _endpoint_of(props.get("ResourceId")))
        if config is None:
            continue
        mode = endpoint_config_mode(config)
        dimension = props.get("ScalableDimension")
        low, high = _number(props.get("MinCapacity")), _number(props.get("MaxCapacity"))
        if mode == "serverless":
            if dimension != PROVISIONED_CONCURRENCY:
                findings.append(
                    Finding(
                        logical_id,
                        "serverless-scaling",
                        f"{dimension} on a serverless variant: only {PROVISIONED_CONCURRENCY} scales "
                        f"({SERVERLESS_PAGE})",
                    )
                )
                continue
            serverless = next(
                v["ServerlessConfig"]
                for v in config.get("ProductionVariants") or []
                if isinstance(v, dict) and v.get("ServerlessConfig")
            )
            maximum = _number(serverless.get("MaxConcurrency"))
            if maximum is not None and high is not None and high > maximum:
                findings.append(
                    Finding(
                        logical_id,
                        "serverless-scaling",
                        f"MaxCapacity {high:g} exceeds the variant's MaxConcurrency {maximum:g}",
                    )
                )
            if serverless.get("ProvisionedConcurrency") is None:
                findings.append(
                    Finding(
                        logical_id,
                        "serverless-scaling",
                        "scales provisioned concurrency of a variant that has no ProvisionedConcurrency",
                    )
                )
        elif dimension == PROVISIONED_CONCURRENCY:
            findings.append(
                Finding(
                    logical_id,
                    "variant-scaling",
                    f"{PROVISIONED_CONCURRENCY} on a {mode} variant: only serverless variants have provisioned "
                    "concurrency",
                )
            )
        elif mode == "realtime" and low is not None and low < 1:
            findings.append(
                Finding(
                    logical_id,
                    "realtime-scaling",
                    f"MinCapacity {low:g} on a real-time variant: only asynchronous endpoints scale to zero "
                    f"({render(props.get('ResourceId'))})",
                )
            )
    return findings


def check_serverless_deployments(template: dict[str, Any]) -> list[Finding]:
    """A serverless endpoint's DeploymentConfig: blue/green all at once, never rolling, canary or linear."""
    resources = template.get("Resources", {})
    findings = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::Endpoint":
            continue
        config = _config_of(resources, logical_id)
        if config is None or endpoint_config_mode(config) != "serverless":
            continue
        deployment = resource.get("Properties", {}).get("DeploymentConfig") or {}
        if deployment.get("RollingUpdatePolicy"):
            findings.append(
                Finding(
                    logical_id,
                    "serverless-deployment",
                    "RollingUpdatePolicy: rolling deployments exclude serverless endpoints",
                )
            )
        routing = (deployment.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
        kind = routing.get("Type")
        if isinstance(kind, str) and kind != "ALL_AT_ONCE":
            findings.append(
                Finding(
                    logical_id,
                    "serverless-deployment",
                    f"traffic routing {kind}: its steps are shares of instances, which a serverless variant has none "
                    "of; use ALL_AT_ONCE",
                )
            )
    return findings
