"""Model loading in-process: model sources, task inference, the pipeline path, threads."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def test_seq2seq_model_dir_loads_the_generate_path(tiny_model_dir: Path) -> None:
    loaded = loader.load(Settings(model_dir=tiny_model_dir, warmup=False))
    assert isinstance(loaded.model, Seq2SeqModel)
    assert loaded.task == "text2text-generation" and loaded.device == "cpu" and loaded.user_code is None
    # HF_TASK overrides inference and picks the output key of the removed pipeline.
    summarizer = loader.load(Settings(model_dir=tiny_model_dir, hf_task="summarization", warmup=False)).model
    (out,) = summarizer.predict_batch(["a document"], {"max_new_tokens": 2})
    assert set(out) == {"summary_text"}


def test_text_classification_goes_through_a_batched_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model_dir = with_tokenizer(tiny_model_dir, tmp_path / "classifier")
    config = DistilBertConfig(vocab_size=512, dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=2,
                              pad_token_id=1, architectures=["DistilBertForSequenceClassification"])
    DistilBertForSequenceClassification(config).save_pretrained(model_dir)

    loaded = loader.load(Settings(model_dir=model_dir))  # task inferred, warm-up included
    assert loaded.task == "text-classification" and isinstance(loaded.model, PipelineModel)
    outputs = loaded.model.predict_batch(["good", "a longer and different input"], {})
    assert len(outputs) == 2 and all(o["label"] in ("LABEL_0", "LABEL_1") for o in outputs)


def test_text_generation_pads_on_the_left(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = with_tokenizer(tiny_model_dir, tmp_path / "gpt")
    config = GPT2Config(vocab_size=512, n_embd=32, n_layer=1, n_head=2, n_positions=64,
                        bos_token_id=0, eos_token_id=2, architectures=["GPT2LMHeadModel"])
    GPT2LMHeadModel(config).save_pretrained(model_dir)

    model = loader.load(Settings(model_dir=model_dir)).model
    assert model.task == "text-generation" and model.pipe.tokenizer.padding_side == "left"
    outputs = model.predict_batch(["short", "a much longer prompt than the other"], {"max_new_tokens": 3})
    assert len(outputs) == 2 and all("generated_text" in o[0] for o in outputs)


def test_hf_model_id_is_downloaded_with_revision_and_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = {}

    def fake_snapshot_download(**kwargs):
        calls.update(kwargs)
        return str(tmp_path)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    settings = Settings(hf_model_id="org/model", hf_model_revision="v1", hf_api_token="hf_x")
    assert loader.resolve_model_dir(settings) == tmp_path
    assert calls == {"repo_id": "org/model", "revision": "v1", "token": "hf_x"}


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
