"""A local model directory becomes the same tarball - and the same asset hash - every time."""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Capture, Template

from app_config import parse_environment
from app_config.environments import ENVIRONMENTS
from inference_constructs.model_package import pack_model_directory
from stacks.async_inference_stack import AsyncInferenceStack
from tests.infra.conftest import ROOT, cdk_context


def _model_dir(root: Path) -> Path:
    model = root / "model"
    (model / "code").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bart"}')
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (model / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return model_dir\n")
    return model


def _touch_everything(root: Path, when: float) -> None:
    for path in [root, *root.rglob("*")]:
        os.utime(path, (when, when))


def test_same_content_same_bytes_regardless_of_mtime(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    first = pack_model_directory(model, tmp_path / "a")
    _touch_everything(model, time.time() + 3600)
    second = pack_model_directory(model, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert first.name == second.name


def test_changed_content_changes_the_tarball(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    first = pack_model_directory(model, tmp_path / "out")
    (model / "config.json").write_text('{"model_type": "t5"}')
    assert pack_model_directory(model, tmp_path / "out") != first


def test_tarball_unpacks_to_the_directory(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    with tarfile.open(pack_model_directory(model, tmp_path / "out")) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        assert {"config.json", "weights.bin", "code", "code/inference.py"} <= set(names)
        assert all(member.mtime == 0 and member.uid == 0 for member in tar.getmembers())
        assert tar.extractfile("weights.bin").read() == (model / "weights.bin").read_bytes()


def test_symlinks_are_refused(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    (model / "link").symlink_to(model / "config.json")
    with pytest.raises(ValueError, match="symbolic links are not packed"):
        pack_model_directory(model, tmp_path / "out")


def _model_data_url(model: Path, outdir: Path) -> object:
    raw = {**ENVIRONMENTS["dev"], "model": {"kind": "local", "path": str(model), "task": "summarization"}}
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    stack = AsyncInferenceStack(
        app, "LocalModel", config=parse_environment(raw), container_dir=ROOT / "container", build_dir=outdir / "build"
    )
    url = Capture()
    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"ModelDataUrl": url, "Environment": {"HF_TASK": "summarization"}}},
    )
    return url.as_object()


def test_local_model_gives_the_same_asset_hash_twice(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    first = _model_data_url(model, tmp_path / "synth1")
    _touch_everything(model, time.time() + 7200)
    second = _model_data_url(model, tmp_path / "synth2")
    assert first == second
    assert ".gz" in str(first)
    (model / "weights.bin").write_bytes(b"retrained")
    assert _model_data_url(model, tmp_path / "synth3") != first
