"""transform_fn with the toolkit's own decoder_encoder, named by SAGEMAKER_PROGRAM."""

from sagemaker_huggingface_inference_toolkit import decoder_encoder


def model_fn(model_dir):
    return {"name": "entry point model", "dir": model_dir}


def transform_fn(model, input_data, content_type, accept):
    data = decoder_encoder.decode(input_data, content_type)
    inputs = data["inputs"] if isinstance(data["inputs"], list) else [data["inputs"]]
    prediction = [{"script": "serve_transform.py", "model": model["name"], "text": text.upper()} for text in inputs]
    return decoder_encoder.encode(prediction, accept)
