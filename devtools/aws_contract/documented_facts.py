"""Documented facts no schema carries, each a table with the page it comes from, and their checks.

A template can satisfy every service model and still never work: an alarm on a
dimension set SageMaker does not publish receives no data, an SNS topic whose policy
does not admit CloudWatch never gets a notification, a GPU variant on the default
driver never sees its GPU. Each check below returns findings; none means the fact holds.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec

from app_config.gpu_drivers import DEFAULT_DRIVERS, ami_by_name, instance_family, is_gpu_instance, parse_cuda_version
from devtools.aws_contract.service_models import is_intrinsic

# ---------------------------------------------------------------------------------------
# Metrics of asynchronous endpoints and the dimension set each is published with.
# https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html
# ("The metrics below are an exhaustive list of metrics for asynchronous endpoints ...
# Any metric not listed below is not published if the endpoint is enabled for
# asynchronous inference"), and for the instance metrics
# https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
ASYNC_METRICS_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html"
ENDPOINT = frozenset({"EndpointName"})
ENDPOINT_AND_VARIANT = frozenset({"EndpointName", "VariantName"})
# Endpoint invocation metrics, and the instance metrics SageMaker publishes from the hosts.
SAGEMAKER = "AWS/SageMaker"
INSTANCES = "/aws/sagemaker/Endpoints"

MetricTable = dict[tuple[str, str], frozenset[str]]


def _published(namespace: str, dimensions: frozenset[str], *names: str) -> MetricTable:
    """The metrics of one namespace that a page lists with one dimension set.

    The pages group metrics that way, so each table below reads as the page's lists do.
    """
    return {(namespace, name): dimensions for name in names}


# The host metrics of every endpoint with instances (real-time, asynchronous, multi-model).
INSTANCE_METRICS = _published(
    INSTANCES,
    ENDPOINT_AND_VARIANT,
    "CPUUtilization",
    "MemoryUtilization",
    "DiskUtilization",
    "GPUUtilization",
    "GPUMemoryUtilization",
)

PUBLISHED_DIMENSIONS: MetricTable = {
    **_published(
        SAGEMAKER,
        ENDPOINT,
        "ApproximateBacklogSize",
        "ApproximateBacklogSizePerInstance",
        "ApproximateAgeOfOldestRequest",
        "HasBacklogWithoutCapacity",
    ),
    **_published(
        SAGEMAKER,
        ENDPOINT_AND_VARIANT,
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InvocationFailures",
        "ModelLatency",
        "RequestDownloadFailures",
        "ResponseUploadFailures",
        "NotificationFailures",
        "ExpiredRequests",
        # Spelled with three s by SageMaker itself.
        "InvocationsProcesssed",
        "TimeInBacklog",
        "TotalProcessingTime",
        "RequestDownloadLatency",
        "ResponseUploadLatency",
    ),
    **INSTANCE_METRICS,
}

# Real-time metrics the page names as NOT published for asynchronous endpoints.
NOT_PUBLISHED_FOR_ASYNC = frozenset({"Invocations", "InvocationsPerInstance", "OverheadLatency"})

# Real-time endpoints: the endpoint invocation metrics and instance metrics, each with
# EndpointName and VariantName.
# https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
REALTIME_METRICS_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html"
REALTIME_PUBLISHED_DIMENSIONS: MetricTable = {
    **_published(
        SAGEMAKER,
        ENDPOINT_AND_VARIANT,
        "Invocations",
        "InvocationsPerInstance",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InvocationModelErrors",
    ),
    **INSTANCE_METRICS,
}

# Serverless endpoints: "The metrics below are an exhaustive list of metrics for serverless
# endpoints. Any metric not listed below is not published for serverless endpoints."
# https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html
# (the page spells the error counters "Invocations4XXErrors"; the metric is Invocation4XXErrors,
# as on the real-time page). No instances: no InvocationsPerInstance, CPU or GPU metrics.
SERVERLESS_METRICS_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html"
SERVERLESS_PUBLISHED_DIMENSIONS: MetricTable = {
    **_published(
        SAGEMAKER,
        ENDPOINT_AND_VARIANT,
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
        "ModelSetupTime",
        "ServerlessConcurrentExecutionsUtilization",
        "ServerlessProvisionedConcurrencyExecutions",
        "ServerlessProvisionedConcurrencyUtilization",
        "ServerlessProvisionedConcurrencyInvocations",
        "ServerlessProvisionedConcurrencySpilloverInvocations",
    ),
    **_published(INSTANCES, ENDPOINT_AND_VARIANT, "MemoryUtilization"),
}

# Multi-model endpoints: the real-time metrics plus the model loading metrics (AWS/SageMaker)
# and LoadedModelCount (/aws/sagemaker/Endpoints), all with EndpointName and VariantName;
# "Per-model metrics aren't supported".
# https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoint-cloudwatch-metrics.html
MULTI_MODEL_METRICS_PAGE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoint-cloudwatch-metrics.html"
)
MULTI_MODEL_PUBLISHED_DIMENSIONS: MetricTable = {
    **REALTIME_PUBLISHED_DIMENSIONS,
    **_published(
        SAGEMAKER,
        ENDPOINT_AND_VARIANT,
        "ModelLoadingWaitTime",
        "ModelUnloadingTime",
        "ModelDownloadingTime",
        "ModelLoadingTime",
        "ModelCacheHit",
    ),
    **_published(INSTANCES, ENDPOINT_AND_VARIANT, "LoadedModelCount"),
}

# Per hosting mode: the published metrics and the page that lists them.
METRICS_BY_MODE: dict[str, tuple[MetricTable, str]] = {
    "async": (PUBLISHED_DIMENSIONS, ASYNC_METRICS_PAGE),
    "realtime": (REALTIME_PUBLISHED_DIMENSIONS, REALTIME_METRICS_PAGE),
    "serverless": (SERVERLESS_PUBLISHED_DIMENSIONS, SERVERLESS_METRICS_PAGE),
    "multimodel": (MULTI_MODEL_PUBLISHED_DIMENSIONS, MULTI_MODEL_METRICS_PAGE),
}

# What each predefined scaling metric reads (Application Auto Scaling's PredefinedMetricSpecification).
# https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html
PREDEFINED_METRICS = {
    "SageMakerVariantInvocationsPerInstance": "InvocationsPerInstance",
    "SageMakerVariantProvisionedConcurrencyUtilization": "ServerlessProvisionedConcurrencyUtilization",
}

# ---------------------------------------------------------------------------------------
# CloudWatch alarm actions to SNS: CloudWatch publishes as the service principal
# cloudwatch.amazonaws.com. A topic policy replaces SNS's default policy, so a topic
# with one must allow that principal sns:Publish; an encrypted topic's key must let the
# service use the key.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
# https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
ALARM_PUBLISHER = "cloudwatch.amazonaws.com"
TOPIC_ACTIONS = ("sns:Publish",)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")

# ---------------------------------------------------------------------------------------
# Auto-rollback: SageMaker reads the named alarms with the endpoint's execution role.
# https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html
ROLLBACK_ACTION = "cloudwatch:DescribeAlarms"

# Values standing in for pseudo parameters when an ARN is rendered for matching.
_PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}


@dataclass(frozen=True)
class Finding:
    """A resource that breaks a documented fact."""

    logical_id: str
    fact: str
    message: str

    def __str__(self) -> str:
        return f"{self.logical_id}: [{self.fact}] {self.message}"


# A check's own parameters (the template, keyword options), kept by `listed` for type checkers.
P = ParamSpec("P")


def listed(check: Callable[P, Iterator[Finding]]) -> Callable[P, list[Finding]]:
    """A check written as a generator (one `yield` a broken fact), called for the list of its findings.

    Each check then says only what it finds; the list keeps `check_*(template) == []` meaning
    "the facts hold" for every caller.
    """

    @functools.wraps(check)
    def findings(*args: P.args, **kwargs: P.kwargs) -> list[Finding]:
        return list(check(*args, **kwargs))

    return findings


def resources_of_type(template: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, Properties) of every resource of the CloudFormation type `kind`, in template order."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == kind:
            yield logical_id, resource.get("Properties", {})


# ------------------------------------------------------------------- metric dimensions


@dataclass(frozen=True)
class MetricUse:
    logical_id: str
    where: str
    namespace: Any
    metric_name: Any
    dimensions: frozenset[str]


def _dimension_names(dimensions: Any) -> frozenset[str]:
    return frozenset(d["Name"] for d in dimensions or [] if isinstance(d, dict) and isinstance(d.get("Name"), str))


def _metric_stat_uses(logical_id: str, where: str, queries: list[Any] | None) -> Iterator[MetricUse]:
    for index, query in enumerate(queries or []):
        metric = (query.get("MetricStat") or {}).get("Metric") if isinstance(query, dict) else None
        if isinstance(metric, dict):
            yield MetricUse(
                logical_id,
                f"{where}[{index}]",
                metric.get("Namespace"),
                metric.get("MetricName"),
                _dimension_names(metric.get("Dimensions")),
            )


def _metric_spec_uses(logical_id: str, where: str, spec: dict[str, Any]) -> Iterator[MetricUse]:
    """An alarm's or a customized target-tracking metric: one metric (MetricName, Namespace,
    Dimensions) or metric math (Metrics), the same member names in both CloudFormation types."""
    if "MetricName" in spec:
        yield MetricUse(
            logical_id, where, spec.get("Namespace"), spec["MetricName"], _dimension_names(spec.get("Dimensions"))
        )
    yield from _metric_stat_uses(logical_id, f"{where} Metrics", spec.get("Metrics"))


def metric_uses(template: dict[str, Any]) -> Iterator[MetricUse]:
    """Every metric an alarm, a target-tracking policy or a dashboard reads."""
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::CloudWatch::Alarm":
            yield from _metric_spec_uses(logical_id, "alarm", props)
        elif kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
            tracking = props.get("TargetTrackingScalingPolicyConfiguration") or {}
            spec = tracking.get("CustomizedMetricSpecification")
            if isinstance(spec, dict):
                yield from _metric_spec_uses(logical_id, "target tracking", spec)
            predefined = tracking.get("PredefinedMetricSpecification")
            if isinstance(predefined, dict) and predefined.get("PredefinedMetricType") in PREDEFINED_METRICS:
                metric = PREDEFINED_METRICS[predefined["PredefinedMetricType"]]
                yield MetricUse(logical_id, "predefined target tracking", SAGEMAKER, metric, ENDPOINT_AND_VARIANT)
        elif kind == "AWS::CloudWatch::Dashboard":
            yield from _dashboard_uses(logical_id, props.get("DashboardBody"))


def render(value: Any) -> str:
    """A string property with its intrinsics replaced by placeholders (for parsing, not deploying)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if isinstance(value, dict) and value.get("Ref") in _PSEUDO:
        return _PSEUDO[value["Ref"]]
    return "RESOLVED-AT-DEPLOY"


