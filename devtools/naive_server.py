"""The baseline `make bench` compares against: the common tutorial's FastAPI server.

One ``async def`` endpoint that tokenizes, calls ``generate`` and decodes right
on the event loop. Requests run strictly one at a time, and while one runs the
loop cannot even answer /ping. This is deliberately naive: do not deploy it.

    MODEL_DIR=... PORT=8081 python -m devtools.naive_server
"""

from __future__ import annotations

import os

import torch
import uvicorn
from fastapi import FastAPI, Request
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

MODEL_DIR = os.environ["MODEL_DIR"]
# The benchmark gives every system the same torch thread count, so that the
# comparison is about the server design, not about thread settings.
if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
model = AutoModelForSeq2SeqLM.from_pretrained(MODEL_DIR).eval()
app = FastAPI()


@app.get("/ping")
async def ping() -> dict:
    return {"status": "ok"}


@app.post("/invocations")
async def invocations(request: Request) -> list | dict:
    body = await request.json()
    inputs = body["inputs"]
    encoded = tokenizer(inputs, return_tensors="pt", padding=True, truncation=True)
    with torch.inference_mode():
        generated = model.generate(**encoded, **body.get("parameters", {}))
    texts = [{"generated_text": t} for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    return texts if isinstance(inputs, list) else texts[0]


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8081")), log_level="warning")
