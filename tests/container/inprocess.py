"""The real server app, in this process, over HTTP semantics (Starlette's TestClient).

The subprocess servers in conftest.py cost several seconds each (a fresh
Python importing torch). The toolkit-compatibility tests need a dozen models
and scripts, so they run the same ``create_app`` in-process: same routing,
same loader, same batcher, same codecs, only no socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from model_server.app import create_app
from model_server.loader import ModelState
from model_server.settings import Settings
from starlette.testclient import TestClient


class InProcessServer:
    def __init__(self, client: TestClient, state: ModelState) -> None:
        self.client = client
        self.state = state

    @property
    def model(self) -> Any:
        assert self.state.loaded is not None
        return self.state.loaded.model

    def post(
        self,
        body: bytes | str = b"",
        content_type: str | None = "application/json",
        accept: str | None = None,
        **headers: str,
    ) -> Any:
        sent = dict(headers)
        if content_type is not None:
            sent["Content-Type"] = content_type
        if accept is not None:
            sent["Accept"] = accept
        return self.client.post("/invocations", content=body, headers=sent)


@contextmanager
def serve(model_dir: Path, timeout: float = 60, **settings: Any) -> Iterator[InProcessServer]:
    """Start the app on ``model_dir`` and wait until loading finished (healthy or failed)."""
    config = Settings(_env_file=None, model_dir=model_dir, warmup=False, max_batch_wait_ms=5, **settings)
    state = ModelState()
    with TestClient(create_app(config, state), raise_server_exceptions=True) as client:
        deadline = time.monotonic() + timeout
        while state.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.02)
        yield InProcessServer(client, state)