def _dashboard_uses(logical_id: str, body: Any) -> Iterator[MetricUse]:
    try:
        dashboard = json.loads(render(body))
    except (TypeError, ValueError):
        return
    for widget in dashboard.get("widgets", []):
        properties = widget.get("properties", {})
        title = properties.get("title", "?")
        previous: list = []
        for row in properties.get("metrics", []):
            # [namespace, name, dim1, value1, ..., {options}]; "." repeats the previous row's
            # field in that position. Expression rows are a single {options} object.
            fields = [item for item in row if not isinstance(item, dict)]
            fields = [previous[i] if item == "." and i < len(previous) else item for i, item in enumerate(fields)]
            if len(fields) >= 2:
                previous = fields
                names = frozenset(fields[2::2])
                yield MetricUse(logical_id, f"dashboard widget {title!r}", fields[0], fields[1], names)


def endpoint_config_mode(config_properties: dict[str, Any]) -> str:
    """async (AsyncInferenceConfig), serverless (a variant with ServerlessConfig) or realtime."""
    if config_properties.get("AsyncInferenceConfig") not in (None, {"Ref": "AWS::NoValue"}):
        return "async"
    variants = config_properties.get("ProductionVariants") or []
    if any(isinstance(v, dict) and v.get("ServerlessConfig") for v in variants):
        return "serverless"
    return "realtime"


