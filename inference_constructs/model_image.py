"""The inference server image, built from container/ for linux/amd64."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

from app_config.image_cuda import image_cuda_version

# Files in container/ that never belong in the build context: keeps the asset
# hash (and so `cdk diff`) stable when only caches change.
_EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]


class ModelImage(Construct):
    """A DockerImageAsset: staged into cdk.out at synth, built and pushed at deploy.

    The platform is pinned to linux/amd64: SageMaker GPU hosts are x86_64 and an
    image built natively on an ARM laptop fails there with "exec format error".
    """

    def __init__(self, scope: Construct, construct_id: str, *, directory: str) -> None:
        super().__init__(scope, construct_id)
        self.cuda_version = image_cuda_version(Path(directory))
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=directory,
            platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=_EXCLUDE,
        )

    @property
    def image_uri(self) -> str:
        return self.asset.image_uri

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.asset.repository.grant_pull(grantee)
