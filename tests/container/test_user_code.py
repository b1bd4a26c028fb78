"""code/inference.py with the Hugging Face toolkit's hooks, unchanged."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from model_server.errors import (
    BadRequest,
    InsufficientStorage,
    ModelError,
    NotAcceptable,
    ServerError,
    UnsupportedMediaType,
)
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
    # A header-less CSV is a 400 on the default path; this input_fn reads it (as a str).
    response = user_server.client.post(
        "/invocations", content=b"from csv,ignored\nrow 2", headers={"Content-Type": "text/csv"}
    )
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
    response = user_server.client.post(
        "/invocations", content=b"{not json", headers={"Content-Type": "application/json"}
    )
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
    response = code.handle(EchoModel(), b'{"inputs": "hi", "parameters": {"k": 1}}', "application/json", "*/*")
    assert json.loads(response.body) == [{"echo": "hi", "parameters": {"k": 1}}]
    assert response.content_type == "application/json"
    # The toolkit's CSV rule: a header row naming "inputs", one input per row.
    response = code.handle(EchoModel(), b"inputs\r\nI love you\r\nI like you", "text/csv", "text/csv")
    assert response.body == b'echo,parameters\r\n"[""I love you"",""I like you""]",{}\r\n'
    assert response.content_type == "text/csv"
    with pytest.raises(UnsupportedMediaType):
        code.handle(EchoModel(), b"x", "application/xml", "application/json")
    with pytest.raises(NotAcceptable):
        code.handle(EchoModel(), b'{"inputs": "hi"}', "application/json", "text/html")
    with pytest.raises(BadRequest):
        code.handle(EchoModel(), b"{", "application/json", "application/json")


def test_transform_fn_gets_str_for_json_and_csv_and_bytes_otherwise() -> None:
    seen = []

    def transform_fn(model, input_data, content_type, accept):
        seen.append((model, input_data, content_type, accept))
        return "a,b\n1,2\n"

    code = UserCode(module(transform_fn=transform_fn))
    response = code.handle("M", b"x,y\n1,2", "text/csv", "text/csv")
    assert response.body == b"a,b\n1,2\n" and response.content_type == "text/csv"
    code.handle("M", b'{"a": 1}', "application/json", None)
    code.handle("M", b"\x89PNG", "image/png", "*/*")
    assert seen == [
        ("M", "x,y\n1,2", "text/csv", "text/csv"),
        ("M", '{"a": 1}', "application/json", "application/json"),
        ("M", b"\x89PNG", "image/png", "application/json"),
    ]


def test_transform_fn_cannot_be_mixed_with_the_other_hooks() -> None:
    with pytest.raises(ValueError, match="Cannot use transform_fn implementation in conjunction with input_fn"):
        UserCode(module(transform_fn=lambda m, d, c, a: None, predict_fn=lambda d, m: None))


def test_hooks_with_a_wrong_number_of_arguments_fail_to_load() -> None:
    with pytest.raises(TypeError, match="input_fn definition takes 2 or 3 arguments but 1 were given"):
        UserCode(module(input_fn=lambda data: data))


def test_context_argument_is_passed_when_a_hook_takes_it(tmp_path: Path) -> None:
    calls = []

    def model_fn(model_dir, context):
        calls.append((model_dir, context.system_properties["model_dir"], context.system_properties["gpu_id"]))
        return "model"

    def predict_fn(data, model, context):
        context.set_response_content_type(0, "application/vnd.custom+json")
        return {"model": model, "trace": context.get_request_header(0, "X-Trace")}

    code = UserCode(module(model_fn=model_fn, predict_fn=predict_fn))
    assert code.load(tmp_path, default_loader=lambda: "default") == "model"
    assert calls == [(str(tmp_path), str(tmp_path), -1)]
    response = code.handle("model", b'{"inputs": 1}', "application/json", "application/json", {"x-trace": "t1"})
    assert json.loads(response.body) == {"model": "model", "trace": "t1"}
    assert response.content_type == "application/vnd.custom+json"


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

    class PredictionException(Exception):  # Multi Model Server's, as toolkit scripts raise it
        def __init__(self, message, error_code=500):
            super().__init__(message)
            self.message, self.error_code = message, error_code

    def refuse(data, model):
        raise PredictionException("text too long for this model", 413)

    with pytest.raises(ServerError, match="text too long") as raised:
        UserCode(module(predict_fn=refuse)).handle(None, b'{"inputs": 1}', "application/json", "*/*")
    assert raised.value.status == 413