def template_modes(template: dict[str, Any]) -> set[str]:
    """The hosting modes of the template's endpoint configurations (async when it has none).

    A real-time configuration serving a model whose container has Mode MultiModel is a
    multi-model endpoint ("multimodel"), which publishes the model loading metrics too.
    """
    resources = template.get("Resources", {})
    modes = set()
    for _, props in resources_of_type(template, "AWS::SageMaker::EndpointConfig"):
        mode = endpoint_config_mode(props)
        if mode == "realtime" and any(
            is_multi_model(resources.get(_referenced_id(v.get("ModelName")) or "", {}).get("Properties", {}))
            for v in props.get("ProductionVariants") or []
            if isinstance(v, dict)
        ):
            mode = "multimodel"
        modes.add(mode)
    return modes or {"async"}


def is_multi_model(model_properties: dict[str, Any]) -> bool:
    """A model whose primary container (or any container) runs in Mode MultiModel."""
    containers = [model_properties.get("PrimaryContainer"), *(model_properties.get("Containers") or [])]
    return any(isinstance(c, dict) and c.get("Mode") == "MultiModel" for c in containers)


@listed
def check_metric_dimensions(template: dict[str, Any]) -> Iterator[Finding]:
    """Every SageMaker metric is one the template's endpoint type publishes, read with exactly
    the dimension set it is published with."""
    modes = sorted(template_modes(template))
    tables = [METRICS_BY_MODE[mode] for mode in modes]
    kind = " or ".join(f"{mode} endpoint" for mode in modes)
    pages = ", ".join(page for _, page in tables)
    for use in metric_uses(template):
        if is_intrinsic(use.namespace) or is_intrinsic(use.metric_name):
            continue
        if use.namespace not in (SAGEMAKER, INSTANCES):
            continue
        published = [
            table[(use.namespace, use.metric_name)] for table, _ in tables if (use.namespace, use.metric_name) in table
        ]
        if not published and modes == ["async"] and use.metric_name in NOT_PUBLISHED_FOR_ASYNC:
            yield Finding(
                use.logical_id,
                "metric-published",
                f"{use.where}: {use.metric_name} is not published for asynchronous endpoints ({ASYNC_METRICS_PAGE})",
            )
        elif not published:
            yield Finding(
                use.logical_id,
                "metric-published",
                f"{use.where}: {use.namespace} {use.metric_name} is not in the documented list of {kind} metrics "
                f"({pages})",
            )
        elif use.dimensions not in published:
            expected = published[0]
            yield Finding(
                use.logical_id,
                "metric-dimensions",
                f"{use.where}: {use.metric_name} is published with dimensions {sorted(expected)}, "
                f"read with {sorted(use.dimensions)}: it never receives data ({pages})",
            )


