"""``EngineProcess``: an engine (engine.py) in its own process, supervised by the front end.

The front end starts ``python -m model_server.engine_main`` with one end of a
Unix socket pair and talks to it with framed messages (transport.py). Every
request waits on a future keyed by its id; the engine answers each id once.

When the engine process dies (a crash in native code, SIGKILL, the kernel's
out-of-memory killer), its end of the socket closes: the front end sees end
of file at once, answers every request in flight with 500 (on an asynchronous
endpoint SageMaker then records the failure), reports ``restarting`` on /ping
(503) and starts a new engine, which reports ready when its model is loaded.
An engine that dies before it was ever ready is not restarted (a model that
cannot load would crash-loop): /ping says ``failed`` with the reason. One that
served before and dies again while its replacement loads (memory still tight
after an out-of-memory kill, say) is started again after a pause that doubles,
MAX_RESTARTS times in a row at most; then /ping stays 503 ``failed``: the
container answers SageMaker's health check as unhealthy, which is SageMaker's
signal, not ours, to act on (how a container answers /ping:
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html#your-algorithms-inference-algo-ping-requests).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from . import transport
from .batching import BatchInfo
from .engine import Status, process_rss_bytes
from .errors import ModelError, ModelNotReady, ServerError
from .settings import Settings
from .user_code import HookResponse

log = logging.getLogger(__name__)
# How long a request whose write failed waits for the engine's exit to be noticed.
ENGINE_EXIT_WAIT_S = 30.0
# Restarts in a row without the model becoming ready again, and the pause before the second
# (doubling after it): the first restart is immediate, a crash-looping engine stops after the last.
MAX_RESTARTS = 3
RESTART_BACKOFF_S = 1.0


def describe_exit(returncode: int) -> str:
    """A process's end in words: "killed by SIGKILL (...)" or "exited with status 1"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        # SIGKILL that nobody here sent is most often the kernel's OOM killer (or a container limit).
        hint = " (the out-of-memory killer, or an operator)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with status {returncode}"


def rebuild_error(error: tuple[int, str, str]) -> ServerError:
    """The engine's ``(status, title, message)`` as the ServerError the app answers with."""
    status, title, message = error
    exc = ServerError(message)
    exc.status, exc.title = status, title
    return exc


