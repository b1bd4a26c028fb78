"""``decoder_encoder`` with the Hugging Face toolkit's function names and return types.

The toolkit's documented behaviour (its README and unit tests) is kept:
``decode(data, content_type)`` returns ``{"inputs": ...}`` for CSV, images and
audio and the parsed document for JSON; ``encode(prediction, accept)``
returns a ``str`` for JSON and CSV and ``bytes`` for ``.npy`` and images.
Failures raise this server's errors, so a bad payload decoded in a user's
``input_fn`` is a 400 with the reason, and an unknown type a 415 / 406.
"""

from __future__ import annotations

import io
from typing import Any

from model_server import codec
from model_server.errors import NotAcceptable, UnsupportedMediaType

from . import content_types


def decode_json(content: str | bytes) -> Any:
    return codec.load_json(content)


def decode_csv(string_like: str | bytes) -> dict[str, list[Any]]:
    return codec.load_csv(string_like)


def decode_image(bpayload: bytes | bytearray) -> dict[str, Any]:
    return {"inputs": codec.load_image(bytes(bpayload))}


def decode_audio(bpayload: bytes | bytearray) -> dict[str, bytes]:
    # The toolkit passes the encoded bytes on; the server's default model
    # decodes them when a user's predict_fn hands them to it.
    return {"inputs": bytes(bpayload)}


def decode_npy(bpayload: bytes | bytearray) -> Any:
    return codec.load_npy(bytes(bpayload))


def encode_json(content: Any, accept_type: str | None = None) -> str:
    return codec.encode_json(content).decode("utf-8")


def encode_csv(content: Any, accept_type: str | None = None) -> str:
    return codec.encode_csv(content).decode("utf-8")


def _array_to_npy(array_like: Any, accept_type: str | None = None) -> bytes:
    return codec.encode_npy(array_like)


def encode_image(image: Any, accept_type: str = content_types.PNG) -> bytes:
    """A PIL image in the format the Accept type names (PNG for ``image/x-image``)."""
    image_format = "PNG" if accept_type == content_types.X_IMAGE else accept_type.split("/")[-1].upper()
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


_decoder_map = {
    content_types.JSON: decode_json,
    content_types.CSV: decode_csv,
    content_types.NPY: decode_npy,
    **{media: decode_image for media in content_types.VISION_TYPES},
    **{media: decode_audio for media in codec.AUDIO_TYPES},
}
_encoder_map = {
    content_types.JSON: encode_json,
    content_types.CSV: encode_csv,
    content_types.NPY: _array_to_npy,
    **{media: encode_image for media in content_types.VISION_TYPES},
}


def decode(content: Any, content_type: str = content_types.JSON) -> Any:
    decoder = _decoder_map.get(codec.media_type(content_type))
    if decoder is None:
        raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}: use one of {sorted(_decoder_map)}")
    return decoder(content)


def encode(content: Any, accept_type: str = content_types.JSON) -> Any:
    encoder = _encoder_map.get(codec.media_type(accept_type))
    if encoder is None:
        raise NotAcceptable(f"cannot produce {accept_type!r}: use one of {sorted(_encoder_map)}")
    return encoder(content, accept_type)
