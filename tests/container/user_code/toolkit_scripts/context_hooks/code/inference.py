"""Toolkit style with the trailing context argument on every hook (newer toolkit versions)."""

import json

import torch
from transformers import pipeline


def model_fn(model_dir, context=None):
    # The idiom from multi-GPU examples: the worker's GPU comes from the context.
    gpu_id = context.system_properties.get("gpu_id")
    device = f"cuda:{gpu_id}" if torch.cuda.is_available() and gpu_id is not None and gpu_id >= 0 else "cpu"
    return {
        "pipe": pipeline("text-classification", model=context.system_properties["model_dir"], device=device),
        "device": device,
    }


def input_fn(input_data, content_type, context=None):
    return {"text": json.loads(input_data)["inputs"], "trace": context.get_request_header(0, "X-Trace-Id")}


def predict_fn(data, model, context=None):
    return {"labels": model["pipe"](data["text"]), "device": model["device"], "trace": data["trace"]}


def output_fn(prediction, accept, context=None):
    context.set_response_content_type(0, "application/vnd.example+json")
    return json.dumps(prediction)
