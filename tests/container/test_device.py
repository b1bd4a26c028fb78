"""MODEL_SERVER_DEVICE=cuda never falls back to the CPU: /ping says 503 and one log line says why.

The stack sets MODEL_SERVER_DEVICE=cuda on GPU instance types. With a driver
older than torch's CUDA (SageMaker's default on ml.g4dn / ml.g5 is 470, CUDA
11.4: https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html)
torch reports no GPU; these tests make torch say so by patching
``torch.cuda.is_available`` the way it really fails (False plus a warning).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytest
import torch
from model_server import loader
from model_server.app import create_app
from model_server.settings import Settings
from starlette.testclient import TestClient

# The warning torch emits when the driver is too old for its CUDA build.
DRIVER_TOO_OLD = "CUDA initialization: The NVIDIA driver on your system is too old (found version 11040)."


def no_gpu() -> bool:
    warnings.warn(DRIVER_TOO_OLD, UserWarning, stacklevel=2)
    return False


@pytest.fixture
def cuda_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", no_gpu)


def test_cuda_requested_but_unavailable_fails_the_load_with_one_clear_line(
    cuda_unavailable: None, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = loader.ModelState()
    with caplog.at_level(logging.INFO, logger="model_server"):
        loader._load_into(Settings(model_dir=tiny_model_dir, device="cuda", warmup=False), state)

    assert state.status == "failed" and state.loaded is None
    assert "torch.cuda.is_available() is False" in state.error
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0]
    assert line.event == "device_unavailable" and line.exc_info is None
    message = line.getMessage()
    # What an operator needs: torch's version and CUDA build, what torch said, and the way out.
    assert f"torch {torch.__version__}" in message
    assert "built for CUDA" in message and "NVIDIA driver:" in message
    assert DRIVER_TOO_OLD in message
    assert "InferenceAmiVersion" in message and "Refusing to fall back to the CPU" in message
    # Never "model ready" on the CPU.
    assert not [r for r in caplog.records if getattr(r, "event", None) == "model_ready"]


def test_ping_is_503_with_the_reason_and_invocations_are_refused(cuda_unavailable: None, tiny_model_dir: Path) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, device="cuda", warmup=False))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/ping").json().get("status") == "loading" and time.monotonic() < deadline:
            time.sleep(0.02)
        ping = client.get("/ping")
        assert ping.status_code == 503
        assert ping.json()["status"] == "failed" and "torch.cuda.is_available() is False" in ping.json()["error"]
        invoked = client.post("/invocations", json={"inputs": "hello"})
        assert invoked.status_code == 503 and "CUDA" in invoked.json()["message"]


def test_cpu_device_never_asks_for_a_gpu(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    def must_not_be_called() -> bool:
        raise AssertionError("MODEL_SERVER_DEVICE=cpu must not probe CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", must_not_be_called)
    loaded = loader.load(Settings(model_dir=tiny_model_dir, device="cpu", warmup=False))
    assert loaded.device == "cpu"


def test_device_choice(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader._pick_device(Settings(device="cuda"), torch) == "cuda"
    assert loader._pick_device(Settings(device="auto"), torch) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", no_gpu)
    # auto is for `make serve` on a laptop: CPU is a fine answer there, but a GPU build
    # that cannot use its GPU says why.
    with caplog.at_level(logging.WARNING, logger="model_server"):
        assert loader._pick_device(Settings(device="auto"), torch) == "cpu"
    (warned,) = [r for r in caplog.records if getattr(r, "event", None) == "cuda_unusable"]
    assert DRIVER_TOO_OLD in warned.getMessage()
    # A CPU-only torch (no reason given) on a machine without GPU: nothing to warn about.
    caplog.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loader._pick_device(Settings(device="auto"), torch) == "cpu"
    assert not [r for r in caplog.records if getattr(r, "event", None) == "cuda_unusable"]
    monkeypatch.setattr(torch.cuda, "is_available", no_gpu)
    with pytest.raises(loader.DeviceUnavailable, match="MODEL_SERVER_DEVICE=cuda"):
        loader._pick_device(Settings(device="cuda"), torch)


def test_unknown_device_is_rejected_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_SERVER_DEVICE", "gpu")
    with pytest.raises(ValueError, match="device"):
        Settings()


def test_nvidia_driver_version_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "version"
    # The first line of /proc/driver/nvidia/version on a driver 470 host.
    proc.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024\n"
        "GCC version:  gcc version 7.3.1 20180712 (Red Hat 7.3.1-17) (GCC)\n"
    )
    assert loader.nvidia_driver_version(proc) == "470.256.02"
    assert "none visible" in loader.nvidia_driver_version(tmp_path / "absent")


def test_a_server_process_told_cuda_on_a_machine_without_gpu_stays_unhealthy(
    tiny_model_dir: Path, start_server
) -> None:
    """The real thing: this machine's torch sees no GPU, as on a host whose driver is too old."""
    from tests.processes import wait_for

    server = start_server(tiny_model_dir, MODEL_SERVER_DEVICE="cuda")
    wait_for(
        lambda: server.is_listening() and server.ping().json().get("status") == "failed",
        timeout=90,
        what="the load to fail",
    )
    ping = server.ping()
    assert ping.status_code == 503 and "torch.cuda.is_available() is False" in ping.json()["error"]
    assert server.client.post("/invocations", json={"inputs": "hello"}).status_code == 503
    (line,) = server.log_events("device_unavailable")
    assert line["level"] == "ERROR" and "Refusing to fall back to the CPU" in line["message"]
    assert not server.log_events("model_ready")
    assert server.proc.poll() is None  # alive and unhealthy: SageMaker decides (and rolls back)
