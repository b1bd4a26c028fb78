"""The CI identity: what GitHub Actions may assume in this account. Deployed once, by hand.

Separate from the service stacks on purpose: the pipeline's own permissions must
not be changeable by the pipeline (the deploy role cannot update this stack: it
can only assume the CDK bootstrap roles, and a reviewer-approved pull request is
the only way in). See docs/delivery.md for the one-time commands.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from app_config.ci_identity import CiIdentityConfig
from inference_constructs.github_oidc import GitHubOidcRoles
from stacks.compliance import CI_IDENTITY_FINDINGS, acknowledge_findings


class CiIdentityStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: CiIdentityConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        github = GitHubOidcRoles(
            self,
            "GitHub",
            diff_subjects=[config.pull_request_subject],
            deploy_subjects=[config.environment_subject(name) for name in config.environments],
            existing_provider_arn=config.existing_provider_arn,
            bootstrap_qualifier=config.bootstrap_qualifier,
            regions=config.deploy_regions,
        )

        # The values docs/delivery.md asks to store as GitHub variables.
        cdk.CfnOutput(
            self, "DiffRoleArn", value=github.diff_role.role_arn, description="GitHub variable AWS_DIFF_ROLE_ARN"
        )
        cdk.CfnOutput(
            self, "DeployRoleArn", value=github.deploy_role.role_arn, description="GitHub variable AWS_DEPLOY_ROLE_ARN"
        )
        cdk.CfnOutput(self, "OidcProviderArn", value=github.provider_arn)

        # Its own list: the project's FINDINGS name constructs of the service stack.
        acknowledge_findings(self, CI_IDENTITY_FINDINGS, checkov_skips=())
