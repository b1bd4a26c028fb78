"""``python -m model_server.engine_main FD``: the engine process (see engine.py).

Started by ``EngineProcess`` with one end of a Unix socket pair as file
descriptor ``FD``. The first message is ``{"type": "start", "settings": ...}``;
the engine then loads the model (reporting ``status`` messages: ready or
failed) and serves ``infer`` / ``handle`` / ``echo`` messages concurrently,
each answered by a message with the same ``id``. ``cancel`` drops a request
whose client went away (if it has not joined a batch yet). ``stop``, or the
socket closing, ends it after the requests it holds are answered.

SIGTERM and SIGINT are ignored: the front end decides when the engine stops
(after it has drained its own requests), and Ctrl-C in ``make serve`` reaches
the whole process group. If the front end dies, even by SIGKILL, the socket
closes and the engine ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from . import transport
from .bodies import RELEASE_AFTER_BYTES, release_memory
from .engine_core import EngineCore
from .errors import ServerError, from_model_exception
from .logs import configure_logging
from .settings import Settings

log = logging.getLogger(__name__)

# How long the requests still running when the engine is told to stop may take.
_FINISH_S = 25.0


def engine_settings(settings: Settings, torch_default_threads: int) -> Settings:
    """The engine's settings: every core for torch on CPU unless MODEL_SERVER_TORCH_THREADS says otherwise.

    In one process the event loop needed a core of its own (loader.cpu_threads);
    in the engine process nothing but inference runs, and the front end's
    parsing happens in another process, so torch's default (one thread per
    physical core) is the right default.
    """
    if settings.torch_threads is not None:
        return settings
    return settings.model_copy(update={"torch_threads": max(1, torch_default_threads)})


def error_reply(exc: BaseException) -> tuple[int, str, str]:
    error = exc if isinstance(exc, ServerError) else from_model_exception(exc)
    return error.status, error.title, error.message


class EngineServer:
    """The engine process's message loop around one ``EngineCore``."""

    def __init__(self, core: EngineCore, writer: asyncio.StreamWriter) -> None:
        self.core = core
        self.writer = writer
        self.running: dict[int, asyncio.Task[None]] = {}

    def reply(self, message: dict[str, Any]) -> None:
        try:
            transport.send(self.writer, message)
        except Exception as exc:
            log.exception("reply could not be sent")
            transport.send(
                self.writer,
                {
                    "id": message["id"],
                    "error": (
                        500,
                        "Model Error",
                        f"the model's output could not be sent to the front end: {type(exc).__name__}: {exc}",
                    ),
                },
            )

    async def report_status(self) -> None:
        state = self.core.state
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not settled.done():
                settled.set_result(None)

        def wait() -> None:
            state.wait()
            # RuntimeError: the engine stopped before the load finished.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle)

        # A daemon thread, not the loop's executor: a stop during a long load (a hub download)
        # must not wait for the load to end.
        threading.Thread(target=wait, name="load-watch", daemon=True).start()
        await settled
        loaded = state.loaded
        self.reply(
            {
                "id": None,
                "type": "status",
                "status": state.status,
                "error": state.error,
                "task": loaded.task if loaded else None,
                "user_code": bool(loaded and loaded.user_code is not None),
                "device": loaded.device if loaded else None,
                "torch_threads": sys.modules["torch"].get_num_threads(),
            }
        )

    def dispatch(self, message: dict[str, Any], size: int) -> None:
        if message["type"] == "cancel":
            task = self.running.get(message["id"])
            if task is not None:
                task.cancel()
            return
        task = asyncio.get_running_loop().create_task(self.serve_one(message))
        self.running[message["id"]] = task
        task.add_done_callback(lambda _: self.running.pop(message["id"], None))
        if size >= RELEASE_AFTER_BYTES:
            # As the front end does after a large body: hand freed heap pages back once it is answered.
            task.add_done_callback(lambda _: asyncio.get_running_loop().run_in_executor(None, release_memory))

    async def serve_one(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": message["id"]}
        try:
            if message["type"] == "infer":
                outputs, info = await self.core.infer(message["inputs"], message["parameters"])
                reply.update(outputs=outputs, size=info.size, requests=info.requests)
            elif message["type"] == "handle":
                hook = await self.core.handle(
                    transport.as_bytes(message["body"]), message["content_type"], message["accept"], message["headers"]
                )
                reply.update(
                    status=hook.status,
                    content_type=hook.content_type,
                    headers=hook.headers,
                    body=transport.out_of_band(hook.body),
                )
            elif message["type"] == "echo":
                reply["payload"] = message["payload"]
            else:
                raise ValueError(f"unknown message type {message['type']!r}")
        except asyncio.CancelledError:
            return  # the front end's client went away: nobody waits for a reply
        except Exception as exc:  # noqa: BLE001 - every request gets an answer
            reply["error"] = error_reply(exc)
        self.reply(reply)


async def serve(sock: socket.socket) -> int:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    start = await transport.receive(reader)
    configure_logging(start["settings"].log_level)
    import torch  # the engine's own process: importing here delays nobody's /ping

    settings = engine_settings(start["settings"], torch.get_num_threads())
    core = EngineCore(settings)
    core.start()
    server = EngineServer(core, writer)
    status = asyncio.get_running_loop().create_task(server.report_status())
    try:
        while True:
            try:
                message, size = await transport.receive_sized(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                log.info("front end gone, engine stopping", extra={"event": "engine_orphaned"})
                break
            if message["type"] == "stop":
                break
            server.dispatch(message, size)
    finally:
        status.cancel()
        if server.running:
            await asyncio.wait(list(server.running.values()), timeout=_FINISH_S)
        await core.close()
        try:
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print(
            "usage: python -m model_server.engine_main FD (started by the model server, not by hand)", file=sys.stderr
        )
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    code = asyncio.run(serve(socket.socket(fileno=int(args[0]))))
    # Every request is answered and the socket closed: skip the interpreter's teardown, which
    # with torch and a model loaded took seconds of SageMaker's 30 s under load (and would wait
    # for a load still running on its thread).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
