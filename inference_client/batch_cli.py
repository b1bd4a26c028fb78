"""The `batch` command of the CLI: start a batch transform job and show its progress until done.

    python -m inference_client batch s3://BUCKET/batch/in/ s3://BUCKET/batch/out/ --model-name NAME
    INFERENCE_MODEL_NAME=NAME python -m inference_client batch s3://BUCKET/batch/in/ s3://BUCKET/batch/out/

It calls SageMaker with the caller's AWS credentials (botocore's chain; AWS_ENDPOINT_URL_SAGEMAKER
points it at a local stand-in). Exit status: 0 Completed, 1 Failed or Stopped, 2 a request the
service model refuses (named), 3 SageMaker refused or is unreachable, 4 --wait-timeout passed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from inference_client.batch import DEFAULT_INSTANCE_TYPE, BatchError, BatchRequest, run
from inference_client.exits import EXIT_API, EXIT_FAILED, EXIT_TIMEOUT, EXIT_USAGE, Failure, exit_status

_REPO_CONTAINER = Path(__file__).resolve().parents[1] / "container"


def add_batch_command(commands: Any) -> None:
    batch = commands.add_parser("batch", help="score an S3 prefix offline with a SageMaker batch transform job")
    batch.add_argument("input", help="S3 prefix of the input objects, e.g. s3://bucket/batch/in/")
    batch.add_argument("output", help="S3 prefix for the results (<object>.out), e.g. s3://bucket/batch/out/")
    batch.add_argument(
        "--model-name",
        default=os.environ.get("INFERENCE_MODEL_NAME"),
        help="the SageMaker model: the environment's stack output ModelName (default: INFERENCE_MODEL_NAME)",
    )
    batch.add_argument(
        "--instance-type",
        default=DEFAULT_INSTANCE_TYPE,
        help=f"transform instance type (default {DEFAULT_INSTANCE_TYPE})",
    )
    batch.add_argument("--instance-count", type=int, default=1)
    batch.add_argument("--content-type", help="Content-Type of the input objects (e.g. application/json)")
    batch.add_argument("--accept", help="Accept passed to the model")
    batch.add_argument(
        "--split-type",
        choices=["None", "Line"],
        default="None",
        help="Line: one request per line of each object (JSON Lines, CSV); None: one per object",
    )
    batch.add_argument("--max-payload-mb", type=int, help="largest request in MB (MaxPayloadInMB)")
    batch.add_argument("--max-concurrent", type=int, help="concurrent requests per instance (MaxConcurrentTransforms)")
    batch.add_argument("--kms-key-id", help="KMS key for the results (the output bucket's key)")
    batch.add_argument("--job-name", help="TransformJobName (default: batch-<model>-<random>)")
    batch.add_argument("--poll", type=float, default=30.0, metavar="SECONDS", help="seconds between progress checks")
    batch.add_argument(
        "--wait-timeout", type=float, metavar="SECONDS", help="stop waiting after this long (the job goes on)"
    )
    batch.add_argument("--region", help="AWS region (default: the credentials' profile or AWS_REGION)")


def _image_cuda() -> str | None:
    """The CUDA version of this repository's image, when the CLI runs from a checkout."""
    if not _REPO_CONTAINER.is_dir():
        return None
    try:
        from app_config.image_cuda import image_cuda_version

        return image_cuda_version(_REPO_CONTAINER)
    except Exception:  # noqa: BLE001 - outside the repository the check is the service's
        return None


def run_batch(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    import boto3

    if not args.model_name:
        stderr.write("error: name the model: --model-name NAME or INFERENCE_MODEL_NAME (the stack output ModelName)\n")
        return EXIT_USAGE
    request = BatchRequest(
        input_uri=args.input,
        output_uri=args.output,
        model_name=args.model_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        content_type=args.content_type,
        accept=args.accept,
        split_type=args.split_type,
        max_payload_mb=args.max_payload_mb,
        max_concurrent_transforms=args.max_concurrent,
        kms_key_id=args.kms_key_id,
        job_name=args.job_name,
        image_cuda=_image_cuda(),
    )

    def progress(elapsed: float, job: dict[str, Any]) -> None:
        stderr.write(f"[{elapsed:6.0f} s] {job.get('TransformJobName')}: {job.get('TransformJobStatus')}\n")
        stderr.flush()

    def transform() -> int:
        client = boto3.client("sagemaker", region_name=args.region)
        job = run(request, client=client, poll_seconds=args.poll, timeout=args.wait_timeout, on_progress=progress)
        keys = ("TransformJobName", "TransformJobStatus", "FailureReason")
        summary = {key: job.get(key) for key in keys if job.get(key)}
        summary["output"] = request.output_uri
        stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0 if job.get("TransformJobStatus") == "Completed" else EXIT_FAILED

    return exit_status(transform, _FAILURES, stderr)


_FAILURES = (
    # A request botocore's service model refuses, named before anything is sent.
    Failure(BatchError, "error: {error}", EXIT_USAGE),
    # --wait-timeout passed; the job goes on.
    Failure(TimeoutError, "gave up waiting: {error}", EXIT_TIMEOUT),
    Failure(ClientError, "error: SageMaker: {error}", EXIT_API),
    Failure(BotoCoreError, "error: SageMaker: {error}", EXIT_API),
)
