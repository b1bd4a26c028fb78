"""A 50 MB text through `make local`'s upload flow, end to end, with the model server's memory bounded.

Client -> POST /uploads + presigned upload to (moto) S3 -> POST /invocations {"uploadId"} -> the
SageMaker async runtime stand-in reads the object and POSTs it to the real model server (default
MODEL_SERVER_MAX_REQUEST_BYTES: SageMaker's 1 GB async limit) -> result. The server's resident
memory (/proc/PID/status VmRSS) must come back under 1.5x its idle level afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference_client.client import InferenceClient
from local_stack.aws import aws_client
from local_stack.pipeline import LocalPipeline
from tests.process_memory import rss_bytes

from .conftest import receipt_of, running_pipeline, unique_text

pytestmark = pytest.mark.slow

FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def default_pipeline(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    """`make local` with its default limits (the package's pipeline lowers the upload limit for its tests)."""
    with running_pipeline(model_dir=tiny_model_dir, log_dir=tmp_path_factory.mktemp("large-upload-logs")) as local:
        yield local


def text_of(size: int, seed: str) -> bytes:
    line = f"{seed} the quick brown fox jumps over the lazy dog, again and again.\n".encode()
    return (line * (size // len(line) + 1))[:size]


def test_a_50_mb_text_upload_completes_and_server_memory_returns_near_idle(default_pipeline: LocalPipeline) -> None:
    healthy_pipeline = default_pipeline
    assert healthy_pipeline.aws_endpoint_url is not None
    s3 = aws_client("s3", healthy_pipeline.aws_endpoint_url)
    container = healthy_pipeline.container
    assert container.process is not None
    pid = container.process.pid
    client = InferenceClient(str(healthy_pipeline.api_url), timeout=120)

    # Idle level: after a small request through the same path (the model is warm).
    warm = client.submit(unique_text("warm").encode(), "text/plain")
    assert client.wait(warm["inferenceId"], timeout=60, initial_interval=0.1, max_interval=0.5)
    idle = rss_bytes(pid)

    payload = text_of(FIFTY_MB, unique_text("large"))
    accepted = client.submit(payload, "text/plain")
    inference_id = accepted["inferenceId"]
    receipt = receipt_of(s3, healthy_pipeline, inference_id)
    assert receipt["uploadId"], "a 50 MB payload must go through POST /uploads"

    document = client.wait(inference_id, timeout=300, initial_interval=0.2, max_interval=1.0)
    assert document["status"] == "Completed", document
    result = client.result(inference_id, document)
    output = json.loads(result.body)
    assert "generated_text" in json.dumps(output)

    deadline = time.monotonic() + 15
    after = rss_bytes(pid)
    while after >= 1.5 * idle and time.monotonic() < deadline:
        time.sleep(0.2)
        after = rss_bytes(pid)
    print(f"model server RSS: idle {idle / 2**20:.0f} MiB, after the 50 MB request {after / 2**20:.0f} MiB")
    assert after < 1.5 * idle, (
        f"model server RSS {after / 2**20:.0f} MiB after the 50 MB request, idle {idle / 2**20:.0f} MiB"
    )
    assert container.ping() == 200
