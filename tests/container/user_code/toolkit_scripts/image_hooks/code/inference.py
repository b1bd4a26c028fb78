"""An image script: decoder_encoder turns image/* bodies into a PIL image, as in the toolkit."""

import json

from sagemaker_huggingface_inference_toolkit import decoder_encoder


def model_fn(model_dir):
    return "image model"


def input_fn(input_data, content_type):
    return decoder_encoder.decode(input_data, content_type)


def predict_fn(data, model):
    image = data["inputs"]
    return {"size": list(image.size), "mode": image.mode, "bytes_in": type(data["inputs"]).__name__}


def output_fn(prediction, accept):
    return json.dumps(prediction)
