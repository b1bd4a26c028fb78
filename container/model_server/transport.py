"""Framed messages between the front end and an engine, over a Unix socket pair.

A message is any picklable object, pickled with protocol 5 so that large
binary payloads (a user script's raw body, numpy arrays from ``.npy`` or audio
bodies) travel *out of band*: they are not copied into the pickle stream but
written to the socket from their own memory, after it. One frame:

    header  !II  (pickle length, number of out-of-band buffers)
    lengths !Q   one per buffer
    pickle       the message, with references to the buffers
    buffers      raw bytes, each exactly as long as announced

Why a socket pair and not shared memory: the messages are small (a request's
decoded JSON, a batch's outputs: a few hundred bytes), and for those a write
and a read on a local socket cost tens of microseconds (``make bench`` prints
the round trip). For a large body ``make bench`` measures both ways to another
process ending as ``bytes`` there: 1 MiB took about the same through a socket
pair as written once into /dev/shm and mapped by the receiver (0.53 vs 0.52 ms
median, docs/benchmarks.md), since shared memory pays for creating, mapping and
removing a segment per request and still needs a wake-up message. Pickle is
safe here: both ends are this server, connected by a socketpair nobody else can
reach.

Copies: a small message is pickled once and written in one call. A large
buffer is not copied into the pickle; when the socket cannot take it at once,
asyncio's stream buffers hold the rest (a copy on each side), which the
measurement above includes.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("!II")
_LENGTH = struct.Struct("!Q")


def encode(message: Any) -> list[bytes | memoryview]:
    """One frame, as parts to write in order (large buffers are not joined: no copy)."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    head = _HEADER.pack(len(data), len(raws)) + b"".join(_LENGTH.pack(raw.nbytes) for raw in raws)
    if not raws:
        return [head + data]  # the common case: one small write
    return [head, data, *raws]


def send(writer: asyncio.StreamWriter, message: Any) -> None:
    """Queue one message on ``writer`` (no await: a frame is never interleaved with another)."""
    for part in encode(message):
        writer.write(part)


async def receive(reader: asyncio.StreamReader) -> Any:
    """The next message; ``asyncio.IncompleteReadError`` when the other end is gone."""
    message, _ = await receive_sized(reader)
    return message


async def receive_sized(reader: asyncio.StreamReader) -> tuple[Any, int]:
    """The next message and the bytes its frame took (large ones are worth a ``release_memory``)."""
    data_length, count = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    lengths = [_LENGTH.unpack(await reader.readexactly(_LENGTH.size))[0] for _ in range(count)]
    data = await reader.readexactly(data_length)
    buffers = [await reader.readexactly(length) for length in lengths]
    # The peer is this server's own engine process over a private socket pair, never a client.
    return pickle.loads(data, buffers=buffers), data_length + sum(lengths)  # noqa: S301 - see above


def out_of_band(payload: bytes) -> pickle.PickleBuffer:
    """Mark ``payload`` to travel after the pickle, from its own memory (arrives as ``bytes``)."""
    return pickle.PickleBuffer(payload)


def as_bytes(payload: Any) -> bytes:
    """A payload sent with :func:`out_of_band`, as the ``bytes`` it was (no copy when it already is)."""
    return payload if isinstance(payload, bytes) else bytes(payload)
