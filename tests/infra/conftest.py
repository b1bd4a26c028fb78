"""Synthesize the real app once per test session: jsii start-up dominates test time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app as cdk_app
from app_config import environment_names, load_environment
from app_config.ci_identity import load_ci_identity

ROOT = Path(__file__).resolve().parents[2]


def cdk_context(**extra: object) -> dict:
    """The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {**context, **extra}


@dataclass
class Synthesized:
    outdir: Path
    stacks: dict[str, cdk.Stack]
    templates: dict[str, Template]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context=cdk_context(env="all"))
    stacks = cdk_app.build_app(app, environment_names())
    # Synthesizes every stack and runs the cdk-nag plugin: raises on any unacknowledged finding.
    app.synth()
    by_env = {stack.node.id.removeprefix("AsyncInference-"): stack for stack in stacks}
    return Synthesized(
        outdir=outdir,
        stacks=by_env,
        templates={name: Template.from_stack(stack) for name, stack in by_env.items()},
    )


@pytest.fixture(scope="session")
def ci_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CI identity stack alone (`cdk synth -c ci=true`), with the cdk-nag packs app.py adds."""
    outdir = tmp_path_factory.mktemp("ci.out")
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    cdk_app.build_app(app, [], ci_identity=load_ci_identity({"github_repository": "acme-corp/inference-service"}))
    app.synth()
    return outdir


@pytest.fixture(params=environment_names())
def env_name(request: pytest.FixtureRequest) -> str:
    return request.param


def environments_in_mode(*modes: str) -> list[str]:
    """The shipped environments whose hosting.mode is one of `modes` (for mode-specific tests:
    `@pytest.mark.parametrize("env_name", environments_in_mode("async"))`)."""
    return [name for name in environment_names() if load_environment(name).hosting.mode in modes]


ASYNC_ENVIRONMENTS = environments_in_mode("async")
# Environments serving one hub model (a multi-model environment serves an S3 prefix of models instead).
HUB_ENVIRONMENTS = [name for name in environment_names() if load_environment(name).model.kind == "hub"]
# Environments on an instance type with local NVMe storage (the multi-model example runs on ml.m5).
NVME_ENVIRONMENTS = [name for name in environment_names() if load_environment(name).has_nvme_storage]


@pytest.fixture
def template(synthesized: Synthesized, env_name: str) -> Template:
    return synthesized.templates[env_name]
