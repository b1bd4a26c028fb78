"""docs/container.md's multi-model walkthrough, run as a user runs it: `SAGEMAKER_MULTI_MODEL=true
make serve` (no MODEL_DIR) starts with no model, then its curl lines (with -f: an HTTP error
fails the line) load, list, invoke and unload a model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from tests.processes import run_captured

from .commands import REPO_ROOT
from .test_walkthrough import documented, make_serve, run_documented

DEMO_MODEL = REPO_ROOT / ".build" / "tiny-model"


def _get(port: int, path: str) -> Any:
    """The JSON body of GET ``path`` on the model server (what the documented curl lines print)."""
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5, trust_env=False).json()


def test_make_serve_multi_model_starts_empty_and_the_documented_curl_lines_work(tmp_path: Path) -> None:
    if not (DEMO_MODEL / "config.json").is_file():  # what a plain `make serve` builds first
        run_captured([sys.executable, "-m", "devtools.tiny_model", str(DEMO_MODEL)], timeout=300, check=True)
    with make_serve(tmp_path, timeout=120, SAGEMAKER_MULTI_MODEL="true") as (serve, port, env):
        assert _get(port, "/ping")["models"] == 0
        assert _get(port, "/models") == {"models": []}
        assert "serving the tiny demo model" not in "".join(serve.lines)  # no model chosen for the user
        commands = documented(("docs/container.md",), "localhost:8081")
        assert len(commands) >= 4 and any("DELETE" in line for _, line in commands), commands
        run_documented(commands, {r"localhost:8081\b": f"127.0.0.1:{port}"}, tmp_path, env)
        # The walkthrough ends with the model unloaded.
        assert _get(port, "/models") == {"models": []}
