"""cdk-nag (AwsSolutions and NIST 800-53 rev 5) and cfn-lint over every synthesized template.

The rule packs are cdk-nag's own; the report read here is the one CDK writes
(`validation-report.json`), so a finding, a suppression and its reason are what the
tools say, not what compliance.py claims.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template
from constructs import Construct

import app as cdk_app
from api_handler.contract import API_HANDLER
from app_config import environment_names, load_environment
from app_config.models import ApiConfig, S3PrefixModel
from stacks.compliance import (
    CALLBACK_CHECKOV_SKIPS,
    CALLBACK_FINDINGS,
    CHECKOV_SKIPS,
    CI_IDENTITY_FINDINGS,
    FINDINGS,
    PACKS,
    CheckovSkip,
    Finding,
    acknowledge_findings,
    model_prefix_findings,
    pack_of,
)
from tests.iam import actions, policy_statements

STATIC_FINDINGS = FINDINGS + CI_IDENTITY_FINDINGS + CALLBACK_FINDINGS


def _per_environment_findings() -> tuple[Finding, ...]:
    """The entries the stack derives from an environment's settings (a multi-model prefix)."""
    found: dict[tuple[str, str], Finding] = {}
    for name in environment_names():
        model = load_environment(name).model
        if isinstance(model, S3PrefixModel):
            found.update({(f.path, f.rule): f for f in model_prefix_findings(model.bucket, model.prefix)})
    return tuple(found.values())


ALL_FINDINGS = STATIC_FINDINGS + _per_environment_findings()


def report(outdir: Path) -> list[dict[str, Any]]:
    return json.loads((outdir / "validation-report.json").read_text())["pluginReports"]


def violated_rules(outdir: Path) -> set[str]:
    return {v["ruleName"] for plugin in report(outdir) for v in plugin["violations"]}


def suppressed(outdir: Path) -> list[dict[str, Any]]:
    return [v for plugin in report(outdir) for v in plugin.get("suppressedViolations", [])]


def app_with_packs(outdir: Path) -> cdk.App:
    """An app with the cdk-nag packs exactly as app.py adds them (build_app without stacks)."""
    app = cdk.App(outdir=str(outdir))
    cdk_app.build_app(app, [])
    return app


# ----------------------------------------------------------------------------- both packs, every stack
def test_app_runs_both_packs_and_every_stack_passes(synthesized, ci_outdir: Path) -> None:
    # The fixtures' app.synth() raises ValidationFailed on any unacknowledged finding; the
    # report must also show that both packs ran, not just that nothing failed.
    assert set(synthesized.templates) >= {"dev", "prod"}
    for outdir, expected in ((synthesized.outdir, set(PACKS)), (ci_outdir, {"NIST.800.53.R5"})):
        # A pack with nothing to report (AwsSolutions on the CI stack) is left out of the report.
        plugins = {plugin["pluginName"]: plugin for plugin in report(outdir)}
        assert set(plugins) == expected
        for plugin in plugins.values():
            assert plugin["conclusion"] == "success"
            assert plugin["violations"] == [], plugin["violations"]


def test_every_acknowledgment_suppresses_a_real_finding_with_its_reason(synthesized, ci_outdir: Path) -> None:
    """A stale entry (its rule no longer fires on its construct in any environment) fails here."""
    recorded = {
        (v["acknowledgedId"], v["acknowledgedAt"].split("/", 1)[1], v["reason"])
        for outdir in (synthesized.outdir, ci_outdir)
        for v in suppressed(outdir)
    }
    unused = [f for f in ALL_FINDINGS if (f.acknowledgment_id, f.path, f.reason) not in recorded]
    assert unused == [], "acknowledgments that suppress nothing (remove them):\n" + "\n".join(map(str, unused))


def test_nothing_is_suppressed_outside_compliance_py(synthesized, ci_outdir: Path) -> None:
    """Every suppression in the report comes from an entry of compliance.py, and no construct
    carries a bare-id acknowledgment (cdk-nag drops those silently: they never reach the report)."""
    known = {(f.acknowledgment_id, f.path) for f in ALL_FINDINGS}
    for outdir in (synthesized.outdir, ci_outdir):
        for violation in suppressed(outdir):
            assert (violation["acknowledgedId"], violation["acknowledgedAt"].split("/", 1)[1]) in known, violation
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    for stack in synthesized.stacks.values():
        for construct in stack.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == key:
                    for acknowledged in entry.data:
                        rule_id = (
                            acknowledged.split("::", 1)[-1]
                            if acknowledged.lower().startswith("annotation::")
                            else acknowledged
                        )
                        assert "::" in rule_id and rule_id.split("::")[0] in PACKS, (
                            f"{construct.node.path}: {acknowledged}"
                        )


