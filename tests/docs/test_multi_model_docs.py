"""docs/container.md's multi-model walkthrough, run as a user runs it: `SAGEMAKER_MULTI_MODEL=true
make serve` (no MODEL_DIR) starts with no model, then its curl lines (with -f: an HTTP error
fails the line) load, list, invoke and unload a model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from local_stack.processes import free_port

from .commands import REPO_ROOT
from .test_walkthrough import MAKE, _Background, _user_env, documented, run_documented

DEMO_MODEL = REPO_ROOT / ".build" / "tiny-model"


def test_make_serve_multi_model_starts_empty_and_the_documented_curl_lines_work(tmp_path: Path) -> None:
    if not (DEMO_MODEL / "config.json").is_file():  # what a plain `make serve` builds first
        subprocess.run(
            [sys.executable, "-m", "devtools.tiny_model", str(DEMO_MODEL)],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
    port = free_port()
    env = _user_env(tmp_path, SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MULTI_MODEL="true")
    for name in ("MODEL_DIR", "HF_MODEL_ID", "HF_TASK"):
        env.pop(name, None)
    serve = _Background([*MAKE, "serve"], env)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert serve.process.poll() is None and time.monotonic() < deadline, "".join(serve.lines)
            try:
                ping = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2, trust_env=False)
                if ping.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ping.json()["models"] == 0
        assert httpx.get(f"http://127.0.0.1:{port}/models", timeout=5, trust_env=False).json() == {"models": []}
        assert "serving the tiny demo model" not in "".join(serve.lines)  # no model chosen for the user
        commands = documented(("docs/container.md",), "localhost:8081")
        assert len(commands) >= 4 and any("DELETE" in line for _, line in commands), commands
        run_documented(commands, {r"localhost:8081\b": f"127.0.0.1:{port}"}, tmp_path, env)
        # The walkthrough ends with the model unloaded.
        assert httpx.get(f"http://127.0.0.1:{port}/models", timeout=5, trust_env=False).json() == {"models": []}
    finally:
        serve.stop()
