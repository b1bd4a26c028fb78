"""`make local` in hosting mode realtime (and serverless): the real API Lambda calls the real
model server synchronously through the InvokeEndpoint stand-in; the CLI's `invoke --wait`
works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local_stack.pipeline import LocalPipeline
from local_stack.realtime_runtime import RealtimeRuntime
from tests.processes import run_captured

from .conftest import (
    LOCAL_STACK,
    MODEL_ERROR,
    check_cli_prints_the_models_answer,
    local_stack_env,
    make_local_process,
    running_pipeline,
    unique_text,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["realtime", "serverless"])
def sync_pipeline(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPipeline]:
    with running_pipeline(
        model_dir=tiny_model_dir,
        log_dir=tmp_path_factory.mktemp("realtime-logs"),
        lambda_environments=1,
        hosting_mode=request.param,
        lambda_env={"INLINE_RESULT_MAX_BYTES": "4096"},
    ) as local:
        yield local


def test_post_invocations_answers_200_with_what_the_model_answers(sync_pipeline: LocalPipeline) -> None:
    assert isinstance(sync_pipeline.runtime, RealtimeRuntime)
    text = unique_text("realtime")
    direct = sync_pipeline.container.invoke(text.encode(), content_type="text/plain").json()
    with httpx.Client(base_url=str(sync_pipeline.api_url), timeout=30, trust_env=False) as http:
        answer = http.post("/invocations", content=text.encode(), headers={"Content-Type": "text/plain"})
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["status"] == "Completed" and document["output"] == direct
        again = http.get(f"/invocations/{document['inferenceId']}")
        assert again.status_code == 200 and again.json()["output"] == direct


def test_a_model_error_is_a_failed_inference(sync_pipeline: LocalPipeline) -> None:
    with httpx.Client(base_url=str(sync_pipeline.api_url), timeout=30, trust_env=False) as http:
        answer = http.post("/invocations", json=MODEL_ERROR)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Failed" and answer.json()["failureReason"].startswith("the model answered 5")


def test_cli_invoke_wait_works_unchanged(sync_pipeline: LocalPipeline) -> None:
    check_cli_prints_the_models_answer(sync_pipeline, "cli realtime")


@pytest.mark.parametrize(
    "settings,mode",
    [
        ({"LOCAL_ENV": "example-realtime"}, "realtime"),
        ({"LOCAL_ENV": "example-serverless"}, "serverless"),
        ({"LOCAL_HOSTING_MODE": "realtime"}, "realtime"),
    ],
)
def test_make_local_runs_the_mode_of_the_environment(
    settings: dict[str, str], mode: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`make local LOCAL_ENV=example-realtime` (what `make local` runs: python -m local_stack)."""
    with make_local_process({"MODEL_DIR": str(tiny_model_dir), **settings}, tmp_path / "children.log") as (
        url,
        output,
    ):
        assert f"{mode}: InvokeEndpoint" in output, output
        answer = httpx.post(
            f"{url}/invocations",
            content=b"Hello from make local",
            headers={"Content-Type": "text/plain"},
            timeout=30,
            trust_env=False,
        )
        assert answer.status_code == 200 and answer.json()["status"] == "Completed", answer.text


def test_an_unknown_local_hosting_mode_is_named(tmp_path: Path) -> None:
    done = run_captured(
        LOCAL_STACK, env=local_stack_env({"LOCAL_HOSTING_MODE": "batch"}, tmp_path / "children.log"), timeout=60
    )
    assert (
        done.returncode != 0
        and "LOCAL_HOSTING_MODE='batch': choose one of async, realtime, serverless" in done.stderr + done.stdout
    )
