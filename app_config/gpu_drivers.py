"""Which SageMaker inference AMI (NVIDIA driver) runs an image built for a given CUDA version.

One table, from AWS's "Best practices to minimize interruptions during GPU driver
upgrades" page (current versions and supported instance families, and the AMI
override column):
https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html
and the `ProductionVariant.InferenceAmiVersion` reference (driver and CUDA version of
each AMI): https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html

Without `InferenceAmiVersion`, ml.g4dn / ml.g5 / ml.p4d run NVIDIA driver 470 (CUDA
11.4): an image built on CUDA 12.x then finds no usable GPU. The rule used here is
the strict one, driver CUDA version >= image CUDA version: CUDA's minor-version
compatibility lets some 12.x binaries run on an older 12.x driver, but not PTX JIT
and not every library (https://docs.nvidia.com/deploy/cuda-compatibility/), and a
half-working GPU is worse than a refused synth. The stack sets the AMI; the contract
check (devtools/aws_contract) verifies the synthesized template against this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app_config.errors import ConfigError


@dataclass(frozen=True)
class InferenceAmi:
    name: str
    nvidia_driver: int
    cuda: tuple[int, int]
    families: frozenset[str]


_CURRENT_GPU_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"})

# The overrides, oldest driver first: the stack picks the first whose CUDA suffices.
INFERENCE_AMIS: tuple[InferenceAmi, ...] = (
    InferenceAmi(
        "al2-ami-sagemaker-inference-gpu-2", 535, (12, 2), frozenset({"g4dn", "g5", "g6", "p3", "p4d", "p4de", "p5"})
    ),
    InferenceAmi(
        "al2-ami-sagemaker-inference-gpu-2-1", 535, (12, 2), frozenset({"g4dn", "g5", "g6", "p3", "p4d", "p4de", "p5"})
    ),
    InferenceAmi("al2-ami-sagemaker-inference-gpu-3-1", 550, (12, 4), _CURRENT_GPU_FAMILIES),
    InferenceAmi("al2023-ami-sagemaker-inference-gpu-4-1", 580, (13, 0), _CURRENT_GPU_FAMILIES),
)

# What a GPU family runs when no InferenceAmiVersion is set (the page's "default" column).
DEFAULT_DRIVERS: dict[str, tuple[int, tuple[int, int]]] = {
    **dict.fromkeys(("p2", "p3", "p4d", "p4de", "g4dn", "g5"), (470, (11, 4))),
    **dict.fromkeys(("p5", "g6"), (535, (12, 2))),
    **dict.fromkeys(("p5e", "p5en"), (550, (12, 4))),
}

# NVIDIA GPU families: ml.g* and ml.p* (ml.gr6 is a g family too). Graviton CPU
# families end in "g" (ml.c7g, ml.m7g) but start with c/m/r, so they are not caught.
_GPU_FAMILY = re.compile(r"^(g|gr|p)\d")
# AWS Inferentia / Trainium: Neuron accelerators, not CUDA.
_NEURON_FAMILY = re.compile(r"^(inf|trn)\d")
# Graviton (arm64) CPU families: ml.c6g, ml.m7g, ml.r6gd, ml.c6gn... The image is built for
# linux/amd64 and would fail there with "exec format error".
_ARM_FAMILY = re.compile(r"^[cmrt]\d+g[a-z]*$")


class UnsupportedInstanceType(ConfigError):
    """An instance type this image cannot use; the message names the value and why."""


def instance_family(instance_type: str) -> str:
    """'ml.g5.xlarge' -> 'g5'."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 else instance_type


def is_gpu_instance(instance_type: str) -> bool:
    return bool(_GPU_FAMILY.match(instance_family(instance_type)))


def is_neuron_instance(instance_type: str) -> bool:
    return bool(_NEURON_FAMILY.match(instance_family(instance_type)))


def is_arm_instance(instance_type: str) -> bool:
    return bool(_ARM_FAMILY.match(instance_family(instance_type)))


def parse_cuda_version(text: str) -> tuple[int, int]:
    """'12.8' -> (12, 8)."""
    match = re.fullmatch(r"(\d+)\.(\d+)", text)
    if not match:
        raise ValueError(f"{text!r} is not a CUDA version like '12.8'")
    return int(match.group(1)), int(match.group(2))


def ami_by_name(name: str) -> InferenceAmi | None:
    return next((ami for ami in INFERENCE_AMIS if ami.name == name), None)


def inference_ami_for(instance_type: str, cuda_version: str | None) -> str | None:
    """The inference AMI with the oldest driver that supports `cuda_version` on `instance_type`.

    None for a CPU instance type (nothing to choose). Raises UnsupportedInstanceType,
    naming the instance type, when no AMI covers it or the image has no CUDA at all.
    """
    if not is_gpu_instance(instance_type):
        return None
    if cuda_version is None:
        raise UnsupportedInstanceType(
            f"instance_type {instance_type!r} is a GPU type but the image's base has no CUDA "
            "(container/Dockerfile ARG BASE_IMAGE): the GPU would sit unused"
        )
    family = instance_family(instance_type)
    cuda = parse_cuda_version(cuda_version)
    candidates = [ami for ami in INFERENCE_AMIS if family in ami.families]
    for ami in candidates:
        if ami.cuda >= cuda:
            return ami.name
    offered = ", ".join(f"{ami.name} (CUDA {ami.cuda[0]}.{ami.cuda[1]})" for ami in candidates) or "none"
    raise UnsupportedInstanceType(
        f"instance_type {instance_type!r}: no SageMaker inference AMI runs the image's CUDA {cuda_version} "
        f"on the {family} family (AMIs for {family}: {offered}; "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html). "
        f"Choose one of the families {', '.join(sorted(INFERENCE_AMIS[-1].families))}, or build the image on an older "
        "CUDA."
    )