class EngineProcess:
    def __init__(self, settings: Settings, *, name: str = "model", restart: bool = True) -> None:
        self.name = name
        self.settings = settings
        self.restart = restart
        self._status: Status = "loading"
        self._error: str | None = None
        self._task: str | None = None
        self._user_code = False
        self._ever_ready = False
        self._restarts = 0  # in a row, since the model was last ready
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self._changed = asyncio.Event()
        self._exited = asyncio.Event()
        self._reader_task: asyncio.Task[None] | None = None

    # -- what the front end reads ---------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def task(self) -> str | None:
        return self._task

    @property
    def user_code(self) -> bool:
        return self._user_code

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def memory_bytes(self) -> int | None:
        pid = self.pid
        return process_rss_bytes(pid) if pid is not None else None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self._spawn()

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        # The engine imports model_server the way the front end did (the image's PYTHONPATH, the
        # host's editable install): it inherits the environment and the working directory.
        # OMP_WAIT_POLICY is left to OpenMP (spin a while at each barrier, then sleep) unless the
        # operator sets it: on a dedicated instance, which is what SageMaker gives a container, the
        # spinning is what reaches the hardware's rate (a quiet 2-core machine: 85% of raw batched
        # generate at 16 clients, 43% with PASSIVE; docs/benchmarks.md). On a machine shared with
        # other busy processes spinning threads are preempted at every barrier and PASSIVE is the
        # right choice there (the test suite sets it).
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "model_server.engine_main", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        self._writer = writer
        self._exited.clear()
        transport.send(writer, {"type": "start", "settings": self.settings})
        log.info("engine started", extra={"event": "engine_start", "engine": self.name, "pid": self._proc.pid})
        self._reader_task = asyncio.get_running_loop().create_task(self._read(self._proc, reader))

    async def wait_ready(self, timeout: float | None = None) -> bool:
        async def settled() -> None:
            while self._status not in ("ready", "failed", "stopped"):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(settled(), timeout)
        except TimeoutError:
            return False
        return self._status == "ready"

    def _set_status(self, status: Status, error: str | None = None) -> None:
        self._status, self._error = status, error
        self._changed.set()

    async def _read(self, proc: subprocess.Popen[bytes], reader: asyncio.StreamReader) -> None:
        while True:
            try:
                message = await transport.receive(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if message.get("type") == "status":
                self._task, self._user_code = message["task"], message["user_code"]
                if message["status"] == "ready":
                    self._ever_ready = True
                    self._restarts = 0
                    log.info(
                        "engine ready",
                        extra={
                            "event": "engine_ready",
                            "engine": self.name,
                            "pid": proc.pid,
                            "device": message["device"],
                            "torch_threads": message["torch_threads"],
                        },
                    )
                self._set_status(message["status"], message["error"])
                continue
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
        returncode = await asyncio.get_running_loop().run_in_executor(None, proc.wait)
        self._exited.set()
        await self._engine_exited(returncode)

    async def _engine_exited(self, returncode: int) -> None:
        how = describe_exit(returncode)
        in_flight = list(self._pending.values())
        self._pending.clear()
        for future in in_flight:
            if not future.done():
                future.set_exception(
                    ModelError(
                        f"the inference engine process {how} while this request was in flight; it is being restarted"
                    )
                )
        if self._stopping:
            self._set_status("stopped")
            return
        if self._status == "failed":
            return  # the load failed and the engine said why: keep that reason
        if not (self._ever_ready and self.restart) or self._restarts >= MAX_RESTARTS:
            # Never ready, or died again on every restart: another start would crash-loop; /ping stays 503.
            again = f" ({self._restarts} restarts in a row)" if self._restarts else ""
            self._set_status("failed", f"the inference engine process {how} before the model was ready{again}")
            log.error(
                "engine died while loading",
                extra={
                    "event": "engine_exit",
                    "engine": self.name,
                    "returncode": returncode,
                    "in_flight": len(in_flight),
                },
            )
            return
        log.error(
            f"engine process {how}: restarting it",
            extra={"event": "engine_exit", "engine": self.name, "returncode": returncode, "in_flight": len(in_flight)},
        )
        delay = RESTART_BACKOFF_S * 2 ** (self._restarts - 1) if self._restarts else 0.0
        self._restarts += 1
        self._set_status("restarting", f"the inference engine process {how}; restarting")
        if delay:
            await asyncio.sleep(delay)
            if self.stopping:  # SIGTERM arrived during the pause: nothing to start
                self._set_status("stopped")
                return
        await self._spawn()

    async def stop(self, timeout: float) -> None:
        """After the front end drained: the engine finishes what it holds and exits; killed after ``timeout``."""
        self._stopping = True
        if self._proc is None or self._proc.returncode is not None:
            self._set_status("stopped")
            return
        if self._writer is not None:
            try:
                transport.send(self._writer, {"type": "stop"})
                await self._writer.drain()
            except ConnectionError:
                pass
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            log.warning("engine did not stop in time: killed", extra={"event": "engine_kill", "engine": self.name})
            self._proc.kill()
            await self._exited.wait()
        if self._reader_task is not None:
            await self._reader_task
        self._set_status("stopped")

    # -- requests -------------------------------------------------------------------------
    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._status != "ready" or self._writer is None:
            raise ModelNotReady(f"model is {self._status}" + (f": {self._error}" if self._error else ""))
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        writer = self._writer
        try:
            transport.send(writer, {**message, "id": request_id})
        except (ConnectionError, RuntimeError):
            # The engine died an instant ago and its socket is closed (asyncio raises RuntimeError
            # for a write on a closed transport) before the reader noticed: this request is pending,
            # so _engine_exited fails it with how the engine ended, like every other in flight.
            if not writer.is_closing():
                raise
        try:
            await writer.drain()  # backpressure for large bodies; returns at once for small ones
            reply = await future
        except asyncio.CancelledError:
            # The client went away: the engine drops it unless it already runs in a batch.
            if self._pending.pop(request_id, None) is not None and not writer.is_closing():
                transport.send(writer, {"type": "cancel", "id": request_id})
            raise
        except ConnectionError:
            # The engine's socket closed under this write: it is dying, and _engine_exited fails
            # this pending request with how it ended. Bounded, should a process outlive its socket.
            try:
                reply = await asyncio.wait_for(future, ENGINE_EXIT_WAIT_S)
            except TimeoutError:
                self._pending.pop(request_id, None)
                raise ModelError("the inference engine process closed its connection") from None
        if "error" in reply:
            raise rebuild_error(reply["error"])
        return reply

    async def infer(self, inputs: list[Any], parameters: dict[str, Any]) -> tuple[list[Any], BatchInfo]:
        reply = await self._call({"type": "infer", "inputs": inputs, "parameters": parameters})
        return reply["outputs"], BatchInfo(size=reply["size"], requests=reply["requests"])

    async def handle(self, body: bytes, content_type: str, accept: str | None, headers: dict[str, str]) -> HookResponse:
        reply = await self._call(
            {
                "type": "handle",
                "body": transport.out_of_band(body),
                "content_type": content_type,
                "accept": accept,
                "headers": headers,
            }
        )
        return HookResponse(transport.as_bytes(reply["body"]), reply["content_type"], reply["status"], reply["headers"])

    async def echo(self, payload: Any) -> Any:
        """A round trip through the engine's message loop, no model: what the hop itself costs."""
        return (await self._call({"type": "echo", "payload": payload}))["payload"]
