"""`python -m inference_client batch s3://in/ s3://out/` against the local batch transform stand-in
(local_stack/transform_runtime.py) with the real model server and moto's S3 of the e2e pipeline.

The stand-in validates CreateTransformJob against botocore's sagemaker model, as the CLI does
before sending; these tests drive the CLI through boto3's real client (AWS_ENDPOINT_URL_SAGEMAKER).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from inference_client.batch import BatchError, BatchRequest, create_transform_job_params
from local_stack.aws import aws_client
from local_stack.pipeline import LocalPipeline
from local_stack.transform_runtime import TransformRuntime

from .conftest import MODEL_ERROR, run_cli, unique_text

pytestmark = pytest.mark.slow
MODEL = "local-model"


@pytest.fixture
def transform(
    healthy_pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TransformRuntime, Any, str]]:
    s3 = aws_client("s3", healthy_pipeline.aws_endpoint_url)
    runtime = TransformRuntime(models={MODEL: healthy_pipeline.container.url}, s3=s3)
    runtime.start()
    for name, value in {
        "AWS_ENDPOINT_URL_SAGEMAKER": runtime.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert healthy_pipeline.resources is not None
    yield runtime, s3, healthy_pipeline.resources.input_bucket
    runtime.stop()


def _batch(bucket: str, run: str, *options: str) -> tuple[int, str, str]:
    """`inference-client batch` of the JSON records under batch/in/<run>/ into batch/out/<run>/,
    polling every 0.2 s (the job takes seconds locally)."""
    prefix = f"s3://{bucket}/batch"
    return run_cli(
        "batch",
        f"{prefix}/in/{run}/",
        f"{prefix}/out/{run}/",
        "--content-type",
        "application/json",
        "--poll",
        "0.2",
        *options,
    )


def test_batch_scores_every_object_and_reports_progress_until_completed(
    healthy_pipeline: LocalPipeline, transform
) -> None:
    _runtime, s3, bucket = transform
    texts = {f"batch/in/run1/doc{i}.json": {"inputs": unique_text(f"doc {i}")} for i in range(2)}
    for key, document in texts.items():
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
    code, out, err = _batch(bucket, "run1", "--model-name", MODEL)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["TransformJobStatus"] == "Completed"
    assert "InProgress" in err and "Completed" in err  # progress until done
    for key, document in texts.items():
        expected = healthy_pipeline.container.invoke(json.dumps(document).encode()).json()
        result_key = key.replace("batch/in/run1/", "batch/out/run1/") + ".out"
        assert json.loads(s3.get_object(Bucket=bucket, Key=result_key)["Body"].read()) == expected


def test_line_split_sends_one_request_per_line(healthy_pipeline: LocalPipeline, transform) -> None:
    runtime, s3, bucket = transform
    lines = [json.dumps({"inputs": unique_text(f"line {i}")}) for i in range(3)]
    s3.put_object(Bucket=bucket, Key="batch/in/run2/lines.jsonl", Body="\n".join(lines).encode())
    before = runtime.requests_sent
    code, _, err = _batch(bucket, "run2", "--model-name", MODEL, "--split-type", "Line")
    assert code == 0, err
    assert runtime.requests_sent - before == 3
    answers = s3.get_object(Bucket=bucket, Key="batch/out/run2/lines.jsonl.out")["Body"].read().split(b"\n")
    assert len(answers) == 3


def test_a_record_the_model_refuses_fails_the_job_with_the_reason(transform) -> None:
    _, s3, bucket = transform
    s3.put_object(Bucket=bucket, Key="batch/in/run3/bad.json", Body=json.dumps(MODEL_ERROR).encode())
    code, out, err = _batch(bucket, "run3", "--model-name", MODEL)
    assert code == 1, err
    summary = json.loads(out)
    assert summary["TransformJobStatus"] == "Failed" and "bad.json" in summary["FailureReason"]


def test_unknown_model_is_sagemakers_validation_error(transform) -> None:
    _, _, bucket = transform
    code, _, err = _batch(bucket, "x", "--model-name", "no-such-model")
    assert code == 3 and "ValidationException" in err and "no-such-model" in err


@pytest.mark.parametrize(
    "changes,fragment",
    [
        (
            {"instance_type": "ml.g4dn.huge"},
            "TransformResources.InstanceType: 'ml.g4dn.huge' is not one of TransformInstanceType",
        ),
        ({"instance_count": 0}, "TransformResources.InstanceCount: 0 is outside"),
        ({"job_name": "bad_name!"}, "TransformJobName: 'bad_name!' does not match"),
        ({"input_uri": "s3://bucket/in"}, "is not an S3 prefix"),
        ({"output_uri": "s3://bucket/in/out/"}, "lies inside the input"),
        ({"instance_type": "ml.g5.xlarge", "image_cuda": "13.0"}, "the image is built for CUDA 13.0"),
    ],
)
def test_requests_are_refused_before_sending_naming_the_rule(changes: dict[str, Any], fragment: str) -> None:
    request = BatchRequest(
        **{"input_uri": "s3://bucket/in/", "output_uri": "s3://bucket/out/", "model_name": "m", **changes}
    )
    with pytest.raises(BatchError) as raised:
        create_transform_job_params(request)
    assert fragment in str(raised.value), str(raised.value)


def test_gpu_job_gets_a_batch_ami_whose_driver_fits_the_cuda() -> None:
    params = create_transform_job_params(
        BatchRequest(
            input_uri="s3://bucket/in/",
            output_uri="s3://bucket/out/",
            model_name="m",
            instance_type="ml.g5.xlarge",
            image_cuda="12.1",
        )
    )
    assert params["TransformResources"]["TransformAmiVersion"] == "al2-ami-sagemaker-batch-gpu-535"
    assert params["Environment"] == {"MODEL_SERVER_DEVICE": "cuda"}


def test_the_model_name_comes_from_the_environment_or_is_asked_for(transform, monkeypatch: pytest.MonkeyPatch) -> None:
    _, s3, bucket = transform
    s3.put_object(Bucket=bucket, Key="batch/in/run4/doc.json", Body=json.dumps({"inputs": unique_text("env")}).encode())
    monkeypatch.delenv("INFERENCE_MODEL_NAME", raising=False)
    code, _, err = _batch(bucket, "run4")
    assert code == 2 and "--model-name NAME or INFERENCE_MODEL_NAME" in err
    monkeypatch.setenv("INFERENCE_MODEL_NAME", MODEL)
    code, out, err = _batch(bucket, "run4")
    assert code == 0 and json.loads(out)["TransformJobStatus"] == "Completed", err
