"""User scripts in the Hugging Face toolkit's style, each sent the request its client would send.

The scripts (tests/container/user_code/toolkit_scripts/*/code/) cover each hook
form: separate hooks with and without ``context``, ``transform_fn`` with and
without it, only ``input_fn`` (toolkit defaults for the rest), an entry point
named by ``SAGEMAKER_PROGRAM``, ``decoder_encoder`` imported as the toolkit's
README shows, JSON / CSV / image bodies, and the load failures the toolkit
defines (transform_fn mixed with other hooks, a hook with the wrong arity).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from devtools.tiny_model import build_tiny_seq2seq

from .inprocess import InProcessServer, serve
from .tiny_models import build_tiny_bert

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "user_code" / "toolkit_scripts"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "seq2seq": build_tiny_seq2seq(tmp_path_factory.mktemp("bart"), max_new_tokens=4),
        "classifier": build_tiny_bert(
            tmp_path_factory.mktemp("bert"), "ForSequenceClassification", labels=["NEG", "POS"]
        ),
    }


@pytest.fixture(scope="module")
def deploy(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., InProcessServer]]:
    """A model.tar.gz as SageMaker unpacks it: the weights plus code/ from a script directory."""
    with ExitStack() as stack:

        def start(script: str, model: str = "seq2seq", **settings: str) -> InProcessServer:
            model_dir = tmp_path_factory.mktemp(script)
            shutil.copytree(models[model], model_dir, dirs_exist_ok=True)
            shutil.copytree(SCRIPTS / script / "code", model_dir / "code")
            return stack.enter_context(serve(model_dir, **settings))

        yield start


def ready(server: InProcessServer) -> InProcessServer:
    assert server.state.status == "ready", server.state.error
    return server


def test_json_hooks_get_str_and_accept_star_becomes_json(deploy) -> None:
    server = ready(deploy("json_hooks", "classifier"))
    # requests' and curl's default Accept.
    response = server.post(json.dumps({"inputs": "  i love this movie "}), accept="*/*")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accept"] == "application/json" and response.headers["content-type"] == "application/json"
    assert {"label", "score"} <= set(body["predictions"][0])
    # No Accept at all: JSON too.
    assert server.post(json.dumps({"inputs": "x"}), accept=None).json()["accept"] == "application/json"


def test_hooks_with_context_get_an_mms_like_context(deploy) -> None:
    server = ready(deploy("context_hooks", "classifier"))
    response = server.post(json.dumps({"inputs": "i hate waiting"}), **{"X-Trace-Id": "abc-123"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device"] == "cpu" and body["trace"] == "abc-123" and body["labels"][0]["label"] in ("NEG", "POS")
    # output_fn set the response's content type through the context.
    assert response.headers["content-type"] == "application/vnd.example+json"


def test_csv_script_reads_a_str_body_and_imports_its_sibling(deploy) -> None:
    server = ready(deploy("csv_siblings"))
    body = b'"The quick brown fox"\n  Summaries   are short  \n'
    response = server.post(body, "text/csv", accept="application/json")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["rows"] == 2 and result["first_input"] == "summarize: The quick brown fox"
    # The default model is called like a pipeline, one output per input.
    assert len(result["outputs"]) == 2 and all("generated_text" in o for o in result["outputs"])
    csv_response = server.post(body, "text/csv", accept="text/csv")
    assert csv_response.text == "rows\n2\n" and csv_response.headers["content-type"].startswith("text/csv")


def test_sagemaker_program_picks_the_entry_point(deploy) -> None:
    server = ready(deploy("entry_point", sagemaker_program="serve_transform.py"))
    response = server.post(json.dumps({"inputs": ["ab", "cd"]}), accept="text/csv")
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == [
        "script,model,text",
        "serve_transform.py,entry point model,AB",
        "serve_transform.py,entry point model,CD",
    ]
    assert response.headers["content-type"].startswith("text/csv")
    # CSV in, JSON out, through the same decoder_encoder.
    response = server.post(b"inputs\nhello\n", "text/csv")
    assert response.json() == [{"script": "serve_transform.py", "model": "entry point model", "text": "HELLO"}]
    # Without SAGEMAKER_PROGRAM, inference.py is the script.
    default = ready(deploy("entry_point"))
    assert default.post(json.dumps({"inputs": "x"})).json() == {"script": "inference.py (wrong one)"}


def test_sagemaker_program_that_does_not_exist_fails_the_load(deploy) -> None:
    server = deploy("json_hooks", sagemaker_program="missing_entry.py")
    assert server.state.status == "failed"
    ping = server.client.get("/ping")
    assert ping.status_code == 503 and "missing_entry" in ping.json()["error"]


def test_transform_fn_with_context(deploy) -> None:
    server = ready(deploy("transform_context"))
    response = server.post(b'{"inputs": 1}', "application/json", accept="*/*")
    assert response.text == "output Loading inference.py str application/json application/json 1"
    # Bodies other than JSON and CSV stay bytes.
    response = server.post(b"\x00\x01", "application/octet-stream", accept="application/octet-stream")
    assert response.text == "output Loading inference.py bytes application/octet-stream application/octet-stream 1"
    assert response.headers["content-type"] == "application/octet-stream"


def test_only_input_fn_uses_the_toolkit_defaults_for_the_rest(deploy) -> None:
    server = ready(deploy("decoder_encoder_input", "classifier"))
    response = server.post(b"inputs\nI LOVE YOU\nI hate waiting\n", "text/csv", accept="text/csv")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0] == "label,score" and len(lines) == 3
    response = server.post(json.dumps({"inputs": "i love it", "parameters": {"top_k": 2}}))
    assert response.status_code == 200 and len(response.json()) == 2
    # The default predict_fn still validates against the task: 400, not 500.
    response = server.post(json.dumps({"inputs": "x", "parameters": {"no_such_parameter": 1}}))
    assert response.status_code == 400 and "no_such_parameter" in response.json()["message"]
    # A CSV body without its header row: decoder_encoder's 400, as the toolkit's.
    response = server.post(b"I love you\n", "text/csv")
    assert response.status_code == 400 and "header" in response.json()["message"]


def test_image_bodies_decode_to_pil_images(deploy) -> None:
    from PIL import Image

    server = ready(deploy("image_hooks"))
    buffer = io.BytesIO()
    Image.new("L", (7, 5)).save(buffer, format="PNG")
    response = server.post(buffer.getvalue(), "image/png")
    assert response.json() == {"size": [7, 5], "mode": "RGB", "bytes_in": "Image"}


def test_a_script_chooses_its_error_status(deploy) -> None:
    server = ready(deploy("chosen_status"))
    assert server.post(json.dumps({"inputs": "short"})).json() == {"ok": "short"}
    response = server.post(json.dumps({"inputs": "far longer than ten"}))
    assert response.status_code == 400 and "longer than 10" in response.json()["message"]


def test_generic_sagemaker_inference_helpers(deploy) -> None:
    """``from sagemaker_inference import decoder, encoder, errors``: what the HF containers also ship."""
    server = ready(deploy("generic_toolkit"))
    response = server.post(b"1,2\n3,4\n", "text/csv", accept="text/csv")
    assert response.status_code == 200, response.text
    assert response.text == "2.0,6.0\n6.0,12.0\n"
    response = server.post(b"[[1, 1]]", "application/json", accept="application/json")
    assert response.json() == [[2.0, 3.0]]
    buffer = io.BytesIO()
    np.save(buffer, np.ones((1, 2)))
    response = server.post(buffer.getvalue(), "application/x-npy", accept="application/x-npy")
    assert np.load(io.BytesIO(response.content)).tolist() == [[2.0, 3.0]]
    # The script's own errors keep their status: 415, 400 with its message, 406.
    assert server.post(b"<a/>", "application/xml").status_code == 415
    response = server.post(b"[1, 2]", "application/json")
    assert response.status_code == 400 and response.json()["message"] == "send rows of two numbers"
    assert server.post(b"[[1, 1]]", "application/json", accept="text/html").status_code == 406


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "mixed_hooks",
            "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
            "and/or output_fn implementation",
        ),
        ("wrong_arity", "predict_fn definition takes 2 or 3 arguments but 1 were given."),
    ],
)
def test_invalid_scripts_fail_the_load_with_the_toolkits_message(deploy, script: str, message: str) -> None:
    server = deploy(script)
    ping = server.client.get("/ping")
    assert ping.status_code == 503 and ping.json()["status"] == "failed"
    assert message in ping.json()["error"]


def test_a_real_server_process_reads_sagemaker_program_from_its_environment(
    models: dict[str, Path], start_server, tmp_path: Path
) -> None:
    """As SageMaker starts it: SAGEMAKER_PROGRAM in the environment of ``python -m model_server serve``."""
    shutil.copytree(models["seq2seq"], tmp_path, dirs_exist_ok=True)
    shutil.copytree(SCRIPTS / "entry_point" / "code", tmp_path / "code")
    server = start_server(tmp_path, SAGEMAKER_PROGRAM="serve_transform.py")
    server.wait_until(200)
    response = server.client.post(
        "/invocations", content=b'{"inputs": "hi"}', headers={"Content-Type": "application/json", "Accept": "*/*"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == [{"script": "serve_transform.py", "model": "entry point model", "text": "HI"}]
    assert response.headers["content-type"] == "application/json"
