"""The CI identity stack, synthesized through app.py's own code path with cdk-nag."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app as cdk_app
from app_config.ci_identity import CiIdentityConfig, load_ci_identity

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


@dataclass
class CiSynth:
    config: CiIdentityConfig
    outdir: Path
    template: Template

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{cdk_app.CI_IDENTITY_STACK_ID}.template.json"


def synth_ci_identity(outdir: Path, **values: Any) -> CiSynth:
    """Only the CI stack (no service environment): a second of synth, not a minute."""
    config = load_ci_identity({"github_repository": "acme-corp/inference-service", **values})
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context=context)
    cdk_app.build_app(app, [], ci_identity=config)
    # Raises on any unacknowledged cdk-nag finding (build_app adds the AwsSolutions checks).
    assembly = app.synth()
    stack = assembly.get_stack_by_name(cdk_app.CI_IDENTITY_STACK_ID)
    return CiSynth(config=config, outdir=outdir, template=Template.from_json(stack.template))


@pytest.fixture(scope="session")
def ci_synth(tmp_path_factory: pytest.TempPathFactory) -> CiSynth:
    """The default shape: a new OIDC provider, the stack's own region."""
    return synth_ci_identity(tmp_path_factory.mktemp("ci.out"))


@pytest.fixture(scope="session")
def ci_synth_imported(tmp_path_factory: pytest.TempPathFactory) -> CiSynth:
    """An existing provider, explicit deploy regions and a custom bootstrap qualifier."""
    return synth_ci_identity(
        tmp_path_factory.mktemp("ci-imported.out"),
        existing_provider_arn="arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
        account="111122223333",
        region="eu-west-1",
        deploy_regions=("eu-west-1", "us-east-1"),
        bootstrap_qualifier="acme01",
        environments=("dev", "staging", "prod"),
    )