# ------------------------------------------------------------------- IAM / policy helpers


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _statements(document: Any) -> list[dict]:
    if not isinstance(document, dict):
        return []
    return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]


def _action_allows(statement: dict, action: str) -> bool:
    return any(
        isinstance(pattern, str) and fnmatch.fnmatchcase(action.lower(), pattern.lower())
        for pattern in _as_list(statement.get("Action", []))
    )


def _service_principals(statement: dict) -> set[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return set()
    return {p for p in _as_list(principal.get("Service", [])) if isinstance(p, str)}


def _allows_service(document: Any, service: str, actions: tuple[str, ...]) -> list[str]:
    """The actions of `actions` that no Allow statement for `service` grants."""
    allow = [s for s in _statements(document) if s.get("Effect") == "Allow" and service in _service_principals(s)]
    return [action for action in actions if not any(_action_allows(s, action) for s in allow)]


def _referenced_id(value: Any) -> str | None:
    """The logical id behind {"Ref": id} or {"Fn::GetAtt": [id, attr]}."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return value["Ref"]
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att:
            return str(get_att[0])
    return None


# ------------------------------------------------------------------- alarm delivery


@listed
def check_alarm_topics(template: dict[str, Any]) -> Iterator[Finding]:
    """Every SNS topic an alarm notifies lets CloudWatch publish to it and use its key."""
    resources = template.get("Resources", {})
    topics: dict[str, list[str]] = {}
    for logical_id, props in resources_of_type(template, "AWS::CloudWatch::Alarm"):
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in props.get(key) or []:
                target = _referenced_id(action)
                if target and resources.get(target, {}).get("Type") == "AWS::SNS::Topic":
                    topics.setdefault(target, []).append(logical_id)
    for topic_id, alarms in topics.items():
        yield from _topic_admits_cloudwatch(resources, topic_id, alarms)


def _topic_admits_cloudwatch(resources: dict, topic_id: str, alarms: list[str]) -> Iterator[Finding]:
    policies = [
        r["Properties"].get("PolicyDocument")
        for r in resources.values()
        if r.get("Type") == "AWS::SNS::TopicPolicy"
        and {"Ref": topic_id} in (r.get("Properties", {}).get("Topics") or [])
    ]
    # No topic policy: SNS's default policy lets the owning account's services publish.
    for policy in policies:
        for statement in _statements(policy):
            principal = statement.get("Principal")
            everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
            if (
                statement.get("Effect") == "Deny"
                and "Condition" not in statement
                and _action_allows(statement, "sns:Publish")
                and (everyone or ALARM_PUBLISHER in _service_principals(statement))
            ):
                yield Finding(
                    topic_id,
                    "alarm-topic-policy",
                    f"an unconditional Deny of sns:Publish ({statement.get('Sid', 'no Sid')}) stops {ALARM_PUBLISHER}",
                )
    if policies:
        missing = [a for a in TOPIC_ACTIONS if all(_allows_service(p, ALARM_PUBLISHER, (a,)) for p in policies)]
        if missing:
            yield Finding(
                topic_id,
                "alarm-topic-policy",
                f"the topic policy replaces SNS's default policy and allows {ALARM_PUBLISHER} none of {missing}: "
                f"alarms {sorted(set(alarms))} are never delivered",
            )
    key = resources[topic_id].get("Properties", {}).get("KmsMasterKeyId")
    if isinstance(key, str) and key.startswith("alias/aws/"):
        yield Finding(
            topic_id,
            "alarm-topic-key",
            f"an AWS-managed key ({key}) cannot admit {ALARM_PUBLISHER}: use a customer-managed key",
        )
    key_id = _referenced_id(key)
    if key_id and resources.get(key_id, {}).get("Type") == "AWS::KMS::Key":
        missing = _allows_service(
            resources[key_id].get("Properties", {}).get("KeyPolicy"), ALARM_PUBLISHER, KEY_ACTIONS
        )
        if missing:
            yield Finding(
                key_id,
                "alarm-topic-key",
                f"encrypts alarm topic {topic_id} but its key policy allows {ALARM_PUBLISHER} none of {missing}",
            )


# ------------------------------------------------------------------- rollback alarms


def _execution_roles(resources: dict, endpoint_props: dict) -> set[str]:
    """Logical ids of the roles of the models the endpoint's config serves."""
    roles = set()
    config = resources.get(_referenced_id(endpoint_props.get("EndpointConfigName")) or "", {})
    for variant in config.get("Properties", {}).get("ProductionVariants") or []:
        model = resources.get(_referenced_id(variant.get("ModelName")) or "", {})
        role = _referenced_id(model.get("Properties", {}).get("ExecutionRoleArn"))
        if role:
            roles.add(role)
    return roles


def _role_statements(resources: dict, role_id: str) -> list[dict]:
    role = resources.get(role_id, {}).get("Properties", {})
    statements = [s for policy in role.get("Policies") or [] for s in _statements(policy.get("PolicyDocument"))]
    for resource in resources.values():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
            props = resource.get("Properties", {})
            attached = props.get("Roles") or [props.get("RoleName")]
            if {"Ref": role_id} in attached:
                statements += _statements(props.get("PolicyDocument"))
    return statements


def _alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:{_PSEUDO['AWS::Region']}:{_PSEUDO['AWS::AccountId']}:alarm:{name}"


@listed
def check_rollback_alarms(template: dict[str, Any]) -> Iterator[Finding]:
    """Every auto-rollback alarm exists in the stack and the execution role may describe it."""
    resources = template.get("Resources", {})
    alarm_names = {
        props["AlarmName"]
        for _, props in resources_of_type(template, "AWS::CloudWatch::Alarm")
        if isinstance(props.get("AlarmName"), str)
    }
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::Endpoint"):
        rollback = (props.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
        names = [a.get("AlarmName") for a in rollback.get("Alarms") or [] if isinstance(a, dict)]
        for name in names:
            if isinstance(name, str) and name not in alarm_names:
                yield Finding(
                    logical_id, "rollback-alarm-exists", f"auto-rollback alarm {name!r} is not an alarm of this stack"
                )
        roles = _execution_roles(resources, props)
        for role_id in sorted(roles):
            statements = [
                s
                for s in _role_statements(resources, role_id)
                if s.get("Effect") == "Allow" and _action_allows(s, ROLLBACK_ACTION)
            ]
            resources_allowed = [render(r) for s in statements for r in _as_list(s.get("Resource", []))]
            for name in names:
                if isinstance(name, str) and not any(
                    fnmatch.fnmatchcase(_alarm_arn(name), pattern) for pattern in resources_allowed
                ):
                    yield Finding(
                        role_id,
                        "rollback-alarm-permission",
                        f"execution role of {logical_id} may not {ROLLBACK_ACTION} on rollback alarm {name!r}: "
                        "auto-rollback cannot read it",
                    )


# ------------------------------------------------------------------- GPU driver


@listed
def check_gpu_drivers(template: dict[str, Any], *, image_cuda_version: str | None) -> Iterator[Finding]:
    """Every GPU variant runs an AMI whose driver supports the image's CUDA version.

    `image_cuda_version` None means the image has no CUDA: a GPU variant is then refused.
    """
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::EndpointConfig"):
        for index, variant in enumerate(props.get("ProductionVariants") or []):
            instance_type = variant.get("InstanceType")
            if not isinstance(instance_type, str) or not is_gpu_instance(instance_type):
                continue
            problem = _driver_problem(instance_type, variant.get("InferenceAmiVersion"), image_cuda_version)
            if problem:
                yield Finding(logical_id, "gpu-driver", f"ProductionVariants[{index}] {instance_type}: {problem}")


def _driver_problem(instance_type: str, ami_name: Any, image_cuda_version: str | None) -> str | None:
    if image_cuda_version is None:
        return "the image has no CUDA, so the GPU would sit unused"
    needed = parse_cuda_version(image_cuda_version)
    family = instance_family(instance_type)
    if ami_name is None:
        default = DEFAULT_DRIVERS.get(family)
        if default is None:
            return "no InferenceAmiVersion and no documented default driver for this family"
        driver, cuda = default
        if cuda < needed:
            return (
                f"no InferenceAmiVersion: the default driver {driver} supports CUDA {cuda[0]}.{cuda[1]}, "
                f"the image needs {image_cuda_version}"
            )
        return None
    ami = ami_by_name(ami_name) if isinstance(ami_name, str) else None
    if ami is None:
        return f"InferenceAmiVersion {ami_name!r} is not a documented GPU inference AMI"
    if family not in ami.families:
        return f"{ami.name} does not support the {family} family"
    if ami.cuda < needed:
        supported = f"{ami.cuda[0]}.{ami.cuda[1]}"
        return (
            f"{ami.name} (driver {ami.nvidia_driver}) supports CUDA {supported}, the image needs {image_cuda_version}"
        )
    return None
