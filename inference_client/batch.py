"""Offline scoring of an S3 dataset with SageMaker batch transform, on the environment's own model.

    python -m inference_client batch s3://bucket/batch/in/ s3://bucket/batch/out/ --model-name NAME

CreateTransformJob runs the same container and model as the endpoint on instances of its own:
every object under the input prefix (or every line, with --split-type Line) is one POST
/invocations; the answers land under the output prefix as <object>.out. The job reads the
input and writes the output with the model's execution role (the stack grants it the
batch/ prefixes: stack outputs BatchInputUri, BatchOutputUri).
https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html

The request is checked against botocore's own sagemaker service model (required members,
enums, ranges, patterns) before anything is sent, and refused with the member and the rule.

GPUs: the image's CUDA version needs a host driver that supports it. Batch transform offers
the TransformAmiVersion al2-ami-sagemaker-batch-gpu-470 (CUDA 11.4) and -535 (CUDA 12.2); an
image built for a newer CUDA cannot use a GPU there, so GPU instance types are refused for it
and the job runs on CPU (MODEL_SERVER_DEVICE=cpu in the job's Environment).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from model_server import contract as container_contract

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
FINAL_STATES = ("Completed", "Failed", "Stopped")
# TransformAmiVersion -> the newest CUDA its NVIDIA driver supports (driver 470: 11.4, 535: 12.2).
BATCH_GPU_AMIS = {"al2-ami-sagemaker-batch-gpu-535": (12, 2), "al2-ami-sagemaker-batch-gpu-470": (11, 4)}
_GPU_FAMILY = re.compile(r"^ml\.(p\d|g\d)[a-z]*\.")
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(.*/)?$")


class BatchError(ValueError):
    """The batch request cannot be sent: the message names what is wrong and what is allowed."""


@dataclass(frozen=True)
class BatchRequest:
    input_uri: str
    output_uri: str
    model_name: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    content_type: str | None = None
    accept: str | None = None
    split_type: str = "None"
    max_payload_mb: int | None = None
    max_concurrent_transforms: int | None = None
    kms_key_id: str | None = None
    job_name: str | None = None
    image_cuda: str | None = None


def is_gpu_type(instance_type: str) -> bool:
    return bool(_GPU_FAMILY.match(instance_type))


def transform_ami_for(instance_type: str, image_cuda: str | None) -> str | None:
    """The TransformAmiVersion a GPU job needs, None on CPU; BatchError when no batch AMI fits."""
    if not is_gpu_type(instance_type):
        return None
    if image_cuda is None:
        raise BatchError(
            f"{instance_type} is a GPU instance type but the image has no CUDA: use a CPU type such as "
            f"{DEFAULT_INSTANCE_TYPE}"
        )
    needed = tuple(int(part) for part in image_cuda.split(".")[:2])
    for ami, supported in BATCH_GPU_AMIS.items():
        if supported >= needed:
            return ami
    offered = ", ".join(f"{ami} (CUDA {c[0]}.{c[1]})" for ami, c in BATCH_GPU_AMIS.items())
    raise BatchError(
        f"--instance-type {instance_type}: the image is built for CUDA {image_cuda}, and batch transform's GPU "
        f"AMIs offer {offered}; the GPU would be unusable. Use a CPU instance type such as {DEFAULT_INSTANCE_TYPE}."
    )


def new_job_name(model_name: str) -> str:
    """'batch-' + the model's name, cut to fit, + a random suffix: unique, within TransformJobName's 63."""
    stem = re.sub(r"[^a-zA-Z0-9-]", "-", model_name)[:40].strip("-") or "model"
    return f"batch-{stem}-{uuid.uuid4().hex[:12]}"


def create_transform_job_params(request: BatchRequest) -> dict[str, Any]:
    """The CreateTransformJob parameters for `request`, validated against botocore's model."""
    for name, uri in (("input", request.input_uri), ("output", request.output_uri)):
        if not _S3_PREFIX.match(uri):
            raise BatchError(f"{name} {uri!r} is not an S3 prefix like 's3://bucket/batch/{name}/' (ending in '/')")
    if request.input_uri == request.output_uri or request.output_uri.startswith(request.input_uri):
        raise BatchError(
            f"the output {request.output_uri!r} lies inside the input {request.input_uri!r}: results would be read "
            "back as input"
        )
    data_input: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": request.input_uri}},
        "SplitType": request.split_type,
    }
    if request.content_type:
        data_input["ContentType"] = request.content_type
    output: dict[str, Any] = {
        "S3OutputPath": request.output_uri,
        "AssembleWith": "Line" if request.split_type == "Line" else "None",
    }
    if request.accept:
        output["Accept"] = request.accept
    if request.kms_key_id:
        output["KmsKeyId"] = request.kms_key_id
    resources: dict[str, Any] = {"InstanceType": request.instance_type, "InstanceCount": request.instance_count}
    params: dict[str, Any] = {
        "TransformJobName": request.job_name or new_job_name(request.model_name),
        "ModelName": request.model_name,
        "TransformInput": data_input,
        "TransformOutput": output,
        "TransformResources": resources,
        # One record per request: the model server batches concurrent requests itself.
        "BatchStrategy": "SingleRecord",
    }
    if request.max_payload_mb is not None:
        params["MaxPayloadInMB"] = request.max_payload_mb
    if request.max_concurrent_transforms is not None:
        params["MaxConcurrentTransforms"] = request.max_concurrent_transforms
    problems = validate_against_model("CreateTransformJob", params)
    if problems:
        raise BatchError("CreateTransformJob request refused before sending: " + "; ".join(problems))
    # Only for an instance type the model knows: the driver its GPU gets.
    ami = transform_ami_for(request.instance_type, request.image_cuda)
    if ami:
        resources["TransformAmiVersion"] = ami
    # The device the job's instances provide (the model's own variable says the endpoint's).
    params["Environment"] = {container_contract.DEVICE: "cuda" if ami else "cpu"}
    return params


