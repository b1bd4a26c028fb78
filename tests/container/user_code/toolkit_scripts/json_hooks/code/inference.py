"""Toolkit style, no context: model_fn builds a pipeline, input_fn parses the str body itself."""

import json

from transformers import pipeline


def model_fn(model_dir):
    return pipeline("text-classification", model=model_dir, device=-1)


def input_fn(input_data, content_type):
    if content_type != "application/json":
        raise ValueError(f"only JSON, not {content_type}")
    # The toolkit hands a JSON body over as str: json.loads and str methods just work.
    return json.loads(input_data)["inputs"].strip()


def predict_fn(data, model):
    return model(data)


def output_fn(prediction, accept):
    return json.dumps({"predictions": prediction, "accept": accept})
