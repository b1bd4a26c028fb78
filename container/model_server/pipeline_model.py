"""Every task transformers 5 still has a pipeline for, batched and validated.

A pipeline called with a list and ``batch_size`` pads and runs the list as one
forward pass per chunk, which is what the dynamic batcher hands it.

``validate`` runs on the event loop before a request joins a batch: inputs of
the wrong type for the task, a fill-mask input without the mask token, a
zero-shot request without labels, unknown parameters and invalid generation
settings are the client's 400 there, and never reach (or fail) a batch.
"""

from __future__ import annotations

import copy
import inspect
import os
from typing import Any

from .codec import Audio
from .errors import BadRequest
from .tasks import AUDIO_TASKS, IMAGE_TASKS
from .truncation import bounded_prefix, max_input_tokens

# Tasks whose pipeline hands unknown keyword arguments to ``generate``, checked here
# against the model's GenerationConfig. (Speech models' generate also takes
# arguments that are no GenerationConfig field, e.g. Whisper's ``language``:
# those pipelines are left to check their own.)
_GENERATING = frozenset({"text-generation"})
# Text tasks whose pipelines tokenize a text from its start (token-classification is
# not one: with a stride it reads long texts in overlapping windows).
_READ_FROM_START = frozenset({"text-classification", "feature-extraction", "text-generation", "fill-mask"})
# transformers' AggregationStrategy values (token-classification).
_AGGREGATIONS = frozenset({"none", "simple", "first", "average", "max"})
# Keyword arguments these pipelines take through **kwargs (not in their _sanitize_parameters signature).
_KWARGS = {
    "zero-shot-classification": {"candidate_labels", "hypothesis_template", "multi_label"},
}


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
        self._named, self._open = _signature(pipe)
        self._tokenizer_args = _tokenizer_arguments(tokenizer) if self.task == "text-classification" else set()
        generation_config = getattr(getattr(pipe, "model", None), "generation_config", None)
        self._generation_config = generation_config if self.task in _GENERATING else None
        self._strict = True
        if self._generation_config is not None:
            try:
                self._generation_config.validate(strict=True)
            except ValueError:
                # The model's own defaults already warn: checking strictly would refuse every request.
                self._strict = False
        feature_extractor = getattr(pipe, "feature_extractor", None)
        self._sampling_rate = getattr(feature_extractor, "sampling_rate", None)
        # Long texts are cut before tokenizing (truncation.py) where a pipeline reads from
        # the start: the prefix keeps more tokens than the model takes, so results and
        # "too long" errors are those of the whole text, without tokenizing megabytes.
        self._max_tokens = (
            max_input_tokens(tokenizer, getattr(pipe.model, "config", None))
            if tokenizer is not None and self.task in _READ_FROM_START
            else None
        )

    # -- called on the event loop: cheap checks only -------------------------------------
    def validate(self, inputs: list[Any], parameters: dict[str, Any]) -> None:
        """400 for requests this task cannot run, before they join a batch."""
        for position, item in enumerate(inputs):
            self._validate_input(item, position if len(inputs) > 1 else None)
        self._validate_parameters(parameters)

    def _validate_input(self, item: Any, position: int | None) -> None:
        where = '"inputs"' if position is None else f'"inputs"[{position}]'
        if self.task in IMAGE_TASKS:
            if isinstance(item, str):
                _check_remote_reference(item, where, "an image")
            elif not (hasattr(item, "mode") and hasattr(item, "size")):
                raise BadRequest(
                    f"{where}: {self.task} takes an image (send the image bytes with an image/* "
                    f"Content-Type, or a URL), not {type(item).__name__}"
                )
            return
        if self.task in AUDIO_TASKS:
            if isinstance(item, str):
                _check_remote_reference(item, where, "audio")
            elif isinstance(item, dict):
                # The pipelines' own dict form, e.g. from JSON: {"raw": [samples], "sampling_rate": 16000}.
                samples = item.get("raw", item.get("array"))
                rate = item.get("sampling_rate")
                if (
                    (not isinstance(samples, list) and not hasattr(samples, "dtype"))
                    or not isinstance(rate, int)
                    or rate <= 0
                ):
                    raise BadRequest(f'{where}: audio as an object is {{"raw": [samples...], "sampling_rate": <Hz>}}')
            elif not isinstance(item, (Audio, bytes)) and not hasattr(item, "dtype"):
                raise BadRequest(
                    f"{where}: {self.task} takes audio (send the file with an audio/* Content-Type), "
                    f"not {type(item).__name__}"
                )
            return
        if self.task == "text-classification" and isinstance(item, (dict, list)):
            pair = item if isinstance(item, list) else [item.get("text"), item.get("text_pair", "")]
            if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
                raise BadRequest(f'{where}: a text pair is {{"text": ..., "text_pair": ...}} or two strings')
            return
        if not isinstance(item, str):
            raise BadRequest(f"{where} must be a string for {self.task}, not {type(item).__name__} ({item!r:.40})")
        if self.task == "fill-mask":
            mask = self.pipe.tokenizer.mask_token
            if mask not in item:
                raise BadRequest(f"{where} must contain the mask token {mask!r} for fill-mask")

    def _validate_parameters(self, parameters: dict[str, Any]) -> None:
        unknown = set(parameters) - self._named - _KWARGS.get(self.task, set())
        top_k = parameters.get("top_k")
        if (
            "top_k" in parameters
            and top_k is not None
            and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1)
        ):
            raise BadRequest(f'"parameters.top_k" must be a positive integer (or null), not {top_k!r}')
        strategy = parameters.get("aggregation_strategy")
        if self.task == "token-classification" and strategy is not None and str(strategy).lower() not in _AGGREGATIONS:
            raise BadRequest(
                f'"parameters.aggregation_strategy" must be one of {sorted(_AGGREGATIONS)}, not {strategy!r}'
            )
        if self.task == "zero-shot-classification":
            labels = parameters.get("candidate_labels")
            if isinstance(labels, str):
                labels = [x for x in labels.split(",") if x.strip()]
            if not labels or not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise BadRequest(
                    'zero-shot-classification needs "parameters": {"candidate_labels": [...]} '
                    "with at least one label (a list of strings or a comma-separated string)"
                )
            template = parameters.get("hypothesis_template", "{}")
            if not isinstance(template, str) or "{}" not in template:
                raise BadRequest(
                    f'"parameters.hypothesis_template" must be a string with a {{}} for the label, not {template!r}'
                )
            if not isinstance(parameters.get("multi_label", False), bool):
                raise BadRequest('"parameters.multi_label" must be true or false')
        if self._generation_config is not None:
            generation = {k: parameters[k] for k in unknown | ({"max_length"} & set(parameters))}
            config = copy.deepcopy(self._generation_config)
            try:
                unused = config.update(**generation)
                config.validate(strict=self._strict)
            except (ValueError, TypeError) as exc:
                raise BadRequest(f"invalid generation parameters: {exc}") from None
            unknown = set(unused or ())
        elif self._tokenizer_args:
            unknown -= self._tokenizer_args
        elif self._open:
            # The pipeline takes **kwargs and documents no fixed set: let it decide.
            unknown = set()
        if unknown:
            allowed = sorted(self._named | _KWARGS.get(self.task, set()) | self._tokenizer_args)
            raise BadRequest(
                f"unknown parameters for {self.task}: {sorted(unknown)}"
                + (f"; allowed: {allowed}" if allowed else "")
                + ("; or any generation setting" if self._generation_config is not None else "")
            )

    # -- called on the inference thread ---------------------------------------------------------
    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        prepared = [self._prepare(x) for x in inputs]
        outputs = self.pipe(prepared, batch_size=len(prepared), **parameters)
        if self.task == "fill-mask" and len(prepared) == 1:
            # FillMaskPipeline unwraps a one-element list: what comes back is
            # that input's own output, not a list of outputs.
            outputs = [outputs]
        if len(outputs) != len(inputs):  # defensive: one output per input or nothing
            raise RuntimeError(f"pipeline returned {len(outputs)} outputs for {len(inputs)} inputs")
        return list(outputs)

    def _prepare(self, item: Any) -> Any:
        """An input as the pipeline should get it: a long text cut (truncation.py), audio as
        samples at the model's rate (a form pipelines take without ffmpeg or torchaudio)."""
        if self._max_tokens is not None and isinstance(item, str):
            return bounded_prefix(item, self.pipe.tokenizer, self._max_tokens)
        if self.task not in AUDIO_TASKS:
            return item
        if isinstance(item, (bytes, bytearray)):  # a toolkit user's predict_fn passing decode_audio's bytes
            from .codec import load_audio

            item = load_audio(bytes(item))
        if isinstance(item, dict) and ("raw" in item or "array" in item):
            import numpy as np

            samples = np.asarray(item.get("raw", item.get("array")), dtype=np.float32)
            item = Audio(samples=samples, sampling_rate=int(item["sampling_rate"]))
        if isinstance(item, Audio):
            return {
                "raw": _resample(item.samples, item.sampling_rate, self._sampling_rate),
                "sampling_rate": self._sampling_rate or item.sampling_rate,
            }
        return item

    def warmup(self) -> None:
        if self.task in ("text-classification", "text-generation", "token-classification", "feature-extraction"):
            self.predict_batch(["warm up"], {"max_new_tokens": 1} if self.task == "text-generation" else {})

    def __call__(self, inputs: Any, **parameters: Any) -> Any:
        """Pipeline-style call for user ``predict_fn``s written against the toolkit."""
        batch = inputs if isinstance(inputs, list) else [inputs]
        # batch_size / num_workers are Pipeline.__call__'s own: a predict_fn may pass them.
        self.validate(batch, {k: v for k, v in parameters.items() if k not in ("batch_size", "num_workers")})
        if isinstance(inputs, list):
            return self.pipe([self._prepare(x) for x in inputs], **parameters)
        return self.pipe(self._prepare(inputs), **parameters)


