"""Build a tiny, random-weight seq2seq model (BART) fully offline.

Model hubs are unreachable on the development and CI machines, yet the server's
tests and benchmark need a *real* transformers model directory: a config, a
tokenizer and weights that ``AutoModelForSeq2SeqLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load exactly as they would a downloaded one.
Training a byte-level BPE tokenizer on a few sentences and initialising BART
from a config does that in well under a second.

    python -m devtools.tiny_model OUTDIR [--d-model 256 --layers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# A small, fixed corpus: the tokenizer is deterministic for a given corpus, so
# every run (and every machine) produces the same vocabulary.
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Amazon SageMaker asynchronous inference queues requests and scales to zero.",
    "A model server answers health checks while the model is busy.",
    "Dynamic batching groups concurrent requests into one model call.",
    "Summaries are shorter than the documents they summarise.",
    "Translation turns a sentence in one language into another language.",
    "0123456789 !?.,;:'\"()[]{}<>-_/\\|@#$%^&*+=~`",
]
_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _token_id(tokenizer: Any, token: str) -> int:
    """The id of one special token (convert_tokens_to_ids answers a list for a list)."""
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int):
        raise TypeError(f"{token!r} has no single id in this vocabulary: {value!r}")
    return value


def build_tiny_seq2seq(
    path: str | Path,
    *,
    d_model: int = 32,
    layers: int = 1,
    heads: int = 2,
    ffn_dim: int | None = None,
    vocab_size: int = 512,
    max_position_embeddings: int = 256,
    max_new_tokens: int = 8,
    init_std: float = 0.2,
    seed: int = 0,
) -> Path:
    """Write a tokenizer + random-weight BART to ``path`` and return it.

    ``layers`` is the number of encoder layers and also of decoder layers.
    ``max_new_tokens`` goes into the saved generation config, so a request
    without parameters is short (the server's default); requests may override it.
    ``init_std`` is larger than BART's 0.02: with 0.02 a random model answers
    every input with an immediate end-of-sequence, with 0.2 its output depends
    on its input, which is what tests of batching need to tell responses apart.
    """
    # Imported here so that `--help` and importing this module stay cheap.
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig, PreTrainedTokenizerFast

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    bpe = ByteLevelBPETokenizer()
    # min_frequency=1: the corpus is tiny; every merge it can learn is wanted.
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=vocab_size, min_frequency=1, special_tokens=_SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=max_position_embeddings,
    )
    tokenizer.save_pretrained(out)

    ids = {tok: _token_id(tokenizer, tok) for tok in _SPECIAL_TOKENS}
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim or 4 * d_model,
        decoder_ffn_dim=ffn_dim or 4 * d_model,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=ids["<s>"],
        pad_token_id=ids["<pad>"],
        eos_token_id=ids["</s>"],
        decoder_start_token_id=ids["</s>"],
        forced_eos_token_id=None,
        architectures=["BartForConditionalGeneration"],
        init_std=init_std,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config).eval()
    # Greedy and short by default: deterministic outputs make tests exact.
    model.generation_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        bos_token_id=ids["<s>"],
        pad_token_id=ids["<pad>"],
        eos_token_id=ids["</s>"],
        decoder_start_token_id=ids["</s>"],
        # Never emit the other special tokens: they decode to nothing.
        suppress_tokens=[ids[t] for t in ("<s>", "<pad>", "<unk>", "<mask>")],
    )
    model.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1, help="encoder layers (= decoder layers)")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args(argv)
    out = build_tiny_seq2seq(
        args.outdir, d_model=args.d_model, layers=args.layers, heads=args.heads, max_new_tokens=args.max_new_tokens
    )
    print(out)


if __name__ == "__main__":
    main()
