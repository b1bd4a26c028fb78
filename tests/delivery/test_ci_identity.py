"""The CI identity stack: who may assume the roles, and what the roles may do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

import app as cdk_app
from app_config import ConfigError
from app_config.ci_identity import load_ci_identity
from tests.delivery.conftest import CiSynth
from tests.iam import as_list, role_statements

ISSUER = "token.actions.githubusercontent.com"
REPO = "acme-corp/inference-service"
BOOTSTRAP_KINDS = {"deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role"}


def _role(template: Template, prefix: str) -> dict:
    roles = {lid: r for lid, r in template.find_resources("AWS::IAM::Role").items() if lid.startswith(prefix)}
    assert len(roles) == 1, f"expected one role {prefix}*, found {sorted(roles)}"
    return next(iter(roles.values()))["Properties"]


def _flat(value: object) -> str:
    """An ARN expression as text: Fn::Join parts joined, pseudo parameters as ${Name}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"].startswith("AWS::"):
        return "${" + value["Ref"].removeprefix("AWS::") + "}"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_flat(part) for part in parts)
    raise AssertionError(f"unexpected ARN expression {value!r}")


def _role_ids(template: Template) -> dict[str, dict]:
    return {lid: r["Properties"] for lid, r in template.find_resources("AWS::IAM::Role").items()}


def _trust(role: dict) -> dict:
    statements = role["AssumeRolePolicyDocument"]["Statement"]
    assert len(statements) == 1, statements
    return statements[0]


# --------------------------------------------------------------------------- trust


def test_provider_is_githubs_issuer_for_the_sts_audience(ci_synth: CiSynth) -> None:
    providers = ci_synth.template.find_resources("AWS::IAM::OIDCProvider")
    assert len(providers) == 1
    props = next(iter(providers.values()))["Properties"]
    assert props["Url"] == f"https://{ISSUER}"
    assert props["ClientIdList"] == ["sts.amazonaws.com"]
    # No custom-resource Lambda behind the provider.
    assert not ci_synth.template.find_resources("AWS::Lambda::Function")


@pytest.mark.parametrize(
    ("prefix", "subjects"),
    [
        ("GitHubDiffRole", [f"repo:{REPO}:pull_request"]),
        ("GitHubDeployRole", [f"repo:{REPO}:environment:dev", f"repo:{REPO}:environment:prod"]),
    ],
)
def test_role_trusts_only_this_repository_and_audience(ci_synth: CiSynth, prefix: str, subjects: list[str]) -> None:
    trust = _trust(_role(ci_synth.template, prefix))
    provider_id = next(iter(ci_synth.template.find_resources("AWS::IAM::OIDCProvider")))
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": {"Ref": provider_id}}
    # Exact matches only: no StringLike (wildcards), no other operator that could widen it.
    assert trust["Condition"] == {
        "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": subjects},
    }