def _signature(pipe: Any) -> tuple[set[str], bool]:
    """The named keyword arguments a pipeline accepts, and whether it takes **kwargs too."""
    params = inspect.signature(pipe._sanitize_parameters).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _tokenizer_arguments(tokenizer: Any) -> set[str]:
    """text-classification passes its other keyword arguments to the tokenizer (truncation, max_length...)."""
    if tokenizer is None:
        return set()
    params = inspect.signature(tokenizer.__call__).parameters
    return {name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {
        "self",
        "text",
        "text_pair",
        "text_target",
        "text_pair_target",
    }


def _check_remote_reference(item: str, where: str, what: str) -> None:
    # Pipelines open a string as a URL, a local path or base64. A local path
    # would read the container's own files: only URLs are passed on.
    if not item.startswith(("http://", "https://")) or os.path.exists(item):
        raise BadRequest(
            f"{where}: a string input must be an http(s) URL of {what}; "
            f"send the bytes themselves with their Content-Type instead"
        )


def _resample(samples: Any, rate: int, target: int | None) -> Any:
    """Linear resampling with numpy (torchaudio, which pipelines use for this, is not in the image).

    Send audio at the model's rate (16 kHz for most speech models) for best results.
    """
    if not target or rate == target:
        return samples
    import numpy as np

    length = max(1, round(len(samples) * target / rate))
    positions = np.linspace(0, len(samples) - 1, num=length)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
