#!/usr/bin/env python3
"""CDK entry point: the only place that reads context or the process environment.

cdk synth  -c env=dev        one environment (default: dev)
cdk synth  -c env=all        every environment (what `make synth` does)
cdk deploy -c env=prod
cdk deploy -c env=prod -c autoscaling=paused      step 1 of an instance-type change (docs/operations.md)
cdk deploy -c ci=true AsyncInference-ci-identity   the CI identity, once (docs/delivery.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from app_config import ConfigError, EnvironmentConfig, environment_names, load_environment
from app_config.ci_identity import CiIdentityConfig, load_ci_identity
from stacks.async_inference_stack import AsyncInferenceStack
from stacks.ci_identity_stack import CiIdentityStack

ROOT = Path(__file__).resolve().parent
CI_IDENTITY_STACK_ID = "AsyncInference-ci-identity"


def stack_id(config: EnvironmentConfig) -> str:
    return f"AsyncInference-{config.name}"


def build_app(
    app: cdk.App,
    names: list[str],
    *,
    ci_identity: CiIdentityConfig | None = None,
    pause_autoscaling: bool = False,
) -> list[AsyncInferenceStack]:
    """Add one stack per environment name (plus the CI identity stack if given) and the cdk-nag checks to `app`.

    pause_autoscaling removes the scalable target and its policies: step 1 of the
    instance-type change procedure in docs/operations.md.
    """
    stacks = []
    if ci_identity is not None:
        add_ci_identity(app, ci_identity)
    for name in names:
        config = load_environment(name)
        if pause_autoscaling:
            config = config.model_copy(update={"autoscaling_enabled": False})
        env = (
            cdk.Environment(account=config.account, region=config.region) if (config.account or config.region) else None
        )
        stacks.append(
            AsyncInferenceStack(
                app,
                stack_id(config),
                config=config,
                container_dir=ROOT / "container",
                build_dir=ROOT / ".build" / "models",
                env=env,
                description=f"SageMaker async inference service ({config.name})",
            )
        )
    # Two cdk-nag packs; any unacknowledged finding fails synth. Every acknowledgment, with
    # its reason, is in stacks/compliance.py (whose PACKS must name these).
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    return stacks


def add_ci_identity(app: cdk.App, config: CiIdentityConfig) -> CiIdentityStack:
    """The GitHub OIDC roles: only with `-c ci=true`, so `cdk deploy -c env=prod` never touches them."""
    env = cdk.Environment(account=config.account, region=config.region) if (config.account or config.region) else None
    return CiIdentityStack(
        app, CI_IDENTITY_STACK_ID, config=config, env=env, description="GitHub Actions OIDC roles for cdk diff / deploy"
    )


def selected_ci_identity(app: cdk.App) -> CiIdentityConfig | None:
    if str(app.node.try_get_context("ci") or "").lower() not in {"true", "1", "yes"}:
        return None
    return load_ci_identity(github_repository=app.node.try_get_context("github_repository"))


def selected_environments(app: cdk.App) -> list[str]:
    requested = app.node.try_get_context("env") or "dev"
    return environment_names() if requested == "all" else [requested]


def autoscaling_paused(app: cdk.App) -> bool:
    value = str(app.node.try_get_context("autoscaling") or "on")
    if value not in ("on", "paused"):
        raise ConfigError(f"-c autoscaling={value!r}: expected 'on' (default) or 'paused'")
    return value == "paused"


def main() -> None:
    app = cdk.App()
    try:
        build_app(
            app,
            selected_environments(app),
            ci_identity=selected_ci_identity(app),
            pause_autoscaling=autoscaling_paused(app),
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
