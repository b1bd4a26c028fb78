"""A user script written for the SageMaker Hugging Face inference toolkit.

Same hook names and signatures as the toolkit (model_fn takes the optional
``context`` argument of its newer versions). Magic inputs let tests drive
failures and timing without hooks in the server itself:

- "raise": predict_fn raises (-> 500)
- "oom": predict_fn raises torch.OutOfMemoryError (-> 507)
- "memory": predict_fn raises MemoryError (-> 507)
- "block:NAME": predict_fn writes NAME.started in $TEST_SIGNAL_DIR and waits
  for NAME.release there (an in-flight request a test controls)
- $TEST_LOAD_GATE: model_fn waits for that file (a slow model load)
"""

import json
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def model_fn(model_dir, context=None):
    gate = os.environ.get("TEST_LOAD_GATE")
    if gate:
        _wait_for(Path(gate))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    return {"tokenizer": tokenizer, "model": model}


def input_fn(input_data, content_type):
    if content_type == "text/csv":
        # As under the toolkit, CSV and JSON bodies arrive as str.
        return {"inputs": input_data.splitlines()[0].split(",")[0]}
    return json.loads(input_data)


def predict_fn(data, model):
    text = data["inputs"]
    if text == "raise":
        raise RuntimeError("user predict_fn failed")
    if text == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    if text == "memory":
        raise MemoryError()
    if text.startswith("block:"):
        signals = Path(os.environ["TEST_SIGNAL_DIR"])
        name = text.split(":", 1)[1]
        (signals / f"{name}.started").touch()
        _wait_for(signals / f"{name}.release")
    encoded = model["tokenizer"](text, return_tensors="pt")
    with torch.inference_mode():
        generated = model["model"].generate(**encoded, max_new_tokens=3)
    return {"input": text, "generated": model["tokenizer"].decode(generated[0], skip_special_tokens=True)}


def output_fn(prediction, accept):
    return json.dumps({"custom_output": True, **prediction})
