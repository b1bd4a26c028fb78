"""``sagemaker_inference.encoder``: array-likes to JSON, CSV or ``.npy`` (str, str, bytes)."""

from __future__ import annotations

import io
import json
from typing import Any

from model_server import codec

from . import content_types, errors


def _array_to_json(array_like: Any) -> str:
    return json.dumps(array_like, default=codec._jsonable)


def _array_to_npy(array_like: Any) -> bytes:
    return codec.encode_npy(array_like)


def _array_to_csv(array_like: Any) -> str:
    import numpy as np

    stream = io.StringIO()
    # One row per element of the first axis, comma-separated, values as str.
    np.savetxt(stream, array_like, delimiter=",", fmt="%s")
    return stream.getvalue()


_encoder_map = {content_types.NPY: _array_to_npy, content_types.CSV: _array_to_csv, content_types.JSON: _array_to_json}
SUPPORTED_CONTENT_TYPES = set(_encoder_map)


def encode(array_like: Any, content_type: str) -> Any:
    encoder = _encoder_map.get(codec.media_type(content_type))
    if encoder is None:
        raise errors.UnsupportedAcceptError(content_type)
    return encoder(array_like)