def validate_against_model(operation: str, params: dict[str, Any]) -> list[str]:
    """What botocore's sagemaker model says is wrong with `params`: required and unknown members,
    types and minimums (botocore's own validator), and the enums, maximums and patterns it leaves
    to the service."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    problems: list[str] = []
    _walk(shape, params, operation, problems)
    return problems


def _walk(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}: missing required member {name}")
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{path}: unknown member {name}")
            else:
                _walk(shape.members[name], item, f"{path}.{name}", problems)
        return
    if kind == "map":
        if len(value) > shape.metadata.get("max", len(value)):
            problems.append(f"{path}: {len(value)} entries, at most {shape.metadata['max']}")
        for key, item in value.items():
            _walk(shape.value, item, f"{path}[{key!r}]", problems)
        return
    if kind == "string":
        text = str(value)
        if shape.enum and text not in shape.enum:
            problems.append(
                f"{path}: {text!r} is not one of {shape.name}'s values "
                f"({', '.join(shape.enum[:8])}{', ...' if len(shape.enum) > 8 else ''})"
            )
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and len(text) < low) or (high is not None and len(text) > high):
            problems.append(f"{path}: {len(text)} characters, allowed {low}-{high}")
        pattern = shape.metadata.get("pattern")
        if pattern and re.fullmatch(pattern, text) is None:
            problems.append(f"{path}: {text!r} does not match {shape.name}'s pattern {pattern}")
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: {value!r} is not a whole number")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            problems.append(f"{path}: {value} is outside {shape.name}'s range {low}-{high}")


def describe(client: Any, job_name: str) -> dict[str, Any]:
    return client.describe_transform_job(TransformJobName=job_name)


def run(
    request: BatchRequest,
    *,
    client: Any | None = None,
    poll_seconds: float = 30.0,
    timeout: float | None = None,
    on_progress: Callable[[float, dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Start the job and poll DescribeTransformJob until it is Completed, Failed or Stopped."""
    params = create_transform_job_params(request)
    client = client or boto3.client("sagemaker")
    client.create_transform_job(**params)
    started = clock()
    while True:
        job = describe(client, params["TransformJobName"])
        elapsed = clock() - started
        if on_progress is not None:
            on_progress(elapsed, job)
        if job.get("TransformJobStatus") in FINAL_STATES:
            return job
        if timeout is not None and elapsed + poll_seconds > timeout:
            raise TimeoutError(
                f"transform job {params['TransformJobName']} still {job.get('TransformJobStatus')} after "
                f"{elapsed:.0f} s (it goes on)"
            )
        sleep(poll_seconds)
