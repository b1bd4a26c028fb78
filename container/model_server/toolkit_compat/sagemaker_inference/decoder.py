"""``sagemaker_inference.decoder``: JSON, CSV and ``.npy`` bodies to NumPy arrays."""

from __future__ import annotations

import io
from typing import Any

from model_server import codec

from . import content_types, errors


def _json_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    import numpy as np

    return np.array(codec.load_json(string_like), dtype=dtype)


def _csv_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    import numpy as np

    text = codec.decode_text(string_like, "text/csv")
    return np.genfromtxt(io.StringIO(text), dtype=dtype, delimiter=",")


def _npy_to_numpy(npy_array: bytes) -> Any:
    # Without pickle, unlike the original: a pickled object array would run code from the request.
    return codec.load_npy(bytes(npy_array))


_decoder_map = {content_types.NPY: _npy_to_numpy, content_types.CSV: _csv_to_numpy,
                content_types.JSON: _json_to_numpy}


def decode(obj: Any, content_type: str) -> Any:
    decoder = _decoder_map.get(codec.media_type(content_type))
    if decoder is None:  # application/x-npz too: its sparse matrices need SciPy, not in the image
        raise errors.UnsupportedFormatError(content_type)
    return decoder(obj)
