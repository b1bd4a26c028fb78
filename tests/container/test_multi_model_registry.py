"""The model registry's decisions in-process (fast): fit, eviction order, in-flight protection,
concurrent first requests, pagination. Engines here only report a size; the real engine
processes and their memory are tested over HTTP in test_multi_model.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest
from model_server.errors import BadRequest, Conflict, InsufficientStorage, NotFound
from model_server.multi_model import ModelRegistry, model_folders, model_from_attributes, page
from model_server.settings import Settings

MIB = 2**20


class SizedEngine:
    """An engine that loads after a short wait and holds `rss` bytes."""

    started: ClassVar[list[str]] = []

    def __init__(self, settings: Settings, name: str, rss: int) -> None:
        self.name, self.settings, self._rss = name, settings, rss
        self.status = "loading"
        self.error = None
        self.task = "text-classification"
        self.user_code = False
        self.pid = None

    def memory_bytes(self) -> int | None:
        return self._rss if self.status == "ready" else None

    async def start(self) -> None:
        type(self).started.append(self.name)

    async def wait_ready(self, timeout: float | None = None) -> bool:
        await asyncio.sleep(0.01)
        self.status = "ready"
        return True

    async def stop(self, timeout: float) -> None:
        self.status = "stopped"


def _artifact(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text("{}")
        (root / name / "model.safetensors").write_bytes(b"\0" * 1024)
    return root


def _registry(root: Path, budget: int, rss: int = 100 * MIB, evict: bool = True) -> ModelRegistry:
    settings = Settings(model_dir=root, models_memory_bytes=budget)
    return ModelRegistry(
        settings, engine_factory=lambda s, name: SizedEngine(s, name, rss), evict=evict, folders_dir=root
    )


def test_folders_are_found_and_a_single_model_dir_is_not_folders(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "artifact", "b", "a")
    (root / ".hidden").mkdir()
    (root / "notes").mkdir()  # no model inside: not a model folder
    assert model_folders(root) == ["a", "b"]
    (root / "config.json").write_text("{}")
    assert model_folders(root) == []  # a saved model at the top: one model, as before


def test_least_recently_used_idle_model_is_evicted_first(tmp_path: Path) -> None:
    async def run() -> None:
        registry = _registry(_artifact(tmp_path / "art", "a", "b", "c"), budget=250 * MIB)
        a = await registry.acquire("a")
        registry.release(a)
        b = await registry.acquire("b")
        registry.release(b)
        again = await registry.acquire("a")  # a is now the most recently used
        registry.release(again)
        await registry.acquire("c")  # 3 x 100 MiB > 250 MiB: one must go, and it is b
        assert registry.names() == ["a", "c"]

    asyncio.run(run())


def test_a_model_serving_a_request_is_never_evicted(tmp_path: Path) -> None:
    async def run() -> None:
        registry = _registry(_artifact(tmp_path / "art", "a", "b"), budget=150 * MIB)
        busy = await registry.acquire("a")  # not released: a request in flight
        with pytest.raises(InsufficientStorage, match="'b' needs about"):
            await registry.acquire("b")
        assert registry.names() == ["a"]
        registry.release(busy)
        await registry.acquire("b")
        assert registry.names() == ["b"]

    asyncio.run(run())


def test_multi_model_endpoint_mode_answers_507_and_leaves_eviction_to_sagemaker(tmp_path: Path) -> None:
    async def run() -> None:
        root = _artifact(tmp_path / "art", "a", "b")
        registry = _registry(root, budget=150 * MIB, evict=False)
        await registry.load("a", str(root / "a"))
        with pytest.raises(InsufficientStorage):
            await registry.load("b", str(root / "b"))
        with pytest.raises(Conflict):
            await registry.load("a", str(root / "a"))
        with pytest.raises(BadRequest):
            await registry.load("../a", str(root / "a"))
        with pytest.raises(NotFound):
            await registry.load("c", str(root / "missing"))
        await registry.unload("a")
        await registry.load("b", str(root / "b"))
        assert registry.names() == ["b"]

    asyncio.run(run())


def test_concurrent_first_requests_load_a_model_once(tmp_path: Path) -> None:
    async def run() -> None:
        SizedEngine.started.clear()
        registry = _registry(_artifact(tmp_path / "art", "a"), budget=1000 * MIB)
        models = await asyncio.gather(*(registry.acquire("a") for _ in range(5)))
        assert SizedEngine.started == ["a"]
        assert len({id(m) for m in models}) == 1 and models[0].active == 5

    asyncio.run(run())


def test_unknown_and_invalid_names_are_404_listing_the_models(tmp_path: Path) -> None:
    async def run() -> None:
        registry = _registry(_artifact(tmp_path / "art", "a", "b"), budget=1000 * MIB)
        with pytest.raises(NotFound, match=r"models: a, b"):
            await registry.acquire("c")
        with pytest.raises(NotFound):
            await registry.acquire("../a")

    asyncio.run(run())


def test_pages_cover_every_model_once() -> None:
    names = [f"m{i:02d}" for i in range(7)]
    seen, token = [], None
    while True:
        chunk, token = page(names, 3, token)
        seen += chunk
        if token is None:
            break
    assert seen == names


def test_model_attribute_among_other_custom_attributes() -> None:
    assert model_from_attributes("trace=1; model=b") == "b"
    assert model_from_attributes("model = a , x=1") == "a"
    assert model_from_attributes("models=a") is None
    assert model_from_attributes(None) is None


class GpuBoundEngine(SizedEngine):
    """Loads only while fewer than `capacity` other engines are ready: the GPU the RSS estimate cannot see."""

    ready_engines: ClassVar[list[GpuBoundEngine]] = []
    capacity = 1

    async def wait_ready(self, timeout: float | None = None) -> bool:
        alive = [e for e in type(self).ready_engines if e.status == "ready"]
        if len(alive) >= self.capacity:
            self.status, self.error = (
                "failed",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB",
            )
            return False
        self.status = "ready"
        type(self).ready_engines.append(self)
        return True


def test_a_load_that_runs_out_of_gpu_memory_evicts_and_retries(tmp_path: Path) -> None:
    async def run() -> None:
        GpuBoundEngine.ready_engines.clear()
        root = _artifact(tmp_path / "art", "a", "b")
        settings = Settings(model_dir=root, models_memory_bytes=10_000 * MIB)  # host memory is plenty
        registry = ModelRegistry(
            settings, engine_factory=lambda s, name: GpuBoundEngine(s, name, 10 * MIB), evict=True, folders_dir=root
        )
        registry.release(await registry.acquire("a"))
        model = await registry.acquire("b")  # CUDA OOM with a loaded: a is unloaded, b loads on the retry
        assert model.engine.status == "ready" and registry.names() == ["b"]

        # On a multi-model endpoint SageMaker evicts: the container answers 507.
        GpuBoundEngine.ready_engines.clear()
        endpoint = ModelRegistry(
            settings, engine_factory=lambda s, name: GpuBoundEngine(s, name, 10 * MIB), evict=False, folders_dir=None
        )
        await endpoint.load("a", str(root / "a"))
        with pytest.raises(InsufficientStorage, match="CUDA out of memory"):
            await endpoint.load("b", str(root / "b"))

    asyncio.run(run())


def test_sagemakers_model_name_is_an_opaque_key(tmp_path: Path) -> None:
    """mms-container-apis: model_name is opaque, not necessarily TargetModel; one path segment."""

    async def run() -> None:
        root = _artifact(tmp_path / "art", "a")
        registry = _registry(root, budget=1000 * MIB, evict=False)
        opaque = "a1b2c3d4e5f6@v=2~x:y"
        await registry.load(opaque, str(root / "a"))
        assert registry.get(opaque).url == str(root / "a")
        for bad in ("", "..", "x/y", "caf\u00e9", "tab\there"):
            with pytest.raises(BadRequest):
                await registry.load(bad, str(root / "a"))

    asyncio.run(run())