def test_imported_provider_and_extra_environment(ci_synth_imported: CiSynth) -> None:
    template = ci_synth_imported.template
    assert not template.find_resources("AWS::IAM::OIDCProvider"), "an existing provider must not be created again"
    trust = _trust(_role(template, "GitHubDeployRole"))
    assert trust["Principal"] == {
        "Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    }
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == [
        f"repo:{REPO}:environment:{name}" for name in ("dev", "staging", "prod")
    ]


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("which", ["ci_synth", "ci_synth_imported"])
def test_no_role_has_administrator_rights(which: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(which).template
    roles = _role_ids(template)
    assert len(roles) == 2
    for role_id, role in roles.items():
        assert not role.get("ManagedPolicyArns"), f"{role_id}: managed policies {role.get('ManagedPolicyArns')}"
        assert "PermissionsBoundary" not in role or role["PermissionsBoundary"]
        for statement in role_statements(template, role_id):
            assert "NotAction" not in statement and "NotResource" not in statement, statement
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{role_id}: wildcard action {action}"
                assert action == "sts:AssumeRole", f"{role_id}: may do more than assume roles: {action}"
            for resource in as_list(statement["Resource"]):
                assert _flat(resource) != "*", f"{role_id}: Resource *"


def _assumable(template: Template, prefix: str) -> set[str]:
    role_id = next(lid for lid in _role_ids(template) if lid.startswith(prefix))
    return {
        _flat(resource)
        for statement in role_statements(template, role_id)
        if statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"])
    }


def test_deploy_role_may_only_assume_the_cdk_bootstrap_roles(ci_synth: CiSynth) -> None:
    arns = _assumable(ci_synth.template, "GitHubDeployRole")
    expected = {
        f"arn:${{Partition}}:iam::${{AccountId}}:role/cdk-hnb659fds-{kind}-${{AccountId}}-${{Region}}"
        for kind in BOOTSTRAP_KINDS
    }
    assert arns == expected


def test_diff_role_may_only_assume_the_read_only_lookup_role(ci_synth: CiSynth) -> None:
    assert _assumable(ci_synth.template, "GitHubDiffRole") == {
        "arn:${Partition}:iam::${AccountId}:role/cdk-hnb659fds-lookup-role-${AccountId}-${Region}"
    }


def test_bootstrap_roles_follow_qualifier_and_regions(ci_synth_imported: CiSynth) -> None:
    arns = _assumable(ci_synth_imported.template, "GitHubDeployRole")
    # The stack has an explicit account: the ARNs name it literally.
    pattern = re.compile(r"^arn:aws:iam::111122223333:role/cdk-acme01-([a-z-]+)-111122223333-([a-z0-9-]+)$")
    found = set()
    for arn in arns:
        match = pattern.match(arn)
        assert match, arn
        found.add(match.groups())
    assert found == {(kind, region) for kind in BOOTSTRAP_KINDS for region in ("eu-west-1", "us-east-1")}
    assert _assumable(ci_synth_imported.template, "GitHubDiffRole") == {
        f"arn:aws:iam::111122223333:role/cdk-acme01-lookup-role-111122223333-{region}"
        for region in ("eu-west-1", "us-east-1")
    }


def test_outputs_name_the_github_variables(ci_synth: CiSynth) -> None:
    outputs = ci_synth.template.find_outputs("*")
    assert {"DiffRoleArn", "DeployRoleArn", "OidcProviderArn"} <= set(outputs)
    assert "AWS_DIFF_ROLE_ARN" in outputs["DiffRoleArn"]["Description"]
    assert "AWS_DEPLOY_ROLE_ARN" in outputs["DeployRoleArn"]["Description"]


# --------------------------------------------------------------------------- compliance


def test_cfn_lint_reports_nothing(ci_synth: CiSynth, ci_synth_imported: CiSynth) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            "--",
            str(ci_synth.template_path),
            str(ci_synth_imported.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_covers_the_ci_stack(tmp_path: Path) -> None:
    """A wildcard slipped into a CI role must fail synth, as for the service stacks."""
    app = cdk.App(outdir=str(tmp_path))
    cdk_app.build_app(app, [], ci_identity=load_ci_identity({"github_repository": REPO}))
    stack = app.node.find_child(cdk_app.CI_IDENTITY_STACK_ID)
    role = stack.node.find_child("GitHub").node.find_child("DeployRole")
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    violations = [
        violation["ruleName"]
        for plugin in json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"]
        for violation in plugin["violations"]
    ]
    assert "AwsSolutions-IAM5[Resource::*]" in violations


# --------------------------------------------------------------------------- app.py


def test_service_deploys_never_include_the_ci_stack() -> None:
    assert cdk_app.selected_ci_identity(cdk.App(context={"env": "prod"})) is None
    assert cdk_app.selected_ci_identity(cdk.App(context={"env": "prod", "ci": "false"})) is None


def test_ci_context_selects_the_stack_and_overrides_the_repository() -> None:
    config = cdk_app.selected_ci_identity(cdk.App(context={"ci": "true", "github_repository": "someone/fork-name"}))
    assert config is not None
    assert config.pull_request_subject == "repo:someone/fork-name:pull_request"


def test_bad_repository_from_context_is_named() -> None:
    with pytest.raises(ConfigError, match=r"github_repository = 'someone/\*': .*owner/name"):
        cdk_app.selected_ci_identity(cdk.App(context={"ci": "true", "github_repository": "someone/*"}))
