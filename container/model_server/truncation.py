"""Cut long texts before the tokenizer sees them, not after.

``tokenizer(text, truncation=True, max_length=n)`` tokenizes the WHOLE text and
then drops all but n tokens: a 9.6 MB text took 13 s of the single inference
thread (devtools/bench_long_text.py, docs/benchmarks.md) and gigabytes of token
ids, offsets and encodings, for a model that reads its first few hundred tokens.

``bounded_prefix`` hands the tokenizer a prefix just long enough to hold more
than n tokens. The prefix is grown geometrically from a few characters per
token, so texts of any size cost a few small tokenizations; a text that is
short to begin with is returned untouched without tokenizing anything.
A prefix that yields at least n + ``_MARGIN`` tokens gives the same first n
tokens as the whole text: the tokenizer splits text into words before merging,
and only the last, cut word can tokenize differently.
"""

from __future__ import annotations

from typing import Any

# Few tokens are longer than this many characters (English BPE averages about 4).
_CHARS_PER_TOKEN = 8
_MARGIN = 16
# Tokenizers without a real limit report a huge sentinel (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 1_000_000


def max_input_tokens(tokenizer: Any, config: Any, default: int = 1024) -> int:
    """The model's input length: the tokenizer's limit, bounded by the position embeddings."""
    limits = [
        value
        for value in (getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None))
        if isinstance(value, int) and 0 < value < _NO_LIMIT
    ]
    return min(limits) if limits else default


def bounded_prefix(text: str, tokenizer: Any, max_tokens: int) -> str:
    """The shortest probed prefix of ``text`` that still tokenizes to more than ``max_tokens`` tokens."""
    length = (max_tokens + _MARGIN) * _CHARS_PER_TOKEN
    while length < len(text):
        prefix = text[:length]
        ids = tokenizer(prefix, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        if len(ids) >= max_tokens + _MARGIN:
            return prefix
        length *= 4
    return text
