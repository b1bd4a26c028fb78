"""What runs inside an engine: the loaded model and its dynamic batcher.

Shared by the engine process (``engine_main.py``) and the in-process engine
(``engine_thread.py``), so that both validate, batch and run user code alike.
"""

from __future__ import annotations

from typing import Any

from .batching import BatchInfo, DynamicBatcher
from .errors import ModelNotReady
from .loader import LoadedModel, ModelState, start_loading
from .settings import Settings
from .user_code import HookResponse


class EngineCore:
    def __init__(self, settings: Settings, state: ModelState | None = None) -> None:
        self.settings = settings
        self.state = state or ModelState()
        self.batcher = DynamicBatcher(
            self._predict, max_batch_size=settings.max_batch_size, max_wait_s=settings.max_batch_wait_ms / 1000
        )

    def start(self) -> None:
        """Start the batcher (needs the running event loop) and load the model on its own thread."""
        self.batcher.start()
        start_loading(self.settings, self.state)

    def _loaded(self) -> LoadedModel:
        loaded = self.state.loaded
        if self.state.status != "ready" or loaded is None:
            raise ModelNotReady(f"model is {self.state.status}" + (f": {self.state.error}" if self.state.error else ""))
        return loaded

    def _predict(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        return self._loaded().model.predict_batch(inputs, parameters)  # type: ignore[no-any-return]

    async def infer(self, inputs: list[Any], parameters: dict[str, Any]) -> tuple[list[Any], BatchInfo]:
        # Checked before joining a batch: a bad request never occupies the model.
        self._loaded().model.validate(inputs, parameters)
        return await self.batcher.submit(inputs, parameters)

    async def handle(self, body: bytes, content_type: str, accept: str | None, headers: dict[str, str]) -> HookResponse:
        loaded = self._loaded()
        user_code = loaded.user_code
        if user_code is None:
            raise RuntimeError("handle() serves user scripts only; the model has none")
        # On the inference thread, between batches: the toolkit runs one request at a time.
        response: HookResponse = await self.batcher.run_exclusive(
            lambda: user_code.handle(loaded.model, body, content_type, accept, headers)
        )
        return response

    async def close(self) -> None:
        await self.batcher.close()
