"""MIME types, under the names the Hugging Face toolkit's ``content_types`` module uses."""

from model_server import codec

JSON = codec.JSON
CSV = codec.CSV
OCTET_STREAM = "application/octet-stream"
ANY = codec.ANY
NPY = codec.NPY
UTF8_TYPES = list(codec.UTF8_TYPES)
JPEG, PNG, TIFF, BMP, GIF, WEBP, X_IMAGE = codec.IMAGE_TYPES
VISION_TYPES = list(codec.IMAGE_TYPES)
FLAC = "audio/x-flac"
MP3 = "audio/mpeg"
WAV = "audio/wave"
OGG = "audio/ogg"
X_AUDIO = "audio/x-audio"
AUDIO_TYPES = [FLAC, MP3, WAV, OGG, X_AUDIO]
