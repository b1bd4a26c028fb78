"""Who may deploy from GitHub Actions: the CI identity stack's typed configuration.

Kept apart from the per-environment models because it describes the delivery
pipeline (one GitHub repository, its GitHub environments, the CDK bootstrap the
roles may use), not a deployment of the service. `docs/delivery.md` explains the
values; `cdk synth -c ci=true` validates them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from app_config.aws_types import AccountId, RegionName
from app_config.errors import config_error
from app_config.fields import StrictModel, each_matching, matching

# GitHub: an owner (user or organisation) is 1-39 letters, digits or single hyphens, not at
# either end; a repository name is 1-100 letters, digits, '.', '_' or '-', but not '.' or '..'.
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
_REPO = r"[A-Za-z0-9._-]{1,100}"
_GITHUB_REPOSITORY = re.compile(rf"^({_OWNER})/({_REPO})$")
# GitHub environment names end up verbatim in the OIDC `sub` claim; keep them to
# characters that need no escaping in an IAM condition (no '*', '?', ':').
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_PROVIDER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
# `cdk bootstrap --qualifier`: lower-case alphanumerics, at most 10 characters.
_QUALIFIER = re.compile(r"^[a-z0-9]{1,10}$")

DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"


class CiIdentityConfig(StrictModel):
    """The GitHub repository trusted to assume the CI roles, and what those roles reach."""

    # "owner/name" exactly as GitHub shows it: the OIDC `sub` claim is compared verbatim.
    github_repository: str
    # An account has at most one provider per issuer URL: if one exists already (another
    # project created it), give its ARN and the stack imports it instead of creating one.
    existing_provider_arn: (
        Annotated[
            str,
            matching(
                _PROVIDER_ARN,
                "is not the ARN of a GitHub Actions OIDC provider like "
                "'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com'",
            ),
        ]
        | None
    ) = None
    # GitHub environments whose jobs may assume the deploy role (one `sub` each). The
    # approval gate lives in GitHub: give `prod` required reviewers (docs/delivery.md).
    environments: Annotated[
        tuple[str, ...],
        each_matching(
            _GITHUB_ENVIRONMENT,
            "is not a GitHub environment name (letters, digits, '.', '_', '-')",
            repeated="{values} names an environment twice",
        ),
    ] = Field(("dev", "prod"), min_length=1)
    # Regions the deploy and diff roles may use the CDK bootstrap roles of. Empty: the
    # region the CI identity stack itself is deployed to.
    deploy_regions: tuple[RegionName, ...] = ()
    bootstrap_qualifier: Annotated[
        str, matching(_QUALIFIER, "is not a CDK bootstrap qualifier (1-10 lower-case letters or digits)")
    ] = DEFAULT_BOOTSTRAP_QUALIFIER
    # Where the CI identity stack goes; unset = the CLI's current account and region.
    account: AccountId | None = None
    region: RegionName | None = None

    @field_validator("github_repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        match = _GITHUB_REPOSITORY.match(value)
        if not match or match.group(2) in {".", ".."}:
            raise ValueError(f"{value!r} is not a GitHub repository like 'owner/name'")
        return value

    @model_validator(mode="after")
    def _provider_in_account(self) -> CiIdentityConfig:
        if self.existing_provider_arn and self.account:
            provider_account = self.existing_provider_arn.split(":")[4]
            if provider_account != self.account:
                raise ValueError(
                    f"existing_provider_arn is in account {provider_account}, but the CI identity "
                    f"stack deploys to account {self.account}: IAM roles can only trust a provider "
                    "of their own account"
                )
        return self

    @property
    def pull_request_subject(self) -> str:
        """The `sub` claim of a job triggered by `pull_request` (no GitHub environment)."""
        return f"repo:{self.github_repository}:pull_request"

    def environment_subject(self, environment: str) -> str:
        """The `sub` claim of a job that declares `environment: <environment>`."""
        return f"repo:{self.github_repository}:environment:{environment}"


# Edit here (or pass `-c github_repository=owner/name` to override the repository).
CI_IDENTITY: dict[str, Any] = {
    "github_repository": "example-org/sagemaker-async-inference-cdk",
    "environments": ("dev", "prod"),
}


def load_ci_identity(raw: Mapping[str, Any] = CI_IDENTITY, **overrides: Any) -> CiIdentityConfig:
    """The validated CI identity configuration; `overrides` (from CDK context) win over `raw`."""
    values = {**raw, **{key: value for key, value in overrides.items() if value is not None}}
    try:
        return CiIdentityConfig.model_validate(values)
    except ValidationError as error:
        heading = "invalid CI identity configuration (app_config/ci_identity.py)"
        raise config_error(error, model=CiIdentityConfig, heading=heading, whole="(ci identity)") from None
