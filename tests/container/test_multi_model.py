"""SageMaker's multi-model container contract, driven over HTTP against real server processes.

https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html: with
SAGEMAKER_MULTI_MODEL=true the container starts with no model, answers /ping, and SageMaker
loads (POST /models {"model_name", "url"}), lists (GET /models, paginated), describes
(GET /models/{name}), invokes (POST /models/{name}/invoke) and unloads (DELETE /models/{name});
409 for a model already loaded, 404 for one that is not, 507 when memory would run out
(SageMaker then unloads its least recently used model and retries). Two real tiny models
(a seq2seq and a BERT classifier), each in its own engine process: unloading one is
measured in the process table (its engine's RSS leaves the server's process tree).

The same server with MODEL_DIR of <name>/ folders (several models behind one async endpoint)
routes /invocations by `model=<name>` in X-Amzn-SageMaker-Custom-Attributes, loads on demand
and evicts the least recently used model when the next one does not fit.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.container.conftest import ServerProcess
from tests.container.tiny_models import build_model_pair
from tests.processes import wait_for

TEXT = {"inputs": "I love this movie, it is great."}
LOAD_TIMEOUT = 120


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _tree_rss(pid: int) -> int:
    return _rss(pid) + sum(_tree_rss(child) for child in _children(pid))


def _engines(server: ServerProcess) -> set[int]:
    """The server's engine processes (python -m model_server.engine_main) that are alive."""
    found = set()
    for child in _children(server.proc.pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"engine_main" in cmdline and _alive(child):
            found.add(child)
    return found


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_model_pair(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no-model")


@pytest.fixture(scope="module")
def mme(start_server: Callable[..., ServerProcess], empty_dir: Path) -> ServerProcess:
    server = start_server(empty_dir, SAGEMAKER_MULTI_MODEL="true")
    server.wait_until(200)
    return server


def _load(server: ServerProcess, name: str, url: Path | str):
    return server.client.post("/models", json={"model_name": name, "url": str(url)}, timeout=LOAD_TIMEOUT)


# ----------------------------------------------------------------------------- the contract, in order
def test_starts_healthy_with_no_model(mme: ServerProcess) -> None:
    assert mme.ping().status_code == 200
    answer = mme.client.get("/models")
    assert answer.status_code == 200 and answer.json()["models"] == []
    assert mme.client.get("/models/summarizer").status_code == 404


def test_load_two_models_list_describe_and_invoke_each(mme: ServerProcess, models: dict[str, Path]) -> None:
    for name, path in models.items():
        answer = _load(mme, name, path)
        assert answer.status_code == 200, answer.text
    assert _load(mme, "summarizer", models["summarizer"]).status_code == 409
    assert len(_engines(mme)) == 2  # one engine process per model

    assert mme.client.get("/models/sentiment").json() == {
        "modelName": "sentiment",
        "modelUrl": str(models["sentiment"]),
    }
    first = mme.client.get("/models", params={"limit": 1}).json()
    assert len(first["models"]) == 1 and first.get("nextPageToken")
    second = mme.client.get("/models", params={"limit": 1, "next_page_token": first["nextPageToken"]}).json()
    assert "nextPageToken" not in second
    assert {m["modelName"] for m in first["models"] + second["models"]} == set(models)
    assert all(set(m) == {"modelName", "modelUrl"} for m in first["models"] + second["models"])

    summary = mme.client.post(
        "/models/summarizer/invoke", json=TEXT, headers={"X-Amzn-SageMaker-Target-Model": "summarizer.tar.gz"}
    )
    assert summary.status_code == 200, summary.text
    assert "generated_text" in summary.json()[0]
    assert summary.headers["x-amzn-sagemaker-target-model"] == "summarizer.tar.gz"
    label = mme.client.post("/models/sentiment/invoke", json=TEXT)
    assert label.status_code == 200 and label.json()[0]["label"] in ("negative", "positive")
    # /invocations with SageMaker's target header reaches the model of that name.
    routed = mme.client.post("/invocations", json=TEXT, headers={"X-Amzn-SageMaker-Target-Model": "sentiment"})
    assert routed.status_code == 200 and routed.json()[0]["label"] in ("negative", "positive")


def test_errors_of_the_contract(mme: ServerProcess, models: dict[str, Path], tmp_path: Path) -> None:
    assert mme.client.post("/models/nobody/invoke", json=TEXT).status_code == 404
    assert mme.client.delete("/models/nobody").status_code == 404
    missing = _load(mme, "ghost", tmp_path / "missing")
    assert missing.status_code == 404 and "missing" in missing.json()["message"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    unloadable = _load(mme, "broken", broken)
    assert unloadable.status_code == 422 and "broken" in unloadable.json()["message"]
    assert mme.client.get("/models/broken").status_code == 404
    invalid = _load(mme, "../escape", models["sentiment"])
    assert invalid.status_code == 400 and "../escape" in invalid.json()["message"]
    bad = mme.client.post("/models", json={"model_name": "x"})
    assert bad.status_code == 400 and "url" in bad.json()["message"]
    assert mme.client.get("/models", params={"limit": "0"}).status_code == 400
    # The same request errors as /invocations, per model.
    assert (
        mme.client.post(
            "/models/sentiment/invoke", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert mme.ping().status_code == 200


def test_unload_returns_the_engines_memory(mme: ServerProcess, models: dict[str, Path]) -> None:
    if mme.client.get("/models/summarizer").status_code == 404:
        assert _load(mme, "summarizer", models["summarizer"]).status_code == 200
    before_engines = _engines(mme)
    before = _tree_rss(mme.proc.pid)
    mme.client.post("/models/summarizer/invoke", json=TEXT)
    engine_rss = {pid: _rss(pid) for pid in before_engines}

    answer = mme.client.delete("/models/summarizer")
    assert answer.status_code == 200
    # DELETE answered: the engine is gone already, not "soon".
    gone = before_engines - _engines(mme)
    assert len(gone) == 1
    (pid,) = gone
    assert not _alive(pid)
    after = _tree_rss(mme.proc.pid)
    assert engine_rss[pid] > 50 * 2**20  # a real engine: torch, transformers, the model
    assert before - after >= 0.8 * engine_rss[pid], (before, after, engine_rss)
    assert mme.client.get("/models/summarizer").status_code == 404
    assert mme.client.post("/models/summarizer/invoke", json=TEXT).status_code == 404
    # The other model is untouched.
    assert mme.client.post("/models/sentiment/invoke", json=TEXT).status_code == 200


# ----------------------------------------------------------------------------- 507 and SageMaker's retry
def test_a_model_that_does_not_fit_is_507_and_loads_after_an_unload(
    mme: ServerProcess, models: dict[str, Path], start_server: Callable[..., ServerProcess], empty_dir: Path
) -> None:
    engine = max(_rss(pid) for pid in _engines(mme))
    # Room for one engine, not two: what SageMaker's memory-full instance looks like to the container.
    small = start_server(
        empty_dir, SAGEMAKER_MULTI_MODEL="true", MODEL_SERVER_MODELS_MEMORY_BYTES=str(int(engine * 1.5))
    )
    small.wait_until(200)
    assert _load(small, "sentiment", models["sentiment"]).status_code == 200
    full = _load(small, "summarizer", models["summarizer"])
    assert full.status_code == 507, full.text
    assert "sentiment" in full.json()["message"]  # says what holds the memory
    assert small.ping().status_code == 200  # a 507, not a crash
    # SageMaker's eviction: unload the least recently used model, retry the load.
    assert small.client.delete("/models/sentiment").status_code == 200
    assert _load(small, "summarizer", models["summarizer"]).status_code == 200
    assert small.client.post("/models/summarizer/invoke", json=TEXT).status_code == 200


# ----------------------------------------------------------------------------- <name>/ folders, async endpoint
@pytest.fixture(scope="module")
def folders(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artifact")
    for name, path in models.items():
        shutil.copytree(path, root / name)
    return root


def test_folders_route_by_custom_attribute_and_evict_least_recently_used(
    mme: ServerProcess, folders: Path, start_server: Callable[..., ServerProcess]
) -> None:
    engine = max(_rss(pid) for pid in _engines(mme))
    server = start_server(folders, MODEL_SERVER_MODELS_MEMORY_BYTES=str(int(engine * 1.5)))
    server.wait_until(200)
    assert server.client.get("/models").json()["models"] == []  # nothing loaded before a request needs it

    def ask(model: str | None):
        headers = {"X-Amzn-SageMaker-Custom-Attributes": f"trace=1; model={model}"} if model else {}
        return server.client.post("/invocations", json=TEXT, headers=headers, timeout=LOAD_TIMEOUT)

    first = ask("sentiment")
    assert first.status_code == 200 and first.json()[0]["label"] in ("negative", "positive")
    assert first.headers["x-amzn-sagemaker-custom-attributes"] == "trace=1; model=sentiment"
    second = ask("summarizer")
    assert second.status_code == 200 and "generated_text" in second.json()[0]
    # Only one fits: the least recently used one was unloaded to make room.
    loaded = [m["modelName"] for m in server.client.get("/models").json()["models"]]
    assert loaded == ["summarizer"]
    wait_for(lambda: len(_engines(server)) == 1, timeout=10, what="one engine left")
    assert ask("sentiment").status_code == 200  # loaded again on demand

    unknown = ask("nobody")
    assert unknown.status_code == 404 and "sentiment" in unknown.json()["message"]  # lists what exists
    unnamed = ask(None)
    assert unnamed.status_code == 400 and "model=<name>" in unnamed.json()["message"]


def test_the_image_declares_multi_model_support() -> None:
    """SageMaker's label for containers that implement the multi-model API (build-multi-model-build-container)."""
    from tests.container.test_dockerfile import instructions

    assert "com.amazonaws.sagemaker.capabilities.multi-models=true" in " ".join(instructions("LABEL"))
