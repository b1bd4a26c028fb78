"""Per-environment configuration: typed models plus the environments we ship."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from app_config.environments import ENVIRONMENTS
from app_config.errors import ConfigError, config_error
from app_config.models import EnvironmentConfig, HubModel, LocalModel, S3Model, S3PrefixModel

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "HubModel",
    "LocalModel",
    "S3Model",
    "S3PrefixModel",
    "deployed_environment_names",
    "environment_names",
    "load_environment",
    "parse_environment",
]


def environment_names(environments: Mapping[str, Any] = ENVIRONMENTS) -> list[str]:
    return list(environments)


# Environments named so are synthesized and checked by `make synth` and `make test` like the
# others (they show a hosting mode working), but no workflow diffs or deploys them.
EXAMPLE_PREFIX = "example-"


def deployed_environment_names(environments: Mapping[str, Any] = ENVIRONMENTS) -> list[str]:
    """The environments the delivery workflows diff and deploy: every one but the examples."""
    return [name for name in environments if not name.startswith(EXAMPLE_PREFIX)]


def parse_environment(raw: Mapping[str, Any]) -> EnvironmentConfig:
    """Validate one environment's raw values, turning pydantic's report into one message."""
    try:
        return EnvironmentConfig.model_validate(raw)
    except ValidationError as error:
        heading = f"invalid configuration for environment {raw.get('name', '?')!r}"
        raise config_error(error, model=EnvironmentConfig, heading=heading, whole="(environment)") from None


def load_environment(name: str, environments: Mapping[str, Any] = ENVIRONMENTS) -> EnvironmentConfig:
    """The validated configuration of environment `name`."""
    if name not in environments:
        raise ConfigError(
            f"unknown environment {name!r}: choose one of {', '.join(environments)} "
            "(cdk synth -c env=NAME), or 'all' to synthesize every environment"
        )
    return parse_environment(environments[name])
