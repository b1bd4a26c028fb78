"""``sagemaker_huggingface_inference_toolkit.decoder_encoder`` as user scripts import it.

The expected values are the toolkit's own (tests/unit/test_decoder_encoder.py
in github.com/aws/sagemaker-huggingface-inference-toolkit): the stand-in must
give a script exactly what the real module gives it.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from model_server.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from model_server.user_code import TOOLKIT_COMPAT_DIR, import_user_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toolkit():
    if str(TOOLKIT_COMPAT_DIR) not in sys.path:
        sys.path.append(str(TOOLKIT_COMPAT_DIR))
    decoder_encoder = importlib.import_module("sagemaker_huggingface_inference_toolkit.decoder_encoder")
    content_types = importlib.import_module("sagemaker_huggingface_inference_toolkit.content_types")
    return decoder_encoder, content_types


DECODE_CSV_INPUT = (
    "question,context\r\nwhere do i live?,My name is Philipp and I live in Nuremberg\r\n"
    "where is Berlin?,Berlin is the capital of Germany"
)
ENCODE_CSV_INPUT = [
    {"answer": "Nuremberg", "end": 42, "score": 0.9926825761795044, "start": 33},
    {"answer": "Berlin is the capital of Germany", "end": 32, "score": 0.26097726821899414, "start": 0},
]


def test_decode_csv_as_the_toolkit(toolkit) -> None:
    decoder_encoder, _ = toolkit
    assert decoder_encoder.decode_csv(DECODE_CSV_INPUT) == {
        "inputs": [
            {"question": "where do i live?", "context": "My name is Philipp and I live in Nuremberg"},
            {"question": "where is Berlin?", "context": "Berlin is the capital of Germany"},
        ]
    }
    assert decoder_encoder.decode_csv("inputs\r\nI love you\r\nI like you") == {"inputs": ["I love you", "I like you"]}
    # A spreadsheet's byte-order mark is not part of the header's first name.
    assert decoder_encoder.decode_csv("\ufeffinputs\r\nA\r\n".encode()) == {"inputs": ["A"]}
    with pytest.raises(BadRequest, match="header"):
        decoder_encoder.decode_csv("where do i live?,My name is Philipp\r\nwhere is Berlin?,Berlin is the capital")


def test_encode_csv_byte_for_byte(toolkit) -> None:
    decoder_encoder, _ = toolkit
    assert decoder_encoder.encode_csv(ENCODE_CSV_INPUT) == (
        "answer,end,score,start\r\nNuremberg,42,0.9926825761795044,33\r\n"
        "Berlin is the capital of Germany,32,0.26097726821899414,0\r\n"
    )


def test_encode_json_of_numpy_torch_and_dates(toolkit) -> None:
    import datetime

    import torch

    decoder_encoder, _ = toolkit
    data = {"upper": [1425], "lower": [576], "level": [2], "datetime": ["2012-08-08 15:30"]}
    assert json.loads(decoder_encoder.encode_json(data)) == data
    assert json.loads(decoder_encoder.encode_json({"data": np.array([1, 0.5, 5.0])})) == {"data": [1, 0.5, 5.0]}
    assert json.loads(decoder_encoder.encode_json({"data": torch.tensor([1, 0.5, 5.0])})) == {"data": [1, 0.5, 5.0]}
    assert decoder_encoder.encode_json({"n": np.int64(3), "f": np.float32(0.5)}) == '{"n":3,"f":0.5}'
    assert json.loads(decoder_encoder.encode_json({"t": datetime.datetime(2021, 1, 2, 3, 4)})) == {
        "t": "2021-01-02 03:04:00"
    }
    assert isinstance(decoder_encoder.encode_json({}), str)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"])
def test_decode_image_gives_an_rgb_pil_image(toolkit, fmt: str) -> None:
    from PIL import Image

    decoder_encoder, _ = toolkit
    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), (10, 200, 30)).save(buffer, format=fmt)
    decoded = decoder_encoder.decode_image(bytearray(buffer.getvalue()))
    assert isinstance(decoded["inputs"], Image.Image) and decoded["inputs"].size == (12, 9)
    assert decoded["inputs"].mode == "RGB"


def test_decode_audio_passes_the_bytes_on(toolkit) -> None:
    decoder_encoder, _ = toolkit
    payload = b"RIFF\x24\x00\x00\x00WAVEfmt "
    assert decoder_encoder.decode_audio(bytearray(payload)) == {"inputs": payload}


def test_decode_and_encode_by_content_type(toolkit) -> None:
    decoder_encoder, content_types = toolkit
    assert decoder_encoder._decoder_map[content_types.JSON] is decoder_encoder.decode_json
    assert decoder_encoder._encoder_map[content_types.JSON] is decoder_encoder.encode_json
    doc = {"inputs": "My name is Wolfgang and I live in Berlin"}
    assert decoder_encoder.decode(json.dumps(doc), content_types.JSON) == doc
    assert json.loads(decoder_encoder.encode(doc, content_types.JSON)) == doc
    assert np.load(io.BytesIO(decoder_encoder.encode([[1.0, 2.0]], content_types.NPY))).tolist() == [[1.0, 2.0]]
    buffer = io.BytesIO()
    np.save(buffer, np.array([1, 2, 3]))
    assert decoder_encoder.decode(buffer.getvalue(), content_types.NPY).tolist() == [1, 2, 3]
    with pytest.raises(UnsupportedMediaType):
        decoder_encoder.decode(b"<a/>", "application/xml")
    with pytest.raises(NotAcceptable):
        decoder_encoder.encode(doc, "text/html")


def test_encode_image_in_the_accepted_format(toolkit) -> None:
    from PIL import Image

    decoder_encoder, content_types = toolkit
    image = Image.new("RGB", (4, 4))
    assert decoder_encoder.encode(image, content_types.PNG).startswith(b"\x89PNG")
    assert decoder_encoder.encode(image, content_types.X_IMAGE).startswith(b"\x89PNG")
    assert decoder_encoder.encode(image, content_types.JPEG).startswith(b"\xff\xd8")


def test_content_types_names(toolkit) -> None:
    _, content_types = toolkit
    assert (content_types.JSON, content_types.CSV, content_types.NPY, content_types.ANY) == (
        "application/json",
        "text/csv",
        "application/x-npy",
        "*/*",
    )
    assert content_types.UTF8_TYPES == ["application/json", "text/csv"]
    assert "image/webp" in content_types.VISION_TYPES and "audio/x-flac" in content_types.AUDIO_TYPES


def test_a_user_script_imports_decoder_encoder_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """The way a script meets it: imported by the loader, nothing else on sys.path."""
    script = tmp_path / "code" / "inference.py"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent("""
        from sagemaker_huggingface_inference_toolkit import decoder_encoder

        def input_fn(input_data, content_type):
            return decoder_encoder.decode(input_data, content_type)
    """)
    )
    probe = (
        "import sys; from pathlib import Path; from model_server.user_code import import_user_module;"
        f"m = import_user_module(Path({str(script)!r})); print(m.input_fn('inputs\\nA\\n', 'text/csv'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT / "container", capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'inputs': ['A']}"


def test_import_user_module_registers_the_script_under_its_own_name(tmp_path: Path) -> None:
    script = tmp_path / "serve_entry.py"
    script.write_text("NAME = __name__\n")
    module = import_user_module(script)
    assert module.NAME == "serve_entry" and sys.modules["serve_entry"] is module


def test_generic_sagemaker_inference_helpers_as_documented(toolkit) -> None:
    """``sagemaker_inference`` (the package the HF toolkit builds on), as its docstrings describe it."""
    encoder = importlib.import_module("sagemaker_inference.encoder")
    decoder = importlib.import_module("sagemaker_inference.decoder")
    errors = importlib.import_module("sagemaker_inference.errors")
    utils = importlib.import_module("sagemaker_inference.utils")
    assert json.loads(encoder.encode(np.array([[1, 2], [3, 4]]), "application/json")) == [[1, 2], [3, 4]]
    assert encoder.encode([[1, 2], [3, 4]], "text/csv") == "1,2\n3,4\n"
    assert decoder.decode("[[1, 2]]", "application/json").tolist() == [[1, 2]]
    assert decoder.decode("1,2\n3,4", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(errors.UnsupportedFormatError, match="application/x-npz") as raised:
        decoder.decode(b"PK", "application/x-npz")
    assert raised.value.status == 415
    with pytest.raises(errors.UnsupportedFormatError) as raised:
        encoder.encode([1], "text/html")
    assert raised.value.status == 406
    error = errors.GenericInferenceToolkitError(422)
    assert (error.status_code, error.message, error.phrase) == (422, "Invalid Request", "Invalid Request")
    assert utils.retrieve_content_type_header({"Accept": "a", "content-type": "text/csv"}) == "text/csv"
    assert utils.parse_accept("application/json, text/csv") == ["application/json", "text/csv"]
