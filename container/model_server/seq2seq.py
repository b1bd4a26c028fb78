"""Summarization / text2text / translation through ``AutoModelForSeq2SeqLM.generate``.

transformers 5 has no pipelines for these tasks. This module does what those
pipelines did (task prefix, task-specific generation defaults, output keys) on
a whole batch at once: one padded ``generate`` call for many requests is where
dynamic batching gets its throughput.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch

from .errors import BadRequest
from .tasks import output_key
from .truncation import bounded_prefix, max_input_tokens

log = logging.getLogger(__name__)

# Keys of task_specific_params that are not generation settings.
_NON_GENERATION_KEYS = {"prefix"}


class Seq2SeqModel:
    def __init__(self, model: Any, tokenizer: Any, task: str, device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.device = device
        self._key = output_key(task)
        specific = (getattr(model.config, "task_specific_params", None) or {}).get(task, {})
        # T5 needs its "summarize: " / "translate English to German: " prefix.
        self._prefix = specific.get("prefix") or ""
        self.max_input_tokens = max_input_tokens(tokenizer, model.config)
        self.generation_config = copy.deepcopy(model.generation_config)
        defaults = {k: v for k, v in specific.items() if k not in _NON_GENERATION_KEYS}
        if defaults:
            self.generation_config.update(**defaults)

    # -- called on the event loop: cheap checks only --------------------------------
    def validate(self, inputs: list[Any], parameters: dict[str, Any]) -> None:
        """Reject bad inputs and unknown or invalid generation parameters with 400."""
        if not all(isinstance(x, str) for x in inputs):
            raise BadRequest('"inputs" must be a string or a list of strings')
        self._generation_config(parameters)

    def _generation_config(self, parameters: dict[str, Any]) -> Any:
        config = copy.deepcopy(self.generation_config)
        try:
            unused = config.update(**parameters)
            config.validate(strict=True)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"invalid parameters: {exc}") from None
        if unused:
            raise BadRequest(f"unknown parameters: {sorted(unused)}")
        return config

    # -- called on the inference thread ------------------------------------------------
    def predict_batch(self, inputs: list[str], parameters: dict[str, Any]) -> list[Any]:
        config = self._generation_config(parameters)
        encoded = self.tokenizer(
            # Cut before tokenizing: a long text costs no more than a fitting one.
            [bounded_prefix(self._prefix + text, self.tokenizer, self.max_input_tokens) for text in inputs],
            return_tensors="pt",
            padding=True,
            # Over-long inputs are cut to the model's maximum instead of crashing
            # the position embeddings (the removed pipelines did the same).
            truncation=True,
            max_length=self.max_input_tokens,
        ).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(**encoded, generation_config=config)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        per_input = config.num_return_sequences or 1
        results = [{self._key: text} for text in texts]
        if per_input == 1:
            return results
        return [results[i : i + per_input] for i in range(0, len(results), per_input)]

    def warmup(self) -> None:
        self.predict_batch(["warm up"], {"max_new_tokens": 1, "min_new_tokens": None})

    def __call__(self, inputs: Any, **parameters: Any) -> list[Any]:
        """Pipeline-style call for user ``predict_fn``s written against the toolkit.

        Like the removed pipelines, a single string gives a one-element list.
        """
        batch = inputs if isinstance(inputs, list) else [inputs]
        self.validate(batch, parameters)
        return self.predict_batch(batch, parameters)
