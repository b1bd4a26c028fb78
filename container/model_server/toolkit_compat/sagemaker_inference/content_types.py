"""MIME types, under the names of ``sagemaker_inference.content_types``."""

from model_server import codec

JSON = codec.JSON
CSV = codec.CSV
OCTET_STREAM = "application/octet-stream"
ANY = codec.ANY
NPY = codec.NPY
NPZ = "application/x-npz"
UTF8_TYPES = list(codec.UTF8_TYPES)
