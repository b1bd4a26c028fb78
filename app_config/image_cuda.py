"""The CUDA version of the inference image, read from where the image gets CUDA.

No aws_cdk import: devtools/aws_contract uses it on templates without starting jsii.
"""

from __future__ import annotations

import re
from pathlib import Path

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
