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

# Where the image's CUDA version is written down, in the order the image gets CUDA from:
# a CUDA base image names it in its tag (`ARG BASE_IMAGE=pytorch/pytorch:2.9.0-cuda12.8-...`,
# `nvidia/cuda:12.8.0-...`); otherwise torch's CUDA build brings the CUDA runtime as a pinned
# wheel (`nvidia-cuda-runtime-cu12==12.8.90` / `nvidia-cuda-runtime==13.0.96` in constraints.txt).
_BASE_IMAGE_ARG = re.compile(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", re.MULTILINE)
_CUDA_IN_TAG = re.compile(r"cuda-?(\d+\.\d+)")
_NVIDIA_CUDA_TAG = re.compile(r"^(\d+\.\d+)(\.\d+)?-")
_CUDA_RUNTIME_PIN = re.compile(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+\.\d+)", re.MULTILINE | re.IGNORECASE)


def image_cuda_version(container_dir: Path) -> str | None:
    """The CUDA version ('12.8') of the image built from `container_dir`; None for a CPU-only image.

    The GPU host's driver must support it: the stack chooses the variant's
    InferenceAmiVersion from it (app_config/gpu_drivers.py).
    """
    container_dir = Path(container_dir)
    match = _BASE_IMAGE_ARG.search((container_dir / "Dockerfile").read_text())
    if match is None:
        raise ValueError(f"{container_dir / 'Dockerfile'}: no `ARG BASE_IMAGE=<image>` line")
    image = match.group(1)
    repository, _, tag = image.partition("@")[0].rpartition(":") if ":" in image.rpartition("/")[2] else (image, "", "")
    in_tag = _CUDA_IN_TAG.search(tag) or (_NVIDIA_CUDA_TAG.match(tag) if repository == "nvidia/cuda" else None)
    if in_tag:
        return in_tag.group(1)
    constraints = container_dir / "constraints.txt"
    pinned = _CUDA_RUNTIME_PIN.search(constraints.read_text()) if constraints.exists() else None
    return pinned.group(1) if pinned else None


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

    def grant_pull(self, grantee: iam.IGrantable) -> None:
        self.asset.repository.grant_pull(grantee)
