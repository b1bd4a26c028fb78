"""code/inference.py with the Hugging Face toolkit's hooks, unchanged."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from model_server.errors import BadRequest, InsufficientStorage, ModelError, NotAcceptable, UnsupportedMediaType
from model_server.user_code import UserCode

from .conftest import ServerProcess


@pytest.mark.slow
def test_user_hooks_serve_requests(user_server: ServerProcess) -> None:
    response = user_server.client.post("/invocations", json={"inputs": "hello hooks"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["custom_output"] is True and body["input"] == "hello hooks"
    assert isinstance(body["generated"], str)


@pytest.mark.slow
def test_user_input_fn_decides_the_content_types(user_server: ServerProcess) -> None:
    # text/csv is a 415 on the default path; this input_fn handles it.
    response = user_server.client.post("/invocations", content=b"from csv,ignored", headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["input"] == "from csv"


@pytest.mark.slow
@pytest.mark.parametrize(("trigger", "status"), [("raise", 500), ("oom", 507), ("memory", 507)])
def test_user_code_failures_map_to_500_and_507(user_server: ServerProcess, trigger: str, status: int) -> None:
    response = user_server.client.post("/invocations", json={"inputs": trigger})
    assert response.status_code == status, response.text
    assert response.json()["status"] == status and response.json()["message"]
    # ...and the server keeps serving.
    assert user_server.client.post("/invocations", json={"inputs": "after"}).status_code == 200
    assert user_server.ping().status_code == 200


@pytest.mark.slow
def test_user_input_fn_failure_is_400(user_server: ServerProcess) -> None:
    response = user_server.client.post("/invocations", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "input_fn" in response.json()["message"]


# ---------------------------------------------------------------- hooks, in-process
class EchoModel:
    """Stands in for the default model: pipeline-style call."""

    def __call__(self, inputs, **parameters):
        return [{"echo": inputs, "parameters": parameters}]


def module(**hooks) -> types.ModuleType:
    mod = types.ModuleType("inference")
    for name, fn in hooks.items():
        setattr(mod, name, fn)
    return mod


def test_defaults_follow_the_toolkit() -> None:
    code = UserCode(module())
    body, media_type = code.handle(EchoModel(), b'{"inputs": "hi", "parameters": {"k": 1}}', "application/json", "*/*")
    assert json.loads(body) == [{"echo": "hi", "parameters": {"k": 1}}]
    assert media_type == "application/json"
    with pytest.raises(UnsupportedMediaType):
        code.handle(EchoModel(), b"x", "image/png", "application/json")
    with pytest.raises(NotAcceptable):
        code.handle(EchoModel(), b'{"inputs": "hi"}', "application/json", "text/html")
    with pytest.raises(BadRequest):
        code.handle(EchoModel(), b"{", "application/json", "application/json")


def test_transform_fn_gets_the_raw_request() -> None:
    seen = {}

    def transform_fn(model, input_data, content_type, accept):
        seen.update(model=model, data=input_data, content_type=content_type, accept=accept)
        return "a,b\n1,2\n"

    body, media_type = UserCode(module(transform_fn=transform_fn)).handle("M", b"raw", "text/csv", "text/csv")
    assert seen == {"model": "M", "data": b"raw", "content_type": "text/csv", "accept": "text/csv"}
    assert body == b"a,b\n1,2\n" and media_type == "text/csv"


def test_transform_fn_cannot_be_mixed_with_the_other_hooks() -> None:
    with pytest.raises(ValueError, match="transform_fn"):
        UserCode(module(transform_fn=lambda *a: None, predict_fn=lambda *a: None))


def test_context_argument_is_passed_when_a_hook_takes_it(tmp_path: Path) -> None:
    calls = []

    def model_fn(model_dir, context):
        calls.append((model_dir, context))
        return "model"

    def predict_fn(data, model, context):
        return {"model": model, "context": context}

    code = UserCode(module(model_fn=model_fn, predict_fn=predict_fn))
    assert code.load(tmp_path, default_loader=lambda: "default") == "model"
    assert calls == [(str(tmp_path), None)]
    body, _ = code.handle("model", b'{"inputs": 1}', "application/json", "application/json")
    assert json.loads(body) == {"model": "model", "context": None}


def test_default_model_fn_loads_the_default_model(tmp_path: Path) -> None:
    code = UserCode(module(predict_fn=lambda data, model: model))
    assert code.load(tmp_path, default_loader=lambda: "default model") == "default model"


def test_hook_errors_are_classified() -> None:
    def boom(data, model):
        raise ValueError("bad weights")

    with pytest.raises(ModelError, match="bad weights"):
        UserCode(module(predict_fn=boom)).handle(None, b'{"inputs": 1}', "application/json", "*/*")

    def oom(data, model):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(InsufficientStorage):
        UserCode(module(predict_fn=oom)).handle(None, b'{"inputs": 1}', "application/json", "*/*")

    def bad_input(data, content_type):
        raise KeyError("field")

    with pytest.raises(BadRequest, match="input_fn"):
        UserCode(module(input_fn=bad_input)).handle(None, b"", "application/json", "*/*")
