"""CiIdentityConfig: a wrong value fails synth with a message naming it."""

from __future__ import annotations

from typing import Any

import pytest

from app_config import ConfigError
from app_config.ci_identity import CI_IDENTITY, load_ci_identity

VALID: dict[str, Any] = {"github_repository": "acme-corp/inference.service_2"}


def test_shipped_configuration_is_valid() -> None:
    config = load_ci_identity(CI_IDENTITY)
    assert config.environments == ("dev", "prod")
    assert config.bootstrap_qualifier == "hnb659fds"


def test_subjects_are_exact_github_claims() -> None:
    config = load_ci_identity(VALID)
    assert config.pull_request_subject == "repo:acme-corp/inference.service_2:pull_request"
    assert config.environment_subject("prod") == "repo:acme-corp/inference.service_2:environment:prod"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"github_repository": "inference-service"}, "github_repository = 'inference-service': .*owner/name"),
        ({"github_repository": "acme/*"}, r"github_repository = 'acme/\*'"),
        ({"github_repository": "-acme/x"}, "github_repository"),
        ({"github_repository": "acme/.."}, "github_repository"),
        ({"github_repository": "acme/x:pull_request"}, "github_repository"),
        (
            {"existing_provider_arn": "arn:aws:iam::123:oidc-provider/x"},
            "existing_provider_arn = .*GitHub Actions OIDC",
        ),
        ({"environments": ()}, "environments"),
        ({"environments": ("prod", "prod")}, "names an environment twice"),
        ({"environments": ("pr*d",)}, "'pr\\*d' is not a GitHub environment name"),
        ({"deploy_regions": ("eu-west",)}, "deploy_regions.*'eu-west' is not an AWS region"),
        ({"bootstrap_qualifier": "Has-Caps"}, "bootstrap_qualifier = 'Has-Caps'"),
        ({"account": "12345"}, "account = '12345': .*12-digit"),
        ({"unknown_key": 1}, "unknown_key"),
        (
            {
                "account": "111111111111",
                "existing_provider_arn": "arn:aws:iam::222222222222:oidc-provider/token.actions.githubusercontent.com",
            },
            "account 222222222222, but the CI identity stack deploys to account 111111111111",
        ),
    ],
)
def test_invalid_value_is_named(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_ci_identity({**VALID, **changes})


def test_context_override_wins_and_none_is_ignored() -> None:
    assert load_ci_identity(VALID, github_repository="o/n").github_repository == "o/n"
    assert load_ci_identity(VALID, github_repository=None).github_repository == VALID["github_repository"]
