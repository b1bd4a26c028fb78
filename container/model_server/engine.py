"""The inference engine interface: what an HTTP front end needs from "the model".

The server is two processes (see docs/container.md, "Front end and engine"):

- the **front end** (``app.py``, this process) speaks HTTP only: the SageMaker
  contract, ``/ping`` (always fast: it never waits on the model), admission
  (size limits, content types, readiness) and request decoding / response
  encoding;
- the **engine** (``engine_main.py``, a child process) owns the model, the
  dynamic batcher and every torch thread, and runs user code
  (``code/inference.py``) with the toolkit's semantics.

On CPU, one Python process doing both loses to the GIL and to core contention:
the event loop parsing requests and the inference thread's Python between
kernels take turns, and torch's OpenMP threads stall whenever the loop takes a
core (docs/benchmarks.md). Multi Model Server, Triton and vLLM's V1 engine
separate the two for the same reason.

A front end may own any number of engines (one per loaded model: unloading a
model is ending its process, which frees its memory for sure). Each engine
implements :class:`Engine`; the front end starts, routes to and stops them:

    engine = EngineProcess(settings, name="model-a")   # settings.model_dir is its model
    await engine.start()                  # returns at once; status "loading"
    engine.status                         # loading | ready | failed | restarting | stopped
    engine.error                          # why, when failed / restarting (else None)
    engine.task, engine.user_code         # known once ready
    engine.pid, engine.memory_bytes()     # the engine's process and its RSS (None in-process)
    await engine.wait_ready(timeout)      # True when ready, False when failed or timed out
    outputs, info = await engine.infer(inputs, parameters)   # validated, then batched
    hook = await engine.handle(body, content_type, accept, headers)  # user code path
    await engine.stop(timeout)            # finishes in-flight work, then ends the engine

``infer`` / ``handle`` raise :class:`~model_server.errors.ServerError`: the
request's own 4xx (validated in the engine, before the request joins a batch),
500 / 507 from the model, 503 when the engine is not ready, and 500 for every
request in flight when the engine process dies (crash, SIGKILL, the kernel's
OOM killer). After such a death a ready engine restarts by itself (status
``restarting`` until the new process is ready); an engine that never became
ready is ``failed`` and stays so (a broken model would crash-loop).

Two implementations: :class:`~model_server.engine_process.EngineProcess` (the
served one: ``python -m model_server serve``) and
:class:`~model_server.engine_thread.ThreadEngine` (the same engine in the
front end's process, on a thread: in-process tests and tools).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from .batching import BatchInfo
from .user_code import HookResponse

Status = Literal["loading", "ready", "failed", "restarting", "stopped"]


class Engine(Protocol):
    name: str

    @property
    def status(self) -> Status: ...

    @property
    def error(self) -> str | None: ...

    @property
    def task(self) -> str | None: ...

    @property
    def user_code(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    def memory_bytes(self) -> int | None: ...

    async def start(self) -> None: ...

    async def wait_ready(self, timeout: float | None = None) -> bool: ...

    async def infer(self, inputs: list[Any], parameters: dict[str, Any]) -> tuple[list[Any], BatchInfo]: ...

    async def handle(
        self, body: bytes, content_type: str, accept: str | None, headers: dict[str, str]
    ) -> HookResponse: ...

    async def stop(self, timeout: float) -> None: ...


def process_rss_bytes(pid: int) -> int | None:
    """Resident memory of a process, from /proc (None when it is gone or /proc is absent)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")
