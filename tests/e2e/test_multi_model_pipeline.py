"""The local pipeline with several models, in both ways this project offers them:

- hosting mode multimodel (a SageMaker multi-model endpoint): the real API Lambda calls
  InvokeEndpoint with TargetModel; the stand-in (local_stack/multi_model.py) loads the target
  into the real model server (POST /models), evicts the least recently used model on its 507
  (DELETE /models/{name}) and invokes it (POST /models/{name}/invoke);
- hosting mode async with a model artifact of <name>/ folders: the Lambda forwards the model as
  custom attribute model=<name> through InvokeEndpointAsync; the model server loads on demand
  and evicts the least recently used model itself.

Each covers load, invoke, unload (eviction) and an unknown model, through the public API.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local_stack.multi_model import MultiModelRuntime
from local_stack.pipeline import LocalPipeline

from .conftest import Api, invoke_wait, make_local_process, running_pipeline

pytestmark = pytest.mark.slow

TEXT = {"inputs": "I love this movie, it is great."}
# Room for one engine (Python + torch + a tiny model: 250-500 MiB of RSS) but not two, so the
# second model evicts the first (the first load is always tried: there is nothing to evict).
ONE_ENGINE_BUDGET = str(384 * 1024**2)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.container.tiny_models import build_model_pair

    return build_model_pair(tmp_path_factory.mktemp("e2e-models"))


def _running(model_dir: Path, mode: str, logs: Path) -> Iterator[LocalPipeline]:
    """The pipeline in `mode` serving `model_dir`, with one engine's worth of model memory."""
    with running_pipeline(
        model_dir=model_dir,
        log_dir=logs,
        lambda_environments=1,
        hosting_mode=mode,
        status_retry_after_seconds=1,
        container_env={"MODEL_SERVER_MODELS_MEMORY_BYTES": ONE_ENGINE_BUDGET},
        lambda_env={"INLINE_RESULT_MAX_BYTES": "65536"},
    ) as local:
        yield local


def _post(api: Api, path: str, key: str, **kwargs) -> httpx.Response:
    """POST as a client should: a cold model load can outlast API Gateway's 29 s, and the API then
    answers 503 + Retry-After; the same Idempotency-Key replays the finished inference."""
    headers = {"Idempotency-Key": key, **kwargs.pop("headers", {})}
    for _ in range(4):
        answer = api.http.post(path, headers=headers, **kwargs)
        if answer.status_code != 503:
            return answer
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    return answer


def _loaded(local: LocalPipeline) -> list[str]:
    return [
        m["modelName"] for m in httpx.get(f"{local.container.url}/models", timeout=10, trust_env=False).json()["models"]
    ]


# ----------------------------------------------------------------------------- multimodel
@pytest.fixture(scope="module")
def mme(two_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    # The endpoint's "S3 prefix": one model as a folder, one as the tarball SageMaker would download.
    prefix = tmp_path_factory.mktemp("prefix")
    shutil.copytree(two_models["summarizer"], prefix / "summarizer")
    with tarfile.open(prefix / "sentiment.tar.gz", "w:gz") as archive:
        for path in sorted(two_models["sentiment"].iterdir()):
            archive.add(path, arcname=path.name)
    yield from _running(prefix, "multimodel", tmp_path_factory.mktemp("mme-logs"))


def test_multimodel_load_invoke_evict_and_unknown(mme: LocalPipeline) -> None:
    assert isinstance(mme.runtime, MultiModelRuntime)
    assert _loaded(mme) == []  # the endpoint starts with no model loaded
    api = Api(str(mme.api_url))

    first = _post(api, "/models/summarizer/invocations", "first", json=TEXT)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "Completed" and "generated_text" in first.json()["output"][0]
    assert len(_loaded(mme)) == 1

    # A tarball target, named by the query parameter: loading it needs the room the first one holds.
    second = _post(api, "/invocations", "second", params={"model": "sentiment.tar.gz"}, json=TEXT)
    assert second.status_code == 200, second.text
    assert second.json()["output"][0]["label"] in ("negative", "positive")
    assert mme.runtime.evictions and mme.runtime.evictions[0].startswith("summarizer")
    assert len(_loaded(mme)) == 1 and _loaded(mme)[0].startswith("sentiment")

    again = _post(api, "/invocations", "again", headers={"X-Amzn-SageMaker-Target-Model": "summarizer"}, json=TEXT)
    assert again.status_code == 200 and again.json()["status"] == "Completed"

    unknown = api.http.post("/models/nobody/invocations", json=TEXT)
    assert unknown.status_code == 400, unknown.text
    assert "nobody" in unknown.json()["message"]
    unnamed = api.http.post("/invocations", json=TEXT)
    assert unnamed.status_code == 400 and "name one" in unnamed.json()["message"]


# ----------------------------------------------------------------------------- async, <name>/ folders
@pytest.fixture(scope="module")
def folders_pipeline(two_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    artifact = tmp_path_factory.mktemp("artifact")
    for name, path in two_models.items():
        shutil.copytree(path, artifact / name)
    yield from _running(artifact, "async", tmp_path_factory.mktemp("folders-logs"))


def test_async_folders_route_by_model_load_evict_and_unknown(folders_pipeline: LocalPipeline) -> None:
    api = Api(str(folders_pipeline.api_url))
    assert _loaded(folders_pipeline) == []

    sentiment = api.http.post("/models/sentiment/invocations", json=TEXT)
    assert sentiment.status_code == 202, sentiment.text
    done = api.wait(sentiment.json()["inferenceId"], timeout=120)
    assert done["status"] == "Completed" and done["output"][0]["label"] in ("negative", "positive")

    summary = api.submit(TEXT, headers={"X-Amzn-SageMaker-Target-Model": "summarizer"})
    assert summary.status_code == 202, summary.text
    done = api.wait(summary.json()["inferenceId"], timeout=120)
    assert done["status"] == "Completed" and "generated_text" in done["output"][0]
    assert _loaded(folders_pipeline) == ["summarizer"]  # sentiment was evicted to make room

    unknown = api.http.post("/invocations", params={"model": "nobody"}, json=TEXT)
    assert unknown.status_code == 202
    failed = api.wait(unknown.json()["inferenceId"], timeout=60)
    assert (
        failed["status"] == "Failed"
        and "nobody" in failed["failureReason"]
        and "404" in failed["failureReason"] + str(failed)
    )


def test_cli_invoke_names_the_model(folders_pipeline: LocalPipeline) -> None:
    """`python -m inference_client invoke --wait --model NAME` (docs/api.md, Naming a model)."""
    code, out, err = invoke_wait(folders_pipeline, "--model", "sentiment", "--text", TEXT["inputs"])
    assert code == 0, err
    assert json.loads(out)[0]["label"] in ("negative", "positive")


def test_make_local_runs_example_multimodel(two_models: dict[str, Path], tmp_path: Path) -> None:
    """`make local LOCAL_ENV=example-multimodel` (python -m local_stack): one model, named "default"."""
    settings = {"MODEL_DIR": str(two_models["sentiment"]), "LOCAL_ENV": "example-multimodel"}
    with make_local_process(settings, tmp_path / "children.log") as (url, output):
        assert "multimodel: InvokeEndpoint" in output and "model 'default'" in output, output
        answer = _post(Api(url), "/invocations", "make-local", params={"model": "default"}, json=TEXT)
        assert answer.status_code == 200, answer.text
        assert answer.json()["output"][0]["label"] in ("negative", "positive")
