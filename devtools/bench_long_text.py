"""Benchmark: what a long text costs the inference thread, whole-text tokenizing vs the bounded prefix.

    .venv/bin/python -m devtools.bench_long_text [--sizes 1000,100000,1000000,9600000] [--rounds 3]

For each text size it prints the best-of-N wall time of
  - ``tokenizer(text, truncation=True, max_length=n)``: what the server did before
    (the whole text is tokenized, then cut);
  - ``bounded_prefix`` + the same call: what it does now (truncation.py);
  - one full request on the inference thread (``Seq2SeqModel.predict_batch``, 4 new tokens);
  - ``json.loads`` of the body ``{"inputs": text}`` (the event loop parses JSON bodies whole).
The model is the tests' tiny random-weight BART (devtools/tiny_model.py), built offline.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

WORDS = ["alpha", "beta", "gamma", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "42", "!?"]


def text_of(size: int) -> str:
    rng = random.Random(size)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def best_of(rounds: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000,9600000", help="text sizes in characters")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import torch
    from model_server.loader import load
    from model_server.settings import Settings
    from model_server.truncation import bounded_prefix

    from devtools.tiny_model import build_tiny_seq2seq

    torch.set_num_threads(1)
    model_dir = build_tiny_seq2seq(Path(tempfile.mkdtemp(prefix="bench-long-text-")))
    model = load(Settings(model_dir=model_dir, device="cpu", warmup=True, torch_threads=1)).model
    tokenizer, n = model.tokenizer, model.max_input_tokens
    print(f"tiny BART, max input tokens {n}, torch threads 1, best of {args.rounds}")
    print(
        f"{'chars':>10} {'whole-text tokenize':>20} {'bounded prefix':>15} {'request (4 tokens)':>19} "
        f"{'JSON parse':>11}"
    )

    def tokenize_prefix(text: str) -> Any:
        return tokenizer(bounded_prefix(text, tokenizer, n), truncation=True, max_length=n)

    for size in (int(s) for s in args.sizes.split(",")):
        text = text_of(size)
        whole = best_of(args.rounds, partial(tokenizer, text, truncation=True, max_length=n))
        bounded = best_of(args.rounds, partial(tokenize_prefix, text))
        request = best_of(args.rounds, partial(model.predict_batch, [text], {"max_new_tokens": 4, "min_new_tokens": 4}))
        body = json.dumps({"inputs": text}).encode()
        parse = best_of(args.rounds, partial(json.loads, body))
        print(
            f"{size:>10} {whole * 1000:>17.1f} ms {bounded * 1000:>12.1f} ms {request * 1000:>16.1f} ms "
            f"{parse * 1000:>8.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
