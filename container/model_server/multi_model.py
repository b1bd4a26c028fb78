"""Several models behind one server: a registry of engines, one engine (process) per loaded model.

Two ways to get there (docs/container.md, "Several models behind one endpoint"):

- **SageMaker multi-model endpoints** (``SAGEMAKER_MULTI_MODEL=true``, real-time, CPU): SageMaker
  downloads a model when a request names it (InvokeEndpoint's TargetModel) and tells the
  container to load it (``POST /models``), invokes it (``POST /models/{name}/invoke``) and unloads
  it (``DELETE /models/{name}``) - https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html.
  SageMaker owns eviction: when a load would not fit the container answers 507 and SageMaker
  unloads its least recently used model and retries. ``evict=False`` here.
- **Many models behind one async (GPU) endpoint**: the model artifact holds one ``<name>/``
  folder per model and each request names its model in ``X-Amzn-SageMaker-Custom-Attributes``
  (``model=<name>``; InvokeEndpointAsync forwards custom attributes, it has no TargetModel).
  The server loads a folder on its first request and, when the next one would not fit,
  unloads the least recently used idle model itself. ``evict=True`` here.

Memory accounting decides "fits": a model needs its weights' size on disk times
``WEIGHTS_FACTOR`` plus an engine's own overhead (the interpreter, torch and transformers:
measured from the engines already running, ``DEFAULT_ENGINE_OVERHEAD_BYTES`` before the first),
and the room is ``MODEL_SERVER_MODELS_MEMORY_BYTES`` minus what the loaded engines hold (their
RSS), or, unset, what the machine (or the container's cgroup limit) has available minus a
reserve. Unloading ends the model's engine process, which returns all of its memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine
from .errors import (
    BadRequest,
    Conflict,
    InsufficientStorage,
    NotFound,
    UnloadableModel,
)
from .settings import Settings

log = logging.getLogger(__name__)

# Weights in memory take about their size on disk (safetensors are mapped as stored); the factor
# covers what loading adds (buffers, the tokenizer, the first forward pass's activations).
WEIGHTS_FACTOR = 1.3
# An engine process before any model: Python, torch and transformers imported (RSS measured
# on this project's CPU engine: about 400-500 MiB). Replaced by the measured value once one runs.
DEFAULT_ENGINE_OVERHEAD_BYTES = 512 * 1024**2
# Without a configured budget, what stays free for the front end, the OS page cache and bursts.
RESERVE_BYTES = 256 * 1024**2
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".gguf")
# What SageMaker sends in X-Amzn-SageMaker-Custom-Attributes (entries separated by ';' or ',').
MODEL_ATTRIBUTE = "model"
# Folder and model names this server accepts: one path segment, no '..', nothing hidden.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_NAME_CHARS = 1024


def check_name(name: str) -> str:
    """`name` if it can be a `<name>/` folder of the artifact; else 404 (a request named a model there is not)."""
    if not name or len(name) > MAX_NAME_CHARS or name[0] in "._-" or not set(name) <= _NAME_CHARS:
        raise NotFound(
            f"model name {name[:80]!r} is not a model name here: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def check_load_name(name: str) -> str:
    """SageMaker's `model_name` for POST /models: an opaque key (mms-container-apis), one path segment
    (it is also the {model_name} of /models/{model_name}); else 400."""
    if (
        not name
        or len(name) > MAX_NAME_CHARS
        or "/" in name
        or name in (".", "..")
        or not (name.isascii() and name.isprintable())
    ):
        raise BadRequest(
            f"model_name {name[:80]!r}: 1-{MAX_NAME_CHARS} printable ASCII characters without '/' "
            "(it names the model in /models/{model_name})"
        )
    return name


def model_from_attributes(custom_attributes: str | None) -> str | None:
    """The `model=<name>` entry of X-Amzn-SageMaker-Custom-Attributes, or None."""
    if not custom_attributes:
        return None
    for entry in custom_attributes.replace(",", ";").split(";"):
        key, sep, value = entry.strip().partition("=")
        if sep and key.strip() == MODEL_ATTRIBUTE:
            return value.strip()
    return None


def is_model_dir(path: Path) -> bool:
    """A directory the loader serves: a saved model (config.json) or user code (code/inference.py)."""
    return (
        (path / "config.json").is_file()
        or (path / "code" / "inference.py").is_file()
        or (path / "model_index.json").is_file()
    )


def model_folders(model_dir: Path) -> list[str]:
    """The `<name>/` model folders of a multi-model artifact; [] when `model_dir` is one model."""
    if not model_dir.is_dir() or is_model_dir(model_dir):
        return []
    return sorted(
        child.name
        for child in model_dir.iterdir()
        if child.is_dir() and not child.name.startswith(".") and set(child.name) <= _NAME_CHARS and is_model_dir(child)
    )


def is_out_of_memory_error(error: str) -> bool:
    """An engine's load error that means memory ran out: CUDA or host OOM, or the kernel's OOM killer."""
    lowered = error.lower()
    return "out of memory" in lowered or "memoryerror" in lowered or "sigkill" in lowered


def weights_bytes(model_dir: Path) -> int:
    """Bytes of weight files under `model_dir` (every file's bytes when none is recognised)."""
    files = [p for p in model_dir.rglob("*") if p.is_file()]
    weights = [p for p in files if p.name.endswith(WEIGHT_SUFFIXES)]
    return sum(p.stat().st_size for p in (weights or files))


def available_memory_bytes() -> int | None:
    """What this container may still allocate: its cgroup's limit minus usage, else MemAvailable."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit set
            return max(0, int(limit) - usage)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class LoadedModel:
    name: str
    url: str
    engine: Engine
    weights_bytes: int
    last_used: float = field(default_factory=time.monotonic)
    active: int = 0  # requests being served: such a model is never evicted


EngineFactory = Callable[[Settings, str], Engine]


class ModelRegistry:
    """The loaded models, their engines and the memory they hold."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine_factory: EngineFactory,
        evict: bool,
        folders_dir: Path | None = None,
        available: Callable[[], int | None] = available_memory_bytes,
    ) -> None:
        self.settings = settings
        self.engine_factory = engine_factory
        self.evict = evict
        self.folders_dir = folders_dir
        self._available = available
        self._models: dict[str, LoadedModel] = {}
        self._loading: dict[str, asyncio.Future[LoadedModel]] = {}
        # One load or unload decision at a time: two loads that each fit alone may not fit together.
        self._memory_lock = asyncio.Lock()
        self._engine_overhead: int | None = None

    # ------------------------------------------------------------------ queries
    def names(self) -> list[str]:
        return sorted(self._models)

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            raise NotFound(f"model {name[:200]!r} is not loaded")
        return model

    def used_bytes(self) -> int:
        """Memory the loaded engines hold: their RSS (an estimate for an in-process engine)."""
        return sum(self._held(model) for model in self._models.values())

    def _held(self, model: LoadedModel) -> int:
        measured = model.engine.memory_bytes()
        return measured if measured is not None else self._need(model.weights_bytes)

    def _need(self, weights: int) -> int:
        overhead = self._engine_overhead if self._engine_overhead is not None else DEFAULT_ENGINE_OVERHEAD_BYTES
        return int(weights * WEIGHTS_FACTOR) + overhead

    def free_bytes(self) -> int | None:
        """Room for another model: the configured budget minus what engines hold, else what the machine has."""
        if self.settings.models_memory_bytes is not None:
            return self.settings.models_memory_bytes - self.used_bytes()
        available = self._available()
        return None if available is None else available - RESERVE_BYTES

    # ------------------------------------------------------------------ load / unload
    async def load(self, name: str, url: str) -> LoadedModel:
        """Load the model at directory `url` as `name`.

        409 if loaded, 404 if `url` is no model, 422 if it does not load, 507 if it does not fit.
        """
        check_load_name(name)
        if name in self._models or name in self._loading:
            raise Conflict(
                f"model {name!r} is already loaded" if name in self._models else f"model {name!r} is being loaded"
            )
        path = Path(url)
        if not path.is_dir():
            raise NotFound(f"url {url!r}: no such directory (the model artifact, unpacked)")
        if not is_model_dir(path):
            raise NotFound(
                f"url {url!r} holds no model: expected config.json (a saved Hugging Face model) or code/inference.py"
            )
        future: asyncio.Future[LoadedModel] = asyncio.get_running_loop().create_future()
        self._loading[name] = future
        try:
            model = await self._load(name, path)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._loading.pop(name, None)
        future.set_result(model)
        return model

    async def _load(self, name: str, path: Path) -> LoadedModel:
        weights = weights_bytes(path)
        async with self._memory_lock:
            await self._make_room(name, self._need(weights))
            while True:
                engine = self.engine_factory(self._settings_for(path), name)
                model = LoadedModel(name=name, url=str(path), engine=engine, weights_bytes=weights)
                await engine.start()
                if await engine.wait_ready():
                    break
                error = engine.error or f"engine {engine.status}"
                await engine.stop(5.0)
                out_of_memory = is_out_of_memory_error(error)
                idle = self._idle()
                if out_of_memory and self.evict and idle:
                    # What the estimate cannot see ran out (GPU memory: the accounting reads host RSS).
                    # Evicting is the way out here as it is for SageMaker on a multi-model endpoint.
                    log.info("evicting model", extra={"event": "model_evicted", "model": idle[0].name, "for": name})
                    await self._stop(idle[0])
                    continue
                if out_of_memory:
                    raise InsufficientStorage(f"model {name!r} ran out of memory while loading: {error}")
                raise UnloadableModel(f"model {name!r} at {str(path)!r} could not be loaded: {error}")
        self._models[name] = model
        measured = engine.memory_bytes()
        if measured is not None:
            # What an engine costs beyond its weights: the best predictor of the next load.
            overhead = max(0, measured - weights)
            self._engine_overhead = max(overhead, self._engine_overhead or 0)
        log.info(
            "model loaded",
            extra={"event": "model_loaded", "model": name, "rss_bytes": measured, "weights_bytes": weights},
        )
        return model

    async def _make_room(self, name: str, need: int) -> None:
        """Evict least recently used idle models until `need` fits (when evicting), else 507.

        With no model loaded the load is tried whatever the estimate says: there is nothing to
        unload, so a 507 could never be resolved (SageMaker would retry forever); a model that
        really does not fit then fails its own load (the engine is killed: 507).
        """
        while True:
            free = self.free_bytes()
            if free is None or need <= free or not self._models:
                return
            idle = self._idle()
            if not self.evict or not idle:
                loaded = ", ".join(self.names()) or "none"
                raise InsufficientStorage(
                    f"model {name!r} needs about {need // 2**20} MiB and {max(free, 0) // 2**20} MiB are free "
                    f"(loaded: {loaded}); unload a model first"
                )
            victim = idle[0]
            log.info("evicting model", extra={"event": "model_evicted", "model": victim.name, "for": name})
            await self._stop(victim)

    def _idle(self) -> list[LoadedModel]:
        """Loaded models serving no request, least recently used first: what may be evicted."""
        return sorted((m for m in self._models.values() if m.active == 0), key=lambda m: m.last_used)

    async def unload(self, name: str) -> None:
        """End the model's engine (in-flight requests finish first); its memory is free on return."""
        model = self.get(name)
        async with self._memory_lock:
            if self._models.get(name) is model:
                await self._stop(model)

    async def _stop(self, model: LoadedModel) -> None:
        self._models.pop(model.name, None)
        await model.engine.stop(max(1.0, self.settings.graceful_shutdown_s))
        log.info("model unloaded", extra={"event": "model_unloaded", "model": model.name})

    async def close(self) -> None:
        for model in list(self._models.values()):
            await self._stop(model)

    def _settings_for(self, path: Path) -> Settings:
        # The model is the directory; a hub model id would override it (the loader prefers HF_MODEL_ID).
        return self.settings.model_copy(update={"model_dir": path, "hf_model_id": None, "hf_model_revision": None})

    # ------------------------------------------------------------------ serving
    async def acquire(self, name: str) -> LoadedModel:
        """The model to serve a request with, loading its folder on demand (folders mode)."""
        model = self._models.get(name)
        if model is None and name in self._loading:
            model = await asyncio.shield(self._loading[name])
        if model is None:
            if self.folders_dir is None:
                raise NotFound(f"model {name[:200]!r} is not loaded")
            check_name(name)
            folder = self.folders_dir / name
            if name not in model_folders(self.folders_dir):
                known = ", ".join(model_folders(self.folders_dir)) or "none"
                raise NotFound(f"no model named {name!r} in this endpoint's artifact (models: {known})")
            try:
                loaded = await self.load(name, str(folder))
            except Conflict:  # a concurrent request started the same load
                found = self._models.get(name)
                loaded = found if found is not None else await asyncio.shield(self._loading[name])
            model = loaded
        model.active += 1
        model.last_used = time.monotonic()
        return model

    @staticmethod
    def release(model: LoadedModel) -> None:
        model.active -= 1
        model.last_used = time.monotonic()


def page(names: list[str], limit: int, token: str | None) -> tuple[list[str], str | None]:
    """One page of `names` (sorted) after `token` (the last name of the previous page)."""
    start = 0
    if token:
        start = next((i for i, n in enumerate(names) if n > token), len(names))
    chunk = names[start : start + limit]
    more = start + limit < len(names)
    return chunk, (chunk[-1] if more and chunk else None)
