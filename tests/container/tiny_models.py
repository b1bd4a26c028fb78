"""Tiny random-weight models for the tasks the Hugging Face toolkit serves, built offline.

No model hub is reachable in tests, so each model is made from a config with
random weights, and text models get a WordPiece tokenizer trained on a few
sentences with the ``tokenizers`` library. The directories are what
``save_pretrained`` writes, so the server loads them exactly as it would a
downloaded model (config.json with ``architectures``, weights, tokenizer or
image / audio processor).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

_CORPUS = [
    "My name is Wolfgang and I live in Berlin.",
    "The capital of France is Paris.",
    "I love this movie, it is great.",
    "I hate waiting, it is terrible.",
    "Amazon SageMaker serves models on GPU instances.",
    "0123456789 !?.,;:'\"()[]{}<>-_/\\|@#$%^&*+=~`",
]
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The smallest encoder that still has every part (one layer, two heads): random weights of a
# full-size shape would only add build time, and the server's paths are the same.
_TINY_ENCODER: dict[str, Any] = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
# Wav2Vec2's feature encoder cut to two small convolutions (16 kHz audio in, a few frames out).
_TINY_WAV2VEC2: dict[str, Any] = {
    **_TINY_ENCODER,
    "conv_dim": (8, 8),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 8),
    "num_feat_extract_layers": 2,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2,
}


def _model_dir(path: str | Path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _labelled(labels: Sequence[str]) -> dict[str, Any]:
    """The config fields that name a classifier's labels (what a fine-tuned model's config.json holds)."""
    return {"id2label": dict(enumerate(labels)), "label2id": {v: i for i, v in enumerate(labels)}}


def _save_random(model_class: Any, config: Any, out: Path, seed: int) -> Path:
    """``model_class(config)`` with weights drawn from ``seed`` (the same model on every run), saved
    as ``save_pretrained`` writes it: config.json names the class in ``architectures``."""
    import torch

    torch.manual_seed(seed)
    model_class(config).eval().save_pretrained(out)
    return out


def _save_wav2vec2_feature_extractor(out: Path) -> None:
    """The 16 kHz mono feature extractor a Wav2Vec2 checkpoint ships (audio pipelines read it)."""
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(out)


def _bert_tokenizer(out: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(_CORPUS * 4, trainers.WordPieceTrainer(vocab_size=300, special_tokens=_SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    tokenizer.save_pretrained(out)
    return tokenizer


def build_tiny_bert(path: str | Path, head: str, *, labels: list[str] | None = None, seed: int = 0) -> Path:
    """A tiny BERT with ``head``: "ForMaskedLM", "ForSequenceClassification",
    "ForTokenClassification", "ForQuestionAnswering" or "Model" (no head)."""
    import transformers
    from transformers import BertConfig

    out = _model_dir(path)
    tokenizer = _bert_tokenizer(out)
    config = BertConfig(
        vocab_size=len(tokenizer),
        **_TINY_ENCODER,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        **(_labelled(labels) if labels else {}),
    )
    # Writes architectures=["Bert<head>"], as a fine-tuned model's config has.
    return _save_random(getattr(transformers, f"Bert{head}"), config, out, seed)


def build_tiny_gpt2(path: str | Path, seed: int = 0) -> Path:
    """A tiny GPT-2 (``GPT2LMHeadModel``) for text-generation, with a byte-level BPE tokenizer."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = _model_dir(path)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=64,
    )
    tokenizer.save_pretrained(out)
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, bos_token_id=eos, eos_token_id=eos
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    model.generation_config = GenerationConfig(
        max_new_tokens=4, do_sample=False, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos
    )
    model.save_pretrained(out)
    return out


def build_tiny_vit(path: str | Path, labels: tuple[str, ...] = ("cat", "dog"), seed: int = 0) -> Path:
    """A tiny ``ViTForImageClassification`` with its image processor (32x32 inputs)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    out = _model_dir(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    config = ViTConfig(image_size=32, patch_size=8, **_TINY_ENCODER, **_labelled(labels))
    return _save_random(ViTForImageClassification, config, out, seed)


def build_tiny_wav2vec2_classifier(path: str | Path, labels: tuple[str, ...] = ("yes", "no"), seed: int = 0) -> Path:
    """A tiny ``Wav2Vec2ForSequenceClassification`` (audio-classification, 16 kHz)."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    out = _model_dir(path)
    _save_wav2vec2_feature_extractor(out)
    config = Wav2Vec2Config(**_TINY_WAV2VEC2, classifier_proj_size=8, **_labelled(labels))
    return _save_random(Wav2Vec2ForSequenceClassification, config, out, seed)


def build_tiny_wav2vec2_ctc(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``Wav2Vec2ForCTC`` with a character vocabulary (automatic-speech-recognition, 16 kHz)."""
    import json

    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    out = _model_dir(path)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("abcdefghij")}}
    (out / "vocab.json").write_text(json.dumps(vocab))
    Wav2Vec2CTCTokenizer(str(out / "vocab.json")).save_pretrained(out)
    _save_wav2vec2_feature_extractor(out)
    config = Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=0, **_TINY_WAV2VEC2)
    return _save_random(Wav2Vec2ForCTC, config, out, seed)


def build_model_pair(root: str | Path) -> dict[str, Path]:
    """Two different real models under `root` (multi-model tests): a seq2seq "summarizer" served
    through generate and a BERT "sentiment" classifier served through a pipeline."""
    from devtools.tiny_model import build_tiny_seq2seq

    root = Path(root)
    return {
        "summarizer": build_tiny_seq2seq(root / "summarizer", max_new_tokens=4),
        "sentiment": build_tiny_bert(root / "sentiment", "ForSequenceClassification", labels=["negative", "positive"]),
    }
