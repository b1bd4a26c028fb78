"""The inference server image, built from container/ for linux/amd64."""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

# Files in container/ that never belong in the build context: keeps the asset
# hash (and so `cdk diff`) stable when only caches change.
_EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]

# The Dockerfile's default base image, e.g. `ARG BASE_IMAGE=pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime`:
# the one place the image's CUDA version is written down (the GPU driver choice reads it).
_BASE_IMAGE_ARG = re.compile(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", re.MULTILINE)
_CUDA_IN_TAG = re.compile(r"cuda-?(\d+\.\d+)")


def image_cuda_version(dockerfile: Path) -> str | None:
    """The CUDA version of the Dockerfile's default base image ('12.8'), None for a CPU-only base.

    Read from the tag of `ARG BASE_IMAGE=...` (PyTorch's and NVIDIA's images name it
    there: `...-cuda12.8-...`, `nvidia/cuda:12.8.0-...`).
    """
    match = _BASE_IMAGE_ARG.search(Path(dockerfile).read_text())
    if match is None:
        raise ValueError(f"{dockerfile}: no `ARG BASE_IMAGE=<image>` line to read the CUDA version from")
    image = match.group(1)
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    found = _CUDA_IN_TAG.search(tag)
    if found:
        return found.group(1)
    nvidia = re.match(r"(\d+\.\d+)(\.\d+)?-", tag) if image.startswith("nvidia/cuda:") else None
    return nvidia.group(1) if nvidia else None


class ModelImage(Construct):
    """A DockerImageAsset: staged into cdk.out at synth, built and pushed at deploy.

    The platform is pinned to linux/amd64: SageMaker GPU hosts are x86_64 and an
    image built natively on an ARM laptop fails there with "exec format error".
    """

    def __init__(self, scope: Construct, construct_id: str, *, directory: str) -> None:
        super().__init__(scope, construct_id)
        self.cuda_version = image_cuda_version(Path(directory) / "Dockerfile")
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

    def grant_pull(self, grantee: iam.IGrantable) -> None:
        self.asset.repository.grant_pull(grantee)
