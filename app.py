#!/usr/bin/env python3
"""CDK entry point: the only place that reads context or the process environment.

    cdk synth  -c env=dev        one environment (default: dev)
    cdk synth  -c env=all        every environment (what `make synth` does)
    cdk deploy -c env=prod
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app_config import ConfigError, EnvironmentConfig, environment_names, load_environment
from stacks.async_inference_stack import AsyncInferenceStack

ROOT = Path(__file__).resolve().parent


def stack_id(config: EnvironmentConfig) -> str:
    return f"AsyncInference-{config.name}"


def build_app(app: cdk.App, names: list[str]) -> list[AsyncInferenceStack]:
    """Add one stack per environment name and the cdk-nag checks to `app`."""
    stacks = []
    for name in names:
        config = load_environment(name)
        env = cdk.Environment(account=config.account, region=config.region) if (config.account or config.region) else None
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
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


def selected_environments(app: cdk.App) -> list[str]:
    requested = app.node.try_get_context("env") or "dev"
    return environment_names() if requested == "all" else [requested]


def main() -> None:
    app = cdk.App()
    try:
        build_app(app, selected_environments(app))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
