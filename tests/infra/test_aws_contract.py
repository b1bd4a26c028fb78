"""The contract check (devtools/aws_contract) on every environment's template, and proof that it bites.

Each documented fact and each kind of service-model rule gets a deliberately broken
copy of a real synthesized template: the check must name the resource and the rule.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable

import botocore.session
import botocore.validate
import pytest

from app_config.image_cuda import image_cuda_version
from devtools.aws_contract import check_template
from devtools.aws_contract.service_models import operation, validate_request
from tests.infra.conftest import ROOT, Synthesized

CUDA = image_cuda_version(ROOT / "container")


@pytest.fixture(scope="module")
def raw_templates(synthesized: Synthesized) -> dict[str, dict]:
    return {name: template.to_json() for name, template in synthesized.templates.items()}


def test_the_image_declares_a_cuda_version() -> None:
    assert CUDA is not None and CUDA.count(".") == 1, CUDA


def test_every_environment_meets_the_contract(raw_templates: dict[str, dict], env_name: str) -> None:
    findings = check_template(raw_templates[env_name], image_cuda_version=CUDA)
    assert findings == [], "\n".join(map(str, findings))


def test_command_line_checks_the_synthesized_files(synthesized: Synthesized, tmp_path) -> None:
    files = sorted(str(p) for p in synthesized.outdir.glob("AsyncInference-*.template.json"))
    assert len(files) >= 2
    ok = subprocess.run(
        [sys.executable, "-m", "devtools.aws_contract", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = json.loads((synthesized.outdir / "AsyncInference-dev.template.json").read_text())
    _, config = _first(broken, "AWS::SageMaker::EndpointConfig")
    config["ProductionVariants"][0]["InstanceType"] = "ml.g4dn.huge"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    failed = subprocess.run(
        [sys.executable, "-m", "devtools.aws_contract", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1 and "'ml.g4dn.huge' is not one of ProductionVariantInstanceType" in failed.stdout


# ------------------------------------------------------------------------ helpers


def _first(
    template: dict, resource_type: str, where: Callable[[str, dict], bool] = lambda lid, props: True
) -> tuple[str, dict]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == resource_type and where(logical_id, resource.get("Properties", {})):
            return logical_id, resource["Properties"]
    raise AssertionError(f"no {resource_type} matches")


def _alarm_on(metric: str) -> Callable[[str, dict], bool]:
    return lambda lid, props: props.get("MetricName") == metric


def _findings(template: dict, cuda: str | None = CUDA) -> list[str]:
    return [str(f) for f in check_template(template, image_cuda_version=cuda)]


def _assert_finds(template: dict, *fragments: str, cuda: str | None = CUDA) -> None:
    findings = _findings(template, cuda)
    assert any(all(fragment in finding for fragment in fragments) for finding in findings), (fragments, findings)


@pytest.fixture
def dev(raw_templates: dict[str, dict]) -> dict:
    return copy.deepcopy(raw_templates["dev"])


@pytest.fixture
def prod(raw_templates: dict[str, dict]) -> dict:
    return copy.deepcopy(raw_templates["prod"])


# ------------------------------------------------------------------------ defect 1: API-required members


def test_all_at_once_without_wait_interval_is_refused_as_the_api_refuses_it(dev: dict) -> None:
    endpoint_id, endpoint = _first(dev, "AWS::SageMaker::Endpoint")
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE" and "WaitIntervalInSeconds" in routing
    del routing["WaitIntervalInSeconds"]
    for request in ("CreateEndpoint", "UpdateEndpoint"):
        _assert_finds(dev, endpoint_id, f"sagemaker {request}", "missing required member WaitIntervalInSeconds")


# ------------------------------------------------------------------------ defect 2: GPU driver


def test_gpu_variant_without_an_ami_runs_the_default_driver(dev: dict) -> None:
    config_id, config = _first(dev, "AWS::SageMaker::EndpointConfig")
    del config["ProductionVariants"][0]["InferenceAmiVersion"]
    _assert_finds(dev, config_id, "[gpu-driver]", "ml.g4dn.xlarge", "default driver 470", f"image needs {CUDA}")


def test_gpu_variant_on_an_ami_with_older_cuda_is_refused(prod: dict) -> None:
    config_id, config = _first(prod, "AWS::SageMaker::EndpointConfig")
    config["ProductionVariants"][0]["InferenceAmiVersion"] = "al2-ami-sagemaker-inference-gpu-2"
    _assert_finds(prod, config_id, "[gpu-driver]", "supports CUDA 12.2")


def test_gpu_variant_on_an_ami_that_does_not_cover_the_family_is_refused(dev: dict) -> None:
    config_id, config = _first(dev, "AWS::SageMaker::EndpointConfig")
    config["ProductionVariants"][0]["InstanceType"] = "ml.p3.2xlarge"
    _assert_finds(dev, config_id, "[gpu-driver]", "does not support the p3 family")


def test_gpu_variant_of_an_image_without_cuda_is_refused(dev: dict) -> None:
    _assert_finds(dev, "[gpu-driver]", "the image has no CUDA", cuda=None)


# ------------------------------------------------------------------------ defect 3: metric dimensions


@pytest.mark.parametrize(
    "metric", ["InvocationFailures", "Invocation5XXErrors", "ExpiredRequests", "NotificationFailures"]
)
def test_per_variant_metric_alarm_without_variant_name_is_refused(dev: dict, metric: str) -> None:
    alarm_id, alarm = _first(dev, "AWS::CloudWatch::Alarm", _alarm_on(metric))
    alarm["Dimensions"] = [d for d in alarm["Dimensions"] if d["Name"] == "EndpointName"]
    _assert_finds(dev, alarm_id, "[metric-dimensions]", metric, "never receives data")


def test_queue_metric_with_a_variant_dimension_is_refused(dev: dict) -> None:
    alarm_id, alarm = _first(dev, "AWS::CloudWatch::Alarm", _alarm_on("ApproximateBacklogSize"))
    alarm["Dimensions"].append({"Name": "VariantName", "Value": "AllTraffic"})
    _assert_finds(dev, alarm_id, "[metric-dimensions]", "ApproximateBacklogSize", "['EndpointName']")


def test_metric_not_published_for_async_endpoints_is_refused(dev: dict) -> None:
    alarm_id, alarm = _first(dev, "AWS::CloudWatch::Alarm", _alarm_on("InvocationFailures"))
    alarm["MetricName"] = "Invocations"
    _assert_finds(dev, alarm_id, "[metric-published]", "Invocations is not published")
    policy_id, policy = _first(
        dev, "AWS::ApplicationAutoScaling::ScalingPolicy", lambda lid, p: p["PolicyType"] == "TargetTrackingScaling"
    )
    policy["TargetTrackingScalingPolicyConfiguration"] = {
        "TargetValue": 10,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    _assert_finds(dev, policy_id, "[metric-published]", "InvocationsPerInstance")


def test_dashboard_widget_on_a_metric_that_gets_no_data_is_refused(dev: dict) -> None:
    dashboard_id, dashboard = _first(dev, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["DashboardBody"])
    assert '\\"ModelLatency\\"' in body
    dashboard["DashboardBody"] = json.loads(body.replace('\\"ModelLatency\\"', '\\"OverheadLatency\\"', 1))
    _assert_finds(dev, dashboard_id, "[metric-published]", "OverheadLatency")


def test_dashboard_shorthand_rows_are_read_like_the_console_reads_them() -> None:
    body = {
        "widgets": [
            {
                "properties": {
                    "title": "t",
                    "metrics": [
                        ["AWS/SageMaker", "InvocationFailures", "EndpointName", "e", "VariantName", "AllTraffic"],
                        [".", "ExpiredRequests", ".", ".", ".", "."],
                        [".", "Invocation5XXErrors", ".", "."],
                    ],
                }
            }
        ]
    }
    template = {
        "Resources": {"D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": json.dumps(body)}}}
    }
    findings = [str(f) for f in check_template(template, image_cuda_version=CUDA)]
    assert len(findings) == 1 and "Invocation5XXErrors" in findings[0] and "['EndpointName']" in findings[0]


# ------------------------------------------------------------------------ defect 4: rollback alarms


def test_execution_role_without_describe_alarms_cannot_roll_back(dev: dict) -> None:
    removed = 0
    for resource in dev["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            kept = [s for s in statements if s["Action"] != "cloudwatch:DescribeAlarms"]
            removed += len(statements) - len(kept)
            resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed == 1
    _assert_finds(dev, "[rollback-alarm-permission]", "AsyncInference-dev-endpoint-invocation-failures")
    _assert_finds(dev, "[rollback-alarm-permission]", "AsyncInference-dev-endpoint-5xx-errors")


def test_describe_alarms_on_other_alarms_is_not_enough(dev: dict) -> None:
    for resource in dev["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Action"] == "cloudwatch:DescribeAlarms":
                    statement["Resource"] = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:someone-else"
    _assert_finds(dev, "[rollback-alarm-permission]")


def test_rollback_alarm_missing_from_the_stack_is_refused(dev: dict) -> None:
    _alarm_id, alarm = _first(dev, "AWS::CloudWatch::Alarm", _alarm_on("Invocation5XXErrors"))
    alarm["AlarmName"] = "renamed"
    _assert_finds(dev, "[rollback-alarm-exists]", "AsyncInference-dev-endpoint-5xx-errors")


# ------------------------------------------------------------------------ defect 5: alarm delivery


def _alarm_topic(template: dict) -> str:
    return _first(template, "AWS::SNS::Topic", lambda lid, p: lid.startswith("AlarmsTopic"))[0]


def test_alarm_topic_policy_that_admits_only_tls_never_delivers(dev: dict) -> None:
    topic = _alarm_topic(dev)
    _, policy = _first(dev, "AWS::SNS::TopicPolicy", lambda lid, p: {"Ref": topic} in p["Topics"])
    statements = policy["PolicyDocument"]["Statement"]
    policy["PolicyDocument"]["Statement"] = [s for s in statements if s["Effect"] == "Deny"]
    assert policy["PolicyDocument"]["Statement"] and len(policy["PolicyDocument"]["Statement"]) < len(statements)
    _assert_finds(dev, topic, "[alarm-topic-policy]", "cloudwatch.amazonaws.com")


def test_alarm_topic_policy_with_an_unconditional_deny_never_delivers(dev: dict) -> None:
    topic = _alarm_topic(dev)
    _, policy = _first(dev, "AWS::SNS::TopicPolicy", lambda lid, p: {"Ref": topic} in p["Topics"])
    for statement in policy["PolicyDocument"]["Statement"]:
        if statement["Effect"] == "Deny":
            del statement["Condition"]  # the TLS-only Deny, without its aws:SecureTransport condition
    _assert_finds(dev, topic, "[alarm-topic-policy]", "unconditional Deny")


def test_alarm_topic_key_that_does_not_admit_cloudwatch_never_delivers(dev: dict) -> None:
    key_id, key = _first(dev, "AWS::KMS::Key", lambda lid, p: lid.startswith("AlarmsTopicKey"))
    key["KeyPolicy"]["Statement"] = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal", {}).get("Service") != "cloudwatch.amazonaws.com"
    ]
    _assert_finds(dev, key_id, "[alarm-topic-key]", "kms:Decrypt")


def test_alarm_topic_on_the_aws_managed_key_never_delivers(dev: dict) -> None:
    topic = _alarm_topic(dev)
    dev["Resources"][topic]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
    _assert_finds(dev, topic, "[alarm-topic-key]", "AWS-managed key")


# ------------------------------------------------------------------------ service model rules


@pytest.mark.parametrize(
    ("resource_type", "mutate", "expected"),
    [
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["ProductionVariants"][0].update(InstanceType="ml.g4dn.huge"),
            "'ml.g4dn.huge' is not one of ProductionVariantInstanceType",
        ),
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["ProductionVariants"][0].update(InferenceAmiVersion="al2-ami-gpu-9"),
            "is not one of ProductionVariantInferenceAmiVersion",
        ),
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["AsyncInferenceConfig"]["ClientConfig"].update(MaxConcurrentInvocationsPerInstance=5000),
            "5000 is above MaxConcurrentInvocationsPerInstance's maximum 1000",
        ),
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["ProductionVariants"][0].update(ContainerStartupHealthCheckTimeoutInSeconds=4000),
            "above ProductionVariantContainerStartupHealthCheckTimeoutInSeconds's maximum 3600",
        ),
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["AsyncInferenceConfig"]["OutputConfig"].update(S3OutputPath="http://example.com/out"),
            "does not match DestinationS3Uri's pattern",
        ),
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p["ProductionVariants"][0].update(GpuCount=1),
            "unknown member GpuCount",
        ),
        (
            "AWS::SageMaker::Model",
            lambda p: p["PrimaryContainer"]["Environment"].update({"BAD-NAME": "x"}),
            "does not match EnvironmentKey's pattern",
        ),
        (
            "AWS::SageMaker::Model",
            lambda p: p["PrimaryContainer"]["Environment"].update(BIG="x" * 1025),
            "above EnvironmentValue's maximum 1024",
        ),
        (
            "AWS::CloudWatch::Alarm",
            lambda p: p.update(ComparisonOperator="Above"),
            "'Above' is not one of ComparisonOperator",
        ),
        ("AWS::CloudWatch::Alarm", lambda p: p.update(EvaluationPeriods=0), "below EvaluationPeriods's minimum 1"),
        (
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            lambda p: p.update(PolicyType="Stepped"),
            "'Stepped' is not one of PolicyType",
        ),
        (
            "AWS::ApplicationAutoScaling::ScalableTarget",
            lambda p: p.update(ScalableDimension="sagemaker:variant:Count"),
            "is not one of ScalableDimension",
        ),
    ],
)
def test_service_model_violations_are_named(
    dev: dict, resource_type: str, mutate: Callable[[dict], object], expected: str
) -> None:
    logical_id, properties = _first(dev, resource_type)
    mutate(properties)
    _assert_finds(dev, logical_id, expected)


def test_unresolved_intrinsics_count_as_present_and_novalue_as_absent() -> None:
    routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": {"Ref": "Wait"}}
    params = {
        "EndpointName": {"Ref": "Name"},
        "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
        "DeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}},
    }
    assert validate_request("sagemaker", "CreateEndpoint", params) == []
    routing["WaitIntervalInSeconds"] = {"Ref": "AWS::NoValue"}
    assert [v.message for v in validate_request("sagemaker", "CreateEndpoint", params)] == [
        "missing required member WaitIntervalInSeconds (TrafficRoutingConfig requires ['Type', "
        "'WaitIntervalInSeconds'])"
    ]


def test_checks_what_botocores_own_validator_skips() -> None:
    """botocore validates required members and minimums client-side, not maximums, enums or patterns."""
    params = {
        "EndpointConfigName": "config",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "InstanceType": "ml.g4dn.huge", "InitialInstanceCount": 1, "ModelName": "m"}
        ],
        "AsyncInferenceConfig": {
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 5000},
            "OutputConfig": {"S3OutputPath": "http://x/y"},
        },
    }
    shape = operation("sagemaker", "CreateEndpointConfig").input_shape
    assert not botocore.validate.ParamValidator().validate(params, shape).has_errors()
    messages = " | ".join(v.message for v in validate_request("sagemaker", "CreateEndpointConfig", params))
    assert (
        "'ml.g4dn.huge' is not one of" in messages
        and "5000 is above" in messages
        and "'http://x/y' does not match" in messages
    )
    assert botocore.session.get_session().get_service_model("sagemaker").shape_for(
        "TrafficRoutingConfig"
    ).required_members == ["Type", "WaitIntervalInSeconds"]
