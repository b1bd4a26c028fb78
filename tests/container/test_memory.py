"""Bounded memory and time per request: texts cut before tokenizing, bodies spooled, memory released.

The server-level test sends a 50 MB text to a real server process with the
default body limit and checks its resident memory (/proc/PID/status VmRSS)
returns under 1.5x its idle level.
"""

from __future__ import annotations

import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from model_server import bodies, loader
from model_server.errors import ServerError
from model_server.settings import Settings
from model_server.truncation import bounded_prefix, max_input_tokens
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.process_memory import rss_bytes

from .conftest import ServerProcess

WORDS = ["alpha", "beta", "gamma", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "42", "!?", "é"]


def prose(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


class RecordingTokenizer:
    """A real tokenizer that remembers the longest text it was asked to tokenize."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.longest = 0

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        texts = text if isinstance(text, list) else [text]
        self.longest = max([self.longest, *(len(t) for t in texts)])
        return self._tokenizer(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize(
    "text",
    [prose(60_000), "x" * 400_000, "é" * 150_000, "word " * 80_000, prose(60_000, seed=1).replace(" ", "\n")],
    ids=["prose", "one-long-word", "multibyte", "repetitive", "lines"],
)
def test_the_prefix_tokenizes_to_the_same_first_tokens_as_the_whole_text(tokenizer: Any, text: str) -> None:
    prefix = bounded_prefix(text, tokenizer, 256)
    assert len(prefix) < len(text) // 10
    whole = tokenizer(text, truncation=True, max_length=256)["input_ids"]
    cut = tokenizer(prefix, truncation=True, max_length=256)["input_ids"]
    assert cut == whole and len(cut) == 256


def test_short_texts_are_not_tokenized_twice(tokenizer: Any) -> None:
    recording = RecordingTokenizer(tokenizer)
    text = prose(50)
    assert bounded_prefix(text, recording, 256) is text
    assert recording.longest == 0


def test_a_9_mb_text_never_reaches_the_tokenizer_whole(tiny_model_dir: Path) -> None:
    model = loader.load(Settings(model_dir=tiny_model_dir, warmup=False)).model
    recording = RecordingTokenizer(model.tokenizer)
    model.tokenizer = recording
    huge = prose(1_600_000)  # about 9.6 MB
    (out,) = model.predict_batch([huge], {"max_new_tokens": 2})
    # The model reads at most max_input_tokens tokens; the tokenizer saw a few KB, not megabytes.
    assert recording.longest < 50_000, recording.longest
    model.tokenizer = recording._tokenizer
    (reference,) = model.predict_batch([huge[:50_000]], {"max_new_tokens": 2})
    assert out == reference


def test_pipeline_tasks_cut_long_texts_before_tokenizing_too(tiny_model_dir: Path, tmp_path: Path) -> None:
    from .test_loader import tiny_classifier

    model_dir = tiny_classifier(tiny_model_dir, tmp_path / "classifier", max_position_embeddings=256)
    model = loader.load(Settings(model_dir=model_dir, warmup=False)).model
    recording = RecordingTokenizer(model.pipe.tokenizer)
    model.pipe.tokenizer = recording
    huge = prose(400_000)
    (out,) = model.predict_batch([huge], {"truncation": True})
    assert recording.longest < 20_000, recording.longest
    (reference,) = model.predict_batch([huge[:20_000]], {"truncation": True})
    assert out == reference


def test_max_input_tokens_ignores_the_no_limit_sentinel() -> None:
    class Tok:
        model_max_length = int(1e30)

    class Config:
        max_position_embeddings = 512

    assert max_input_tokens(Tok(), Config()) == 512
    Tok.model_max_length = 128
    assert max_input_tokens(Tok(), Config()) == 128
    assert max_input_tokens(object(), object()) == 1024


def test_large_bodies_are_spooled_to_a_file_while_they_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    spools: list[Any] = []

    class Recording(tempfile.SpooledTemporaryFile[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            spools.append(self)

        def __exit__(self, *exc: Any) -> None:
            # _rolled is CPython's own rolled-to-disk flag; typeshed leaves private attributes out.
            self.was_on_disk = self._rolled  # type: ignore[attr-defined]
            super().__exit__(*exc)

    monkeypatch.setattr(bodies.tempfile, "SpooledTemporaryFile", Recording)

    async def echo(request: Request) -> Response:
        try:
            body = await bodies.read_body(request, limit=8 * 1024 * 1024)
        except ServerError as exc:
            return Response(exc.message, status_code=exc.status)
        return Response(body, headers={"x-size": str(request.state.body_bytes)})

    client = TestClient(Starlette(routes=[Route("/", echo, methods=["POST"])]))
    small, large = b"s" * 1000, bytes(range(256)) * (3 * 1024 * 1024 // 256)
    for body, on_disk in ((small, False), (large, True)):
        response = client.post("/", content=body)
        assert response.content == body and response.headers["x-size"] == str(len(body))
        assert spools[-1].was_on_disk is on_disk

    # Chunked (no Content-Length) above the limit: 413 while reading, naming the setting.
    def chunks():
        for _ in range(9):
            yield b"c" * (1024 * 1024)

    too_big = client.post("/", content=chunks())
    assert too_big.status_code == 413 and "MODEL_SERVER_MAX_REQUEST_BYTES" in too_big.text
    declared = client.post("/", content=b"d" * (8 * 1024 * 1024 + 1))
    assert declared.status_code == 413 and f"{8 * 1024 * 1024 + 1} bytes exceeds the limit" in declared.text


def test_release_memory_returns_freed_heap_pages(tmp_path: Path) -> None:
    """In a fresh process: heap blocks freed between survivors stay resident until malloc_trim."""
    if bodies._malloc_trim() is None:
        pytest.skip("not a glibc system: no malloc_trim")
    script = tmp_path / "trim.py"
    script.write_text(
        "from pathlib import Path\n"
        "from model_server import bodies\n"
        "def rss(): return int(next(l for l in Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmRSS:')).split()[1]) * 1024\n"
        "blocks = [bytearray(8192) for _ in range(20_000)]\n"  # 160 MB of 8 KB heap blocks
        "survivors = blocks[::50]\n"  # every 50th stays: glibc cannot shrink the heap from its top
        "del blocks\n"
        "freed = rss()\n"
        "released = bodies.release_memory()\n"
        "print(freed, rss(), released)\n"
    )
    import subprocess
    import sys

    from .conftest import CONTAINER

    out = subprocess.run(
        [sys.executable, str(script)],
        env={"PYTHONPATH": str(CONTAINER)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    freed, trimmed, released = int(out[0]), int(out[1]), out[2]
    assert released == "True"
    assert freed - trimmed > 100 * 2**20, f"RSS {freed / 2**20:.0f} MiB -> {trimmed / 2**20:.0f} MiB"


def settle_rss(pid: int, below: float, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    rss = rss_bytes(pid)
    while rss >= below and time.monotonic() < deadline:
        time.sleep(0.1)
        rss = rss_bytes(pid)
    return rss


@pytest.mark.slow
def test_a_50_mb_text_is_served_and_memory_returns_near_idle(tiny_model_dir: Path, start_server) -> None:
    # The default body limit (no MODEL_SERVER_MAX_REQUEST_BYTES): SageMaker's async maximum.
    server: ServerProcess = start_server(tiny_model_dir, MODEL_SERVER_TORCH_THREADS="1")
    server.wait_until(200)
    small = server.client.post("/invocations", content=b"warm up", headers={"Content-Type": "text/plain"})
    assert small.status_code == 200
    idle = rss_bytes(server.proc.pid)

    chunk = (prose(200_000) + " ").encode()
    # Whole words repeated to exactly 50 MiB (the cut falls inside the repeat of an ASCII-only stretch or not:
    # "ignore" drops a split multibyte character, spaces make the size exact again).
    text = (chunk * (50 * 1024 * 1024 // len(chunk) + 1))[: 50 * 1024 * 1024].decode("utf-8", "ignore").encode()
    text += b" " * (50 * 1024 * 1024 - len(text))
    assert len(text) == 50 * 1024 * 1024
    started = time.monotonic()
    response = server.client.post(
        "/invocations", content=text, headers={"Content-Type": "text/plain"}, timeout=httpx.Timeout(120)
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert "generated_text" in response.text
    after = settle_rss(server.proc.pid, below=1.5 * idle)
    assert after < 1.5 * idle, f"RSS {after / 2**20:.0f} MiB after the 50 MB request, idle {idle / 2**20:.0f} MiB"
    # Not a benchmark: only that a 50 MB text costs seconds, not the minutes whole-text tokenizing took.
    assert elapsed < 60, elapsed
    # The server is still healthy and serves the next request.
    assert server.ping().status_code == 200

    # Four concurrent 10 MB texts (the toolkit's server took 7 GB for four 9 MB bodies): the peak
    # stays within a small multiple of the bodies themselves, and memory comes back afterwards.
    peak_before = rss_bytes(server.proc.pid, "VmHWM")
    body = text[: 10 * 1024 * 1024]
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(
            pool.map(
                lambda _: server.client.post(
                    "/invocations", content=body, headers={"Content-Type": "text/plain"}, timeout=httpx.Timeout(120)
                ),
                range(4),
            )
        )
    assert [r.status_code for r in responses] == [200] * 4
    peak = rss_bytes(server.proc.pid, "VmHWM")
    print(
        f"RSS idle {idle / 2**20:.0f} MiB; after 50 MiB {after / 2**20:.0f} MiB; "
        f"peak before {peak_before / 2**20:.0f} MiB, with 4 x 10 MiB {peak / 2**20:.0f} MiB"
    )
    assert peak - idle < 16 * 4 * len(body), f"peak {peak / 2**20:.0f} MiB, idle {idle / 2**20:.0f} MiB"
    assert settle_rss(server.proc.pid, below=1.5 * idle) < 1.5 * idle
