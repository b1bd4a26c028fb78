"""cdk-nag and cfn-lint over every synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from inference_constructs.compliance import FINDINGS, Finding, acknowledge_findings


def test_every_environment_synthesized_with_cdk_nag(synthesized) -> None:
    # The fixture's app.synth() raises ValidationFailed on any unacknowledged finding;
    # a report, if written, must hold no violation.
    assert set(synthesized.templates) >= {"dev", "prod"}
    report = synthesized.outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            assert plugin["violations"] == [], plugin["violations"]


def test_cdk_nag_really_rejects_an_insecure_resource(tmp_path: Path) -> None:
    """Proves the plugin is wired the way app.py wires it: an unencrypted, unlogged bucket fails."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Insecure")
    s3.Bucket(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    rules = {
        violation["ruleName"]
        for plugin in json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"]
        for violation in plugin["violations"]
    }
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_acknowledgments_have_specific_reasons() -> None:
    assert len({(f.path, f.rule) for f in FINDINGS}) == len(FINDINGS), "duplicate acknowledgment"
    for finding in FINDINGS:
        assert finding.rule.startswith("AwsSolutions-"), finding
        assert len(finding.reason) >= 40, f"reason too vague: {finding}"


def test_an_acknowledgment_for_a_missing_construct_fails(tmp_path: Path) -> None:
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Empty")
    with pytest.raises(ValueError, match="names no construct at 'Nowhere/Bucket'"):
        acknowledge_findings(stack, (Finding("Nowhere/Bucket", "AwsSolutions-S1", "x" * 40),))


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
