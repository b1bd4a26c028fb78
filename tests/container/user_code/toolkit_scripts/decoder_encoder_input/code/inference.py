"""Only input_fn, written as the toolkit's README shows; default predict_fn and output_fn."""

from sagemaker_huggingface_inference_toolkit import content_types, decoder_encoder


def input_fn(input_data, content_type):
    data = decoder_encoder.decode(input_data, content_type)
    if content_type == content_types.CSV:
        data["inputs"] = [text.lower() for text in data["inputs"]]
    return data
