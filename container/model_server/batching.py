"""Dynamic batching: concurrent requests become one model call.

A padded batch of 16 costs a CPU little more than one input, so throughput
under concurrency comes from running requests together. Requests are collected
on the event loop and each batch runs on ONE dedicated inference thread (torch
releases the GIL inside its kernels), so the loop keeps answering /ping while
the model computes.

How long to wait for company is the whole trade-off. A fixed wait taxes a lone
request with the full wait every time. Here the batcher waits only as long as
recent traffic suggests more requests are coming. When a batch finishes it
notes the concurrency it saw: the batch's requests plus those that queued up
meanwhile. The next batch then waits until that many requests are queued,
never longer than ``max_wait_s``. At concurrency 1 that is 1 and a request
runs at once; at concurrency 16 the batcher waits the few milliseconds the
clients of the last batch need to come back, instead of settling into two
half batches of 8 that alternate (measured: a third less throughput). A wait
that runs out lowers the expectation to what actually arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .codec import parameters_key
from .errors import from_model_exception

log = logging.getLogger(__name__)

Predict = Callable[[list[Any], dict[str, Any]], list[Any]]

# After the target is reached, one short pause lets requests whose bytes have
# already arrived finish parsing and join, so a batch of 15 + 1 straggler
# does not settle into a 15 / 1 rhythm.
_STRAGGLER_S = 0.001
_HISTORY = 4


@dataclass(frozen=True)
class BatchInfo:
    size: int  # inputs in the model call
    requests: int


@dataclass
class _Request:
    inputs: list[Any]
    parameters: dict[str, Any]
    future: asyncio.Future[tuple[list[Any], BatchInfo]]
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    def __init__(self, predict: Predict, *, max_batch_size: int, max_wait_s: float) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        # One thread: the model is not shared between threads, and batches run
        # one after another anyway (they would only fight over the same cores).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._queues: dict[str, deque[_Request]] = {}
        self._wakeup = asyncio.Event()
        self._recent: deque[int] = deque([1], maxlen=_HISTORY)
        self._idle_since = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    # -- public API (event loop) -------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._collect_forever(), name="batcher")

    async def close(self) -> None:
        """Called after the server has drained in-flight requests."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, inputs: list[Any], parameters: dict[str, Any]) -> tuple[list[Any], BatchInfo]:
        """Queue one request's inputs; resolve to its own outputs and the batch it ran in."""
        future: asyncio.Future[tuple[list[Any], BatchInfo]] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(parameters_key(parameters), deque()).append(_Request(inputs, parameters, future))
        self._wakeup.set()
        return await future

    async def run_exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the inference thread, between batches (user code path)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # -- the collector --------------------------------------------------------------------
    async def _collect_forever(self) -> None:
        while True:
            key = self._oldest_key()
            if key is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather(key)
            batch = self._take(key)
            if batch:
                await self._run(batch)
            self._idle_since = time.monotonic()

    def _oldest_key(self) -> str | None:
        for key in [k for k, q in self._queues.items() if not q]:
            del self._queues[key]
        if not self._queues:
            return None
        # Parameter groups are served oldest head first: no group starves.
        return min(self._queues, key=lambda k: self._queues[k][0].enqueued)

    async def _gather(self, key: str) -> None:
        queue = self._queues[key]
        target = min(max(self._recent), self.max_batch_size)
        if len(queue) >= target:
            if target > 1:
                await asyncio.sleep(_STRAGGLER_S)
            return
        # The wait counts from when the worker became free: a request that
        # queued behind a running batch has waited already, but its company
        # (the clients of that batch) only resubmit once it finishes.
        deadline = max(queue[0].enqueued, self._idle_since) + self.max_wait_s
        while len(queue) < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Fewer arrived than expected: expect that many next time.
                self._recent.clear()
                self._recent.append(len(queue))
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
        if target > 1:
            await asyncio.sleep(_STRAGGLER_S)

    def _take(self, key: str) -> list[_Request]:
        queue = self._queues[key]
        batch: list[_Request] = []
        size = 0
        while queue:
            request = queue[0]
            if request.future.done():  # the client went away
                queue.popleft()
                continue
            # The first request always goes, even if larger than a batch
            # (it is then run in chunks); others only while they fit.
            if batch and size + len(request.inputs) > self.max_batch_size:
                break
            queue.popleft()
            batch.append(request)
            size += len(request.inputs)
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        inputs = [x for request in batch for x in request.inputs]
        parameters = batch[0].parameters
        info = BatchInfo(size=len(inputs), requests=len(batch))
        started = time.monotonic()
        log.debug("batch start", extra={"event": "batch_start", "batch_size": info.size, "requests": info.requests})
        try:
            outputs = await loop.run_in_executor(self._executor, self._predict_chunked, inputs, parameters)
            error: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - delivered to the requests below
            outputs, error = [], exc
        latency = time.monotonic() - started
        # Concurrency seen: this batch's requests plus those that queued meanwhile.
        self._recent.append(len(batch) + len(self._queues.get(parameters_key(parameters), ())))
        log.info(
            "batch",
            extra={
                "event": "batch",
                "batch_size": info.size,
                "requests": info.requests,
                "latency_ms": round(latency * 1000, 2),
                "queue_wait_ms": round((started - batch[0].enqueued) * 1000, 2),
                "ok": error is None,
            },
        )
        if error is None:
            offset = 0
            for request in batch:
                n = len(request.inputs)
                _resolve(request, (outputs[offset : offset + n], info))
                offset += n
            return
        if len(batch) == 1:
            _reject(batch[0], error)
            return
        # One bad input must not fail its batch-mates: run each request alone
        # so every request gets its own result or its own error.
        log.warning(
            "batch failed, retrying its requests one by one", extra={"event": "batch_retry", "error": repr(error)}
        )
        for request in batch:
            try:
                alone = await loop.run_in_executor(
                    self._executor, self._predict_chunked, request.inputs, request.parameters
                )
            except Exception as exc:  # noqa: BLE001
                _reject(request, exc)
            else:
                _resolve(request, (alone, BatchInfo(size=len(request.inputs), requests=1)))

    def _predict_chunked(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        outputs: list[Any] = []
        for start in range(0, len(inputs), self.max_batch_size):
            chunk = inputs[start : start + self.max_batch_size]
            outputs.extend(self._predict(chunk, parameters))
        return outputs


def _resolve(request: _Request, value: tuple[list[Any], BatchInfo]) -> None:
    if not request.future.done():
        request.future.set_result(value)


def _reject(request: _Request, exc: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(from_model_exception(exc))
