"""A script using the generic SageMaker inference toolkit's helpers, installed in the HF containers."""

import numpy as np
from sagemaker_inference import content_types, decoder, encoder, errors


def model_fn(model_dir):
    return np.array([2.0, 3.0])


def input_fn(input_data, content_type):
    if content_type not in (content_types.JSON, content_types.CSV, content_types.NPY):
        raise errors.UnsupportedFormatError(content_type)
    return decoder.decode(input_data, content_type)


def predict_fn(data, model):
    if data.ndim != 2:
        raise errors.GenericInferenceToolkitError(400, "send rows of two numbers")
    return data * model


def output_fn(prediction, accept):
    return encoder.encode(prediction, accept)
