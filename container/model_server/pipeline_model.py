"""Every task transformers 5 still has a pipeline for, batched.

A pipeline called with a list and ``batch_size`` pads and runs the list as one
forward pass per chunk, which is what the dynamic batcher hands it.
"""

from __future__ import annotations

from typing import Any


class PipelineModel:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.task = pipe.task
        tokenizer = getattr(pipe, "tokenizer", None)
        if tokenizer is not None and tokenizer.pad_token is None and tokenizer.eos_token is not None:
            # GPT-style tokenizers have no pad token; batching needs one.
            tokenizer.pad_token = tokenizer.eos_token
        if tokenizer is not None and self.task == "text-generation":
            # Decoder-only generation must pad on the left, or the new tokens
            # follow pad tokens for every input but the longest.
            tokenizer.padding_side = "left"

    def validate(self, inputs: list[Any], parameters: dict[str, Any]) -> None:
        # Pipelines accept many input shapes (text, dicts for QA, URLs for images);
        # they validate themselves, and their errors come back as 500 with a message.
        return None

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        outputs = self.pipe(list(inputs), batch_size=len(inputs), **parameters)
        if len(outputs) != len(inputs):  # defensive: one output per input or nothing
            raise RuntimeError(f"pipeline returned {len(outputs)} outputs for {len(inputs)} inputs")
        return list(outputs)

    def warmup(self) -> None:
        if self.task in ("text-classification", "text-generation", "token-classification", "feature-extraction"):
            self.predict_batch(["warm up"], {"max_new_tokens": 1} if self.task == "text-generation" else {})

    def __call__(self, inputs: Any, **parameters: Any) -> Any:
        return self.pipe(inputs, **parameters)
