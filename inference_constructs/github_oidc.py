"""GitHub Actions' identity in AWS: the OIDC provider and the two roles CI assumes.

No long-lived AWS keys: a workflow job asks GitHub for a short-lived OIDC token,
and STS exchanges it for a role's credentials only if the token's audience and
subject match the role's trust policy exactly.

Neither role can change anything by itself. The diff role may only assume the
CDK bootstrap *lookup* role (read-only by the bootstrap template) for
`cdk diff --method=template`; the deploy role may only assume the bootstrap
roles that `cdk deploy` uses. What a deployment may create is therefore decided
by the bootstrap (`cdk bootstrap --cloudformation-execution-policies`), not by
anything a workflow can change.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
# The audience aws-actions/configure-aws-credentials requests by default.
STS_AUDIENCE = "sts.amazonaws.com"

# The roles `cdk bootstrap` (modern template) creates, named
# cdk-<qualifier>-<kind>-<account>-<region>.
LOOKUP_ROLE = "lookup-role"
DEPLOY_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", LOOKUP_ROLE)


class GitHubOidcRoles(Construct):
    """The GitHub OIDC provider (created or imported) plus a diff role and a deploy role.

    Each role trusts only the exact `sub` claims given (StringEquals, never
    StringLike), so a workflow in another repository, a fork, another branch or
    another GitHub environment cannot assume it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        diff_subjects: Sequence[str],
        deploy_subjects: Sequence[str],
        existing_provider_arn: str | None = None,
        bootstrap_qualifier: str = "hnb659fds",
        regions: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if not diff_subjects or not deploy_subjects:
            raise ValueError("GitHubOidcRoles needs at least one diff subject and one deploy subject")
        for subject in (*diff_subjects, *deploy_subjects):
            # A wildcard would silently widen StringEquals' meaning if someone switched to StringLike.
            if not subject.startswith("repo:") or any(char in subject for char in "*?"):
                raise ValueError(f"OIDC subject {subject!r} must be an exact 'repo:owner/name:...' claim")

        if existing_provider_arn:
            # One provider per issuer URL per account: reuse the one another stack made.
            self.provider_arn = existing_provider_arn
        else:
            # The native AWS::IAM::OIDCProvider (no custom-resource Lambda). No thumbprint:
            # IAM validates GitHub's certificate against its own trusted CAs.
            provider = iam.OidcProviderNative(self, "Provider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE])
            self.provider_arn = provider.oidc_provider_arn

        stack = cdk.Stack.of(self)
        # Empty: the region this stack is deployed to (a token when the stack is env-agnostic).
        target_regions = list(regions) or [stack.region]

        def bootstrap_roles(kinds: Sequence[str]) -> list[str]:
            return [
                stack.format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name=f"cdk-{bootstrap_qualifier}-{kind}-{stack.account}-{region}",
                )
                for region in target_regions
                for kind in kinds
            ]

        self.diff_role = self._role(
            "DiffRole",
            subjects=diff_subjects,
            description="GitHub Actions pull requests: cdk diff through the CDK bootstrap lookup role (read-only)",
            max_session_hours=1,
            policy_name="AssumeCdkLookupRole",
            assumable_roles=bootstrap_roles([LOOKUP_ROLE]),
        )
        self.deploy_role = self._role(
            "DeployRole",
            subjects=deploy_subjects,
            description="GitHub Actions deployments: cdk deploy through the CDK bootstrap roles only",
            # SageMaker endpoint updates can take well over an hour; the CLI re-assumes the
            # bootstrap roles from these credentials while it waits.
            max_session_hours=2,
            policy_name="AssumeCdkBootstrapRoles",
            assumable_roles=bootstrap_roles(DEPLOY_ROLES),
        )

    def _role(
        self,
        construct_id: str,
        *,
        subjects: Sequence[str],
        description: str,
        max_session_hours: int,
        policy_name: str,
        assumable_roles: list[str],
    ) -> iam.Role:
        """A role GitHub's `subjects` may assume, whose only permission is sts:AssumeRole on
        `assumable_roles` (CDK bootstrap roles): what it can do is what those roles can do."""
        return iam.Role(
            self,
            construct_id,
            assumed_by=self._github(subjects),
            description=description,
            max_session_duration=cdk.Duration.hours(max_session_hours),
            inline_policies={
                policy_name: iam.PolicyDocument(
                    statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=assumable_roles)]
                )
            },
        )

    def _github(self, subjects: Sequence[str]) -> iam.IPrincipal:
        return iam.WebIdentityPrincipal(
            self.provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": list(subjects),
                }
            },
        )