# ----------------------------------------------------------------------------- the acknowledgment form
@pytest.mark.parametrize("pack", sorted(PACKS))
def test_cdk_nag_302_records_only_pack_qualified_acknowledgments(tmp_path: Path, pack: str) -> None:
    """The experiment behind compliance.py's id form: cdk-nag 3.0.2 honours both the bare rule
    id and "<pack>::<rule>", but only the qualified form reaches the report with its reason."""
    rule = {"AwsSolutions": "AwsSolutions-S1", "NIST.800.53.R5": "NIST.800.53.R5-S3BucketVersioningEnabled"}[pack]
    outcomes = {}
    for form in (rule, f"{pack}::{rule}"):
        outdir = tmp_path / form.replace(":", "_")
        app = app_with_packs(outdir)
        bucket = s3.Bucket(cdk.Stack(app, "Probe"), "Plain")
        cdk.Validations.of(bucket).acknowledge(cdk.Acknowledgment(id=form, reason="probe of the acknowledgment form"))
        with pytest.raises(Exception, match="ValidationFailed"):  # the bucket has other findings
            app.synth()
        outcomes[form] = (rule in violated_rules(outdir), [v["ruleName"] for v in suppressed(outdir)])
    assert outcomes[rule] == (False, []), "bare id: suppressed, but silently"
    assert outcomes[f"{pack}::{rule}"] == (False, [rule]), "qualified id: suppressed and recorded"


def test_finding_ids_are_qualified_by_their_pack() -> None:
    assert Finding("X", "NIST.800.53.R5-LambdaDLQ", "r").acknowledgment_id == "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ"
    assert (
        Finding("X", "AwsSolutions-IAM5[Resource::*]", "r").acknowledgment_id
        == "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    )
    with pytest.raises(ValueError, match=re.escape("'HIPAA.Security-LambdaDLQ' belongs to none of the packs")):
        pack_of("HIPAA.Security-LambdaDLQ")


def test_nist_pack_really_rejects_what_it_should(tmp_path: Path) -> None:
    """Proves the packs are wired as app.py wires them: a plain bucket and a Lambda without
    reserved concurrency fail both packs."""
    app = app_with_packs(tmp_path)
    stack = cdk.Stack(app, "Insecure")
    s3.Bucket(stack, "Plain")
    lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler", code=lambda_.Code.from_inline("x=1")
    )
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    assert {
        "AwsSolutions-S1",
        "AwsSolutions-S10",
        "NIST.800.53.R5-S3BucketLoggingEnabled",
        "NIST.800.53.R5-LambdaConcurrency",
        "NIST.800.53.R5-LambdaDLQ",
    } <= violated_rules(tmp_path)


def test_acknowledgments_have_specific_reasons() -> None:
    assert len({(f.path, f.rule) for f in STATIC_FINDINGS}) == len(STATIC_FINDINGS), "duplicate acknowledgment"
    assert len({(s.path, s.check) for s in CHECKOV_SKIPS}) == len(CHECKOV_SKIPS), "duplicate checkov skip"
    for entry in (*ALL_FINDINGS, *CHECKOV_SKIPS, *CALLBACK_CHECKOV_SKIPS):
        assert len(entry.reason) >= 40, f"reason too vague: {entry}"
    for finding in ALL_FINDINGS:
        assert pack_of(finding.rule) in PACKS


def test_an_acknowledgment_for_a_missing_construct_fails(tmp_path: Path) -> None:
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Empty")
    with pytest.raises(ValueError, match="names no construct at 'Nowhere/Bucket'"):
        acknowledge_findings(stack, (Finding("Nowhere/Bucket", "AwsSolutions-S1", "x" * 40),), checkov_skips=())
    with pytest.raises(ValueError, match="checkov skip of CKV_AWS_18 names 0 constructs at 'Nowhere/Bucket'"):
        acknowledge_findings(stack, (), checkov_skips=(CheckovSkip("Nowhere/Bucket", "CKV_AWS_18", "x" * 40),))


