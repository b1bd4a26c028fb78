"""Model loading in-process: model sources, task inference, the pipeline path, threads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from model_server import loader
from model_server.pipeline_model import PipelineModel
from model_server.seq2seq import Seq2SeqModel
from model_server.settings import Settings


def with_tokenizer(tiny_model_dir: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, target / name)
    return target


def tiny_classifier(tiny_model_dir: Path, target: Path, **config: Any) -> Path:
    """A random-weight two-label DistilBERT classifier with the tiny seq2seq model's tokenizer."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model_dir = with_tokenizer(tiny_model_dir, target)
    distilbert = DistilBertConfig(
        **{"vocab_size": 512, "dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64, "num_labels": 2},
        pad_token_id=1,
        architectures=["DistilBertForSequenceClassification"],
        **config,
    )
    DistilBertForSequenceClassification(distilbert).save_pretrained(model_dir)
    return model_dir


def test_seq2seq_model_dir_loads_the_generate_path(tiny_model_dir: Path) -> None:
    loaded = loader.load(Settings(model_dir=tiny_model_dir, warmup=False))
    assert isinstance(loaded.model, Seq2SeqModel)
    assert loaded.task == "text2text-generation" and loaded.device == "cpu" and loaded.user_code is None
    # HF_TASK overrides inference and picks the output key of the removed pipeline.
    summarizer = loader.load(Settings(model_dir=tiny_model_dir, hf_task="summarization", warmup=False)).model
    (out,) = summarizer.predict_batch(["a document"], {"max_new_tokens": 2})
    assert set(out) == {"summary_text"}


def test_text_classification_goes_through_a_batched_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tiny_classifier(tiny_model_dir, tmp_path / "classifier")

    loaded = loader.load(Settings(model_dir=model_dir))  # task inferred, warm-up included
    assert loaded.task == "text-classification" and isinstance(loaded.model, PipelineModel)
    outputs = loaded.model.predict_batch(["good", "a longer and different input"], {})
    assert len(outputs) == 2 and all(o["label"] in ("LABEL_0", "LABEL_1") for o in outputs)


def test_text_generation_pads_on_the_left(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = with_tokenizer(tiny_model_dir, tmp_path / "gpt")
    config = GPT2Config(
        vocab_size=512,
        n_embd=32,
        n_layer=1,
        n_head=2,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=2,
        architectures=["GPT2LMHeadModel"],
    )
    GPT2LMHeadModel(config).save_pretrained(model_dir)

    model = loader.load(Settings(model_dir=model_dir)).model
    assert model.task == "text-generation" and model.pipe.tokenizer.padding_side == "left"
    outputs = model.predict_batch(["short", "a much longer prompt than the other"], {"max_new_tokens": 3})
    assert len(outputs) == 2 and all("generated_text" in o[0] for o in outputs)


# A hub repo as `huggingface_hub.list_repo_files` lists it: the same weights in
# five formats, plus docs, ONNX exports and a user script (file names as real
# repos such as distilbert-base-uncased and t5-small carry them).
HUB_LISTING = [
    ".gitattributes",
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tf_model.h5",
    "flax_model.msgpack",
    "rust_model.ot",
    "model.fp16.safetensors",
    "onnx/model.onnx",
    "onnx/config.json",
    "openvino/openvino_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "spiece.model",
    "training_args.bin",
    "code/inference.py",
    "code/requirements.txt",
    "images/diagram.png",
]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """huggingface_hub's listing and download, recorded; the listing is set per test."""
    import huggingface_hub

    hub: dict = {"listing": HUB_LISTING, "listed": [], "downloaded": []}

    def list_repo_files(repo_id, *, revision=None, repo_type=None, token=None):
        hub["listed"].append({"repo_id": repo_id, "revision": revision, "token": token})
        return list(hub["listing"])

    def snapshot_download(**kwargs):
        hub["downloaded"].append(kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return hub


def test_hf_model_id_downloads_only_what_loading_needs_at_the_revision(fake_hub: dict, tmp_path: Path) -> None:
    settings = Settings(hf_model_id="org/model", hf_model_revision="a" * 40, hf_api_token="hf_x")
    assert loader.resolve_model_dir(settings) == tmp_path
    assert fake_hub["listed"] == [{"repo_id": "org/model", "revision": "a" * 40, "token": "hf_x"}]
    (call,) = fake_hub["downloaded"]
    assert {k: call[k] for k in ("repo_id", "revision", "token")} == {
        "repo_id": "org/model",
        "revision": "a" * 40,
        "token": "hf_x",
    }
    # One weight format (safetensors), configs, tokenizer files and code/: no TF / Flax / Rust / ONNX /
    # fp16 variant copies, no pickle twin, no docs or images, no training leftovers.
    assert sorted(call["allow_patterns"]) == [
        "code/inference.py",
        "code/requirements.txt",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "spiece.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]


def test_an_unreachable_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """What EnableNetworkIsolation or a VPC without internet access looks like from inside."""
    import httpx
    import huggingface_hub

    def unreachable(repo_id, *, revision=None, repo_type=None, token=None):
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", unreachable)
    with pytest.raises(loader.ModelSourceError) as raised:
        loader.resolve_model_dir(Settings(hf_model_id="org/model", hf_model_revision="v1"))
    message = str(raised.value)
    assert "HF_MODEL_ID='org/model'" in message and "HF_MODEL_REVISION='v1'" in message
    assert "name resolution" in message and "EnableNetworkIsolation" in message and "MODEL_DIR" in message


def test_hub_offline_mode_is_reported_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real huggingface_hub under HF_HUB_OFFLINE=1: it refuses before any network call.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(loader.ModelSourceError, match=r"OfflineModeIsEnabled.*HF_HUB_OFFLINE"):
        loader.resolve_model_dir(Settings(hf_model_id="org/model"))


def test_a_replaced_hfapi_method_is_the_listing_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    downloaded = []
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "list_repo_files",
        lambda self, repo_id, *, revision=None, repo_type=None, token=None: HUB_LISTING,
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: downloaded.append(kw) or str(tmp_path))
    loader.resolve_model_dir(Settings(hf_model_id="org/model"))
    assert "model.safetensors" in downloaded[0]["allow_patterns"]
    assert "tf_model.h5" not in downloaded[0]["allow_patterns"]


def test_the_patterns_select_the_same_files_in_huggingface_hub_itself() -> None:
    """snapshot_download filters with huggingface_hub's own matcher: check the patterns against it."""
    from huggingface_hub.utils import filter_repo_objects

    wanted = loader.files_to_download(HUB_LISTING)
    assert sorted(filter_repo_objects(HUB_LISTING, allow_patterns=wanted)) == sorted(wanted)


@pytest.mark.parametrize(
    ("listing", "weights"),
    [
        # Sharded safetensors: every shard and the index, not the pickle shards.
        (
            [
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "pytorch_model-00001-of-00002.bin",
                "pytorch_model-00002-of-00002.bin",
                "pytorch_model.bin.index.json",
            ],
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"],
        ),
        # Only PyTorch pickles (older repos): those, sharded or not.
        (["config.json", "pytorch_model.bin", "tf_model.h5"], ["pytorch_model.bin"]),
        (
            [
                "config.json",
                "pytorch_model-00001-of-00003.bin",
                "pytorch_model-00002-of-00003.bin",
                "pytorch_model-00003-of-00003.bin",
                "pytorch_model.bin.index.json",
                "training_args.bin",
            ],
            [
                "pytorch_model-00001-of-00003.bin",
                "pytorch_model-00002-of-00003.bin",
                "pytorch_model-00003-of-00003.bin",
                "pytorch_model.bin.index.json",
            ],
        ),
    ],
)
def test_one_weight_format_is_chosen(listing: list[str], weights: list[str]) -> None:
    chosen = loader.files_to_download(listing)
    assert sorted(f for f in chosen if f != "config.json") == weights


def test_a_repo_without_loadable_weights_is_a_clear_error(fake_hub: dict) -> None:
    fake_hub["listing"] = ["config.json", "tf_model.h5", "flax_model.msgpack", "README.md"]
    with pytest.raises(FileNotFoundError, match=r"HF_MODEL_ID has no weights.*tf_model\.h5"):
        loader.resolve_model_dir(Settings(hf_model_id="org/tf-only"))
    assert fake_hub["downloaded"] == []  # nothing fetched for nothing


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="HF_MODEL_ID"):
        loader.resolve_model_dir(Settings(model_dir=tmp_path / "absent"))


def test_cpu_threads_leave_a_cpu_for_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 2)
    assert loader.cpu_threads(None, torch_default=2) == 1
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 16)
    assert loader.cpu_threads(None, torch_default=8) == 8  # torch's physical-core default is kept
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 1)
    assert loader.cpu_threads(None, torch_default=1) == 1
    assert loader.cpu_threads(3, torch_default=8) == 3
