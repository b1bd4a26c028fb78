"""The engine in the front end's own process, on a thread (``Engine`` without a process).

This is the server as it was before the engine got its own process: one
process, the model on an inference thread. ``create_app`` uses it when no
engine is given, which is what in-process tests and tools want (Starlette's
TestClient, a patched torch); ``python -m model_server serve`` always runs
``EngineProcess``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .batching import BatchInfo
from .engine import Status, process_rss_bytes
from .engine_core import EngineCore
from .loader import ModelState
from .settings import Settings
from .user_code import HookResponse


class ThreadEngine:
    def __init__(self, settings: Settings, state: ModelState | None = None, *, name: str = "model") -> None:
        self.name = name
        self._core = EngineCore(settings, state)
        self.state = self._core.state
        self._stopped = False

    @property
    def status(self) -> Status:
        return "stopped" if self._stopped else self.state.status  # type: ignore[return-value]

    @property
    def error(self) -> str | None:
        return self.state.error

    @property
    def task(self) -> str | None:
        return self.state.loaded.task if self.state.loaded else None

    @property
    def user_code(self) -> bool:
        return bool(self.state.loaded and self.state.loaded.user_code is not None)

    @property
    def pid(self) -> int | None:
        return None

    def memory_bytes(self) -> int | None:
        return process_rss_bytes(os.getpid())

    async def start(self) -> None:
        self._core.start()

    async def wait_ready(self, timeout: float | None = None) -> bool:
        await asyncio.get_running_loop().run_in_executor(None, self.state.wait, timeout)
        return self.state.status == "ready"

    async def infer(self, inputs: list[Any], parameters: dict[str, Any]) -> tuple[list[Any], BatchInfo]:
        return await self._core.infer(inputs, parameters)

    async def handle(self, body: bytes, content_type: str, accept: str | None, headers: dict[str, str]) -> HookResponse:
        return await self._core.handle(body, content_type, accept, headers)

    async def stop(self, timeout: float) -> None:
        # The front end has drained its requests: the batcher has nothing left to run.
        self._stopped = True
        await self._core.close()