# ----------------------------------------------------------------------------- the real fixes
def _resources(template: Template, resource_type: str) -> dict[str, dict]:
    return template.find_resources(resource_type)


def test_api_lambda_has_reserved_concurrency_covering_the_stage_burst(template: Template, env_name: str) -> None:
    api = load_environment(env_name).api
    [handler] = [
        r["Properties"]
        for r in _resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == API_HANDLER
    ]
    assert handler["ReservedConcurrentExecutions"] == api.lambda_reserved_concurrency
    # API Gateway must throttle (429) before Lambda does: a throttled proxy integration is a 500.
    assert handler["ReservedConcurrentExecutions"] >= api.throttling_burst_limit


def test_reserved_concurrency_below_the_burst_limit_is_refused() -> None:
    assert ApiConfig().lambda_reserved_concurrency == ApiConfig().throttling_burst_limit
    assert ApiConfig(throttling_burst_limit=20, reserved_concurrency=50).lambda_reserved_concurrency == 50
    with pytest.raises(
        ValueError, match=r"reserved_concurrency \(10\) must be at least throttling_burst_limit \(100\)"
    ):
        ApiConfig(reserved_concurrency=10)
    with pytest.raises(ValueError, match="reserved_concurrency"):
        ApiConfig(reserved_concurrency=0)  # Lambda would never run the function


def test_every_log_group_is_encrypted_with_a_key_that_admits_cloudwatch_logs(template: Template) -> None:
    """https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html: the key
    policy must allow logs.<region>.amazonaws.com, limited by the aws:logs:arn encryption context."""
    log_groups = _resources(template, "AWS::Logs::LogGroup")
    assert log_groups
    keys = _resources(template, "AWS::KMS::Key")
    for name, log_group in log_groups.items():
        key_ref = log_group["Properties"].get("KmsKeyId")
        assert key_ref and "Fn::GetAtt" in key_ref, f"{name} is not encrypted with a key of this stack"
        key_id = key_ref["Fn::GetAtt"][0]
        statements = keys[key_id]["Properties"]["KeyPolicy"]["Statement"]
        logs_statements = [
            s
            for s in statements
            if s.get("Principal", {}).get("Service")
            == {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
        ]
        assert len(logs_statements) == 1, f"{key_id} does not admit CloudWatch Logs"
        [statement] = logs_statements
        assert statement["Effect"] == "Allow"
        assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= set(statement["Action"])
        context = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        assert context == {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":logs:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":log-group:*",
                ],
            ]
        }


def test_no_role_may_list_a_bucket_outside_its_prefixes(template: Template) -> None:
    for name, statement in policy_statements(template):
        if any(a in ("s3:ListBucket", "s3:List*", "s3:*") for a in actions(statement)):
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            assert prefixes and all(p.endswith("/*") and p != "/*" for p in prefixes), f"{name}: {statement}"


def test_access_log_bucket_is_versioned_and_old_versions_expire(template: Template) -> None:
    [logs] = [
        r["Properties"]
        for lid, r in _resources(template, "AWS::S3::Bucket").items()
        if lid.startswith("StorageAccessLogs")
    ]
    assert logs["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = logs["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rule["ExpirationInDays"] >= 1


# ----------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_reports_no_error(synthesized) -> None:
    templates = sorted(str(p) for p in Path(synthesized.outdir).glob("*.template.json"))
    assert len(templates) >= 2
    # W3005 (redundant DependsOn) is how CDK writes the explicit IAM-race edges.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", "-i", "W3005", "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("isolated", [True, False])
def test_network_isolation_drops_its_checkov_skip(tmp_path: Path, isolated: bool) -> None:
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Probe")
    model = sagemaker.CfnModel(
        Construct(stack, "Inference"),
        "Model",
        execution_role_arn="arn:aws:iam::123456789012:role/x",
        primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(image="img"),
        enable_network_isolation=isolated or None,
    )
    [skip] = [s for s in CHECKOV_SKIPS if s.check == "CKV_AWS_370"]
    acknowledge_findings(stack, (), checkov_skips=(skip,))
    metadata = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(model)].get("Metadata", {})
    assert ("checkov" in metadata) is (not isolated)
