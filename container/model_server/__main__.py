"""``python -m model_server serve``: what ``docker run IMAGE serve`` runs.

The listening socket is opened before anything heavy is imported: SageMaker
expects the container to accept connections within 250 ms of start, and
importing the web stack alone takes longer than that (torch, much longer).
Connections that arrive meanwhile wait in the kernel's accept queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from . import contract  # plain data: keeps the listen-before-import promise

USAGE = "usage: python -m model_server serve"


def _listen() -> socket.socket:
    # Read the two variables by hand here; Settings validates them again below.
    host = os.environ.get(contract.HOST, contract.DEFAULT_HOST)
    port = int(os.environ.get(contract.BIND_TO_PORT, str(contract.DEFAULT_PORT)))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# glibc's mallopt parameter number for M_MMAP_THRESHOLD (malloc.h).
_M_MMAP_THRESHOLD = -3
_LARGE_BUFFER_BYTES = 1024 * 1024


def _map_large_buffers() -> None:
    """Give every allocation of 1 MiB or more its own mapping, returned to the OS when freed.

    The front end's large allocations are request bodies, decoded texts and
    their frames to the engine, all short-lived. glibc raises its mmap
    threshold after freeing a large mapping (up to 32 MiB), so after one 50 MB
    body, concurrent 10 MB bodies came from the heap and 20-50 MiB stayed
    resident after them (measured with tests/container/test_memory.py's load);
    a fixed threshold (setting it turns the adjustment off) keeps RSS at idle.
    See mallopt(3), M_MMAP_THRESHOLD.
    """
    import ctypes
    import ctypes.util

    # Not glibc (musl, macOS): nothing to tune.
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(_M_MMAP_THRESHOLD, _LARGE_BUFFER_BYTES)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # SageMaker passes "serve"; no argument is accepted too, for `make serve`.
    if args not in ([], ["serve"]):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        sock = _listen()
    except (ValueError, OverflowError, OSError) as exc:
        port = os.environ.get(contract.BIND_TO_PORT, str(contract.DEFAULT_PORT))
        print(
            f"cannot listen on {os.environ.get(contract.HOST, contract.DEFAULT_HOST)}:{port} "
            f"({contract.BIND_TO_PORT}={port!r}): {exc}",
            file=sys.stderr,
        )
        return 2

    _map_large_buffers()
    import uvicorn
    from pydantic import ValidationError

    from .logs import configure_logging
    from .multi_model_app import serving_app
    from .settings import Settings, describe_errors

    try:
        settings = Settings()
    except ValidationError as exc:
        # Exit instead of serving with a setting nobody chose: the container's
        # log names the variable, its value and what is allowed.
        print(describe_errors(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    import logging

    logging.getLogger(__name__).info("starting", extra={"event": "start", "settings": settings.public_dict()})
    config = uvicorn.Config(
        # The model, its batcher and torch's threads live in an engine process (engine.py):
        # this process only speaks HTTP, so /ping never waits behind inference. Several models
        # (SAGEMAKER_MULTI_MODEL=true, or MODEL_DIR of <name>/ folders): one engine per model.
        serving_app(settings),
        log_config=None,  # logs.py already set up JSON logging
        access_log=settings.access_log,
        # Whole seconds (uvicorn's type), rounded down: the drain must end before SageMaker's SIGKILL.
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        lifespan="on",
        # The kernel's keep-alive default (5 s) is shorter than clients' pools:
        # a pooled connection closed under a client causes spurious errors.
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    # uvicorn drains on SIGTERM, then re-raises the signal with the handler
    # that was installed before it started; with the default one the process
    # would die with status 143 after a clean drain. Ignoring it at that point
    # lets main() return 0, which is what a graceful stop should report.
    # SIGINT likewise: Ctrl-C in `make serve` drains and exits quietly instead
    # of ending in a KeyboardInterrupt traceback.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
