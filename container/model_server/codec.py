"""Request decoding and response encoding: the Hugging Face toolkit's content types.

The toolkit (``sagemaker_huggingface_inference_toolkit.decoder_encoder``) decodes
JSON, CSV with a header row, NumPy ``.npy``, images and audio, and encodes
responses as JSON, CSV or ``.npy``; so does this module, with the same rules:

- JSON ``{"inputs": ..., "parameters": {...}}``;
- CSV whose header names an ``inputs`` column (each row one input) or
  ``question`` / ``context`` columns (each row one object);
- images (jpeg, png, tiff, bmp, gif, webp) as one RGB ``PIL.Image``;
- audio (flac, mp3, wav, ogg) as one waveform.

Where this module differs, it is on purpose: ``text/plain`` is one input (the
toolkit has no text type); ``.npy`` is loaded without pickle (the toolkit uses
``allow_pickle=True``, which runs code from the request), so object arrays are
refused; audio is decoded here with libsndfile rather than handed to the
pipeline as bytes (the pipeline would need an ffmpeg binary the image does not
ship). Every decoding failure is a 400 that says what was wrong.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON = "application/json"
TEXT = "text/plain"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
# The toolkit's content_types module, plus common aliases for the same formats.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/bmp", "image/gif", "image/webp", "image/x-image")
AUDIO_TYPES = (
    "audio/x-flac",
    "audio/flac",
    "audio/mpeg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/ogg",
    "audio/x-audio",
)
# The toolkit hands user hooks a str for these and bytes for everything else.
UTF8_TYPES = (JSON, CSV)

# Request kinds: what the body decodes to, independent of the exact media type.
KIND_JSON, KIND_TEXT, KIND_CSV, KIND_NPY, KIND_IMAGE, KIND_AUDIO = "json", "text", "csv", "npy", "image", "audio"
_KINDS = {
    JSON: KIND_JSON,
    TEXT: KIND_TEXT,
    CSV: KIND_CSV,
    NPY: KIND_NPY,
    **dict.fromkeys(IMAGE_TYPES, KIND_IMAGE),
    **dict.fromkeys(AUDIO_TYPES, KIND_AUDIO),
}
# Response types in order of preference when the client accepts several.
RESPONSE_TYPES = (JSON, CSV, NPY)
# The toolkit decides by the header row: one of these names must appear in it.
_CSV_COLUMNS = ("question", "context", "inputs")


@dataclass(frozen=True)
class Payload:
    inputs: list[Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    # A single input gets a single output back; a list gets a list of the same length.
    is_batch: bool = False


@dataclass(frozen=True)
class Audio:
    """A decoded audio body: mono float32 samples and their rate."""

    samples: Any  # numpy.ndarray, 1-D float32
    sampling_rate: int


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def request_kind(header: str | None) -> str:
    """The kind of body a Content-Type announces; 415 for types nobody decodes.

    No Content-Type at all is JSON, the toolkit's default.
    """
    kind = media_type(header) or JSON
    if kind not in _KINDS:
        supported = ", ".join([JSON, TEXT, CSV, NPY, "image/*", "audio/*"])
        raise UnsupportedMediaType(f"unsupported Content-Type {header!r}: use one of {supported}")
    return _KINDS[kind]


def _accepted_ranges(header: str) -> list[tuple[float, int, str]]:
    """Media ranges of an Accept header as (q, position, range), best first (RFC 9110 12.5.1)."""
    ranges = []
    for position, part in enumerate(header.split(",")):
        kind, *params = part.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    raise NotAcceptable(f"invalid q value in Accept {header!r}") from None
        if kind.strip() and q > 0:  # q=0 means "not acceptable"
            ranges.append((-q, position, kind.strip().lower()))
    return [(-q, p, k) for q, p, k in sorted(ranges)]


def negotiate(header: str | None, offered: tuple[str, ...] = RESPONSE_TYPES) -> str:
    """The response type for an Accept header; JSON when absent or ``*/*`` (as the toolkit does)."""
    if not header or not header.strip():
        return JSON
    for _, _, wanted in _accepted_ranges(header):
        for candidate in offered:
            if wanted in (ANY, candidate) or (wanted.endswith("/*") and candidate.startswith(wanted[:-1])):
                return candidate
    raise NotAcceptable(f"cannot produce {header!r}: responses are {', '.join(offered)}")


def check_accept(header: str | None) -> None:
    """Raise 406 unless some response type is acceptable."""
    negotiate(header)


def decode_text(body: bytes | str, what: str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} body is not UTF-8: {exc}") from None


def load_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        # CPython's decoder recurses once per nesting level.
        raise BadRequest("malformed JSON: nested too deeply") from None


def load_csv(body: bytes | str) -> dict[str, list[Any]]:
    """CSV with a header row -> ``{"inputs": [...]}`` (the toolkit's ``decode_csv`` rule)."""
    text = decode_text(body, "text/csv")
    if text.startswith("\ufeff"):  # spreadsheet exports start with a byte-order mark
        text = text[1:]
    # Only the header row is needed here: no copy of a large body split into lines.
    header = text.split("\n", 1)[0].lower()
    if not any(name in header for name in _CSV_COLUMNS):
        raise BadRequest('text/csv needs a header row naming an "inputs" column (or "question" and "context")')
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from None
    if not rows:
        raise BadRequest("text/csv has a header row but no data rows")
    if "inputs" in rows[0]:
        return {"inputs": [row["inputs"] for row in rows]}
    return {"inputs": rows}


def load_npy(body: bytes) -> Any:
    import numpy as np

    try:
        # allow_pickle=False: a pickled object array would run code from the request.
        return np.load(io.BytesIO(body), allow_pickle=False)
    except ValueError as exc:
        raise BadRequest(
            f"application/x-npy body is not a plain NumPy array (object arrays are refused): {exc}"
        ) from None
    except (OSError, EOFError) as exc:
        raise BadRequest(f"application/x-npy body is not a .npy file: {exc}") from None


def load_image(body: bytes) -> Any:
    from PIL import Image

    try:
        # convert() forces the lazy decoder to read the whole image now, so a
        # truncated file is this request's 400 and not an error in the batch.
        return Image.open(io.BytesIO(body)).convert("RGB")
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files (and decompression bombs)
        raise BadRequest(f"the body is not a readable image: {type(exc).__name__}: {exc}") from None


def load_audio(body: bytes) -> Audio:
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile errors and format errors alike
        raise BadRequest(f"the body is not readable audio (wav, flac, ogg, mp3): {exc}") from None
    # Speech models take one channel: average the others in.
    return Audio(samples=samples.mean(axis=1), sampling_rate=int(rate))


def decode_document(body: bytes | str, kind: str) -> Any:
    """The body as the toolkit's default ``input_fn`` returns it (a dict with "inputs", for most kinds)."""
    if kind == KIND_JSON:
        return load_json(body)
    if kind == KIND_TEXT:
        return {"inputs": decode_text(body, "text/plain")}
    if kind == KIND_CSV:
        return load_csv(body)
    # Binary kinds arrive as bytes; a user script may hand any body over as text.
    raw = body.encode() if isinstance(body, str) else body
    if kind == KIND_NPY:
        return load_npy(raw)
    if kind == KIND_IMAGE:
        return {"inputs": load_image(raw)}
    if kind == KIND_AUDIO:
        return {"inputs": load_audio(raw)}
    raise UnsupportedMediaType(f"no decoder for {kind}")


def decode(body: bytes, kind: str) -> Payload:
    """Decode a request for the default (batched) path."""
    doc = decode_document(body, kind)
    if kind == KIND_NPY:
        # An array of strings is inputs for a text model (1-D: a list of them);
        # a numeric array is one input, e.g. a waveform for an audio model.
        if doc.dtype.kind not in "US":
            return Payload(inputs=[doc])
        if doc.ndim == 0:
            return Payload(inputs=[doc.item()])
        if doc.ndim != 1 or doc.size == 0:
            raise BadRequest("an application/x-npy array of strings must be 1-D and not empty")
        return Payload(inputs=doc.tolist(), is_batch=True)
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise BadRequest('the JSON body must be an object with "inputs"')
    inputs = doc["inputs"]
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be a JSON object')
    if isinstance(inputs, list):
        if not inputs:
            raise BadRequest('"inputs" must not be an empty list')
        return Payload(inputs=inputs, parameters=parameters, is_batch=True)
    return Payload(inputs=[inputs], parameters=parameters)


# ------------------------------------------------------------------------- responses
def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "save") and hasattr(value, "mode"):  # PIL images: base64 PNG, as the toolkit does
        import base64

        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
    if isinstance(value, (datetime.date, datetime.time)):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def encode_json(content: Any) -> bytes:
    # Compact separators and raw UTF-8: byte for byte what the toolkit's encode_json writes.
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_jsonable).encode("utf-8")


def encode_csv(content: Any) -> bytes:
    """One row per object, a header of their keys (the toolkit's ``encode_csv``).

    Outputs that are not a flat list of objects have no CSV form: 406.
    """
    rows = content if isinstance(content, list) else [content]
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise NotAcceptable("this output is not a list of objects and has no text/csv form: ask for application/json")
    header = list(rows[0])
    stream = io.StringIO()
    writer = csv.DictWriter(stream, header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # Lists and objects inside a cell (e.g. zero-shot "labels") as JSON, not Python repr.
        writer.writerow(
            {
                k: v if isinstance(v, (str, int, float)) or v is None else encode_json(v).decode("utf-8")
                for k, v in row.items()
            }
        )
    return stream.getvalue().encode("utf-8")


def encode_npy(content: Any) -> bytes:
    import numpy as np

    try:
        array = np.asarray(content)
    except ValueError as exc:  # ragged nesting
        raise NotAcceptable(f"this output has no application/x-npy form ({exc}): ask for application/json") from None
    if array.dtype.kind == "O":
        # An object array only loads with allow_pickle=True on the client's side.
        raise NotAcceptable("this output is not numeric and has no application/x-npy form: ask for application/json")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_ENCODERS = {JSON: encode_json, CSV: encode_csv, NPY: encode_npy}


def encode_response(content: Any, accept: str | None) -> tuple[bytes, str]:
    media = negotiate(accept)
    return _ENCODERS[media](content), media


def encode(outputs: list[Any], is_batch: bool) -> bytes:
    return encode_json(outputs if is_batch else outputs[0])


def parameters_key(parameters: dict[str, Any]) -> str:
    """Requests batch together only when this key is equal."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"))
