"""Request bodies of any size up to the deployment's limit, with bounded memory.

An asynchronous endpoint takes payloads up to 1 GB
(https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html), so
``MODEL_SERVER_MAX_REQUEST_BYTES`` is set that high there. Three things keep
such a body from costing gigabytes of RSS for good:

- while it arrives, a body is spooled: in memory up to ``SPOOL_MEMORY_BYTES``,
  then to a temporary file, so slow or concurrent uploads hold no memory and
  the body exists once (not once as chunks and again joined);
- the model sees a bounded prefix of long texts (``truncation.py``);
- after a large request, freed memory is handed back to the operating system
  (``release_memory``): glibc keeps freed heap pages mapped, so without it
  the process's RSS stays at its high-water mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import tempfile
from functools import cache

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .errors import PayloadTooLarge

log = logging.getLogger(__name__)

# Bodies up to this size stay in memory (most requests: a few KB of JSON).
SPOOL_MEMORY_BYTES = 1024 * 1024
# Requests with bodies at least this large release memory afterwards. Trimming
# costs a few milliseconds; after small requests there is nothing to return.
RELEASE_AFTER_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed ``limit`` bytes.

    The body's size is left in ``request.state.body_bytes`` (the app releases
    memory after large requests).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds the limit of {limit} bytes (MODEL_SERVER_MAX_REQUEST_BYTES)"
        )
    # Chunked bodies have no Content-Length: count while reading.
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, prefix="model-server-body-") as spool:
        async for chunk in request.stream():
            size += len(chunk)
            request.state.body_bytes = size
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes (MODEL_SERVER_MAX_REQUEST_BYTES)")
            spool.write(chunk)
        spool.seek(0)
        if size <= SPOOL_MEMORY_BYTES:
            return spool.read()
        # A file read of hundreds of MB would stall the event loop (and /ping);
        # file reads release the GIL, so a worker thread keeps the loop free.
        return await run_in_threadpool(spool.read)


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def release_memory() -> bool:
    """Return freed heap memory to the operating system; True if anything was returned.

    Large Python objects are mmap-ed and unmapped when freed, but glibc raises
    its mmap threshold after such a free (up to 32 MB), so the next large
    buffers (the decoded body, tokenizer and tensor allocations) come from
    the heap arenas, whose freed pages stay resident until ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    released = bool(trim(0))
    log.debug("memory released", extra={"event": "malloc_trim", "released": released})
    return released
