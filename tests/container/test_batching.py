"""Dynamic batching, observed from outside: X-Batch-Size / X-Batch-Requests and the logs."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from tests.processes import wait_for

from .conftest import MAX_BATCH_SIZE, ServerProcess

pytestmark = pytest.mark.slow

# Long enough (~1 s on the tiny model) that requests sent meanwhile queue up.
LONG = {"max_new_tokens": 240, "min_new_tokens": 240}
TEXTS = [
    f"request number {i} about {word}"
    for i, word in enumerate(["foxes", "dogs", "batching", "queues", "models", "servers", "tokens", "zero"])
]


def post(server: ServerProcess, payload: dict) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        return client.post("/invocations", json=payload)


def occupy_model(server: ServerProcess, pool: ThreadPoolExecutor) -> Future:
    """Send a long request and return once the inference thread is running it."""
    started = len(server.log_events("batch_start"))
    future = pool.submit(post, server, {"inputs": "occupy the model", "parameters": LONG})
    # Tests share the server but run one at a time: the next batch to start is ours.
    wait_for(lambda: len(server.log_events("batch_start")) > started, timeout=30, what="the long batch to start")
    return future


def test_concurrent_requests_share_one_model_call(server: ServerProcess) -> None:
    solo = {text: post(server, {"inputs": text}).json() for text in TEXTS[:6]}
    with ThreadPoolExecutor(max_workers=12) as pool:
        long = occupy_model(server, pool)
        futures = {text: pool.submit(post, server, {"inputs": text}) for text in TEXTS[:6]}
        responses = {text: f.result(timeout=60) for text, f in futures.items()}
        assert long.result(timeout=60).status_code == 200
    for text, response in responses.items():
        assert response.status_code == 200, response.text
        # Each response is its own request's output, identical to running it alone.
        assert response.json() == solo[text], text
    sizes = {int(r.headers["X-Batch-Requests"]) for r in responses.values()}
    assert max(sizes) > 1, f"no batching happened: {sizes}"


def test_requests_with_different_parameters_are_batched_apart(server: ServerProcess) -> None:
    groups = {"a": {"max_new_tokens": 2}, "b": {"max_new_tokens": 3}}
    with ThreadPoolExecutor(max_workers=12) as pool:
        long = occupy_model(server, pool)
        sent = [
            (name, pool.submit(post, server, {"inputs": text, "parameters": groups[name]}))
            for name, text in zip("aaaabbb", TEXTS, strict=False)
        ]
        results = [(name, f.result(timeout=60)) for name, f in sent]
        long.result(timeout=60)
    for name, response in results:
        assert response.status_code == 200, response.text
        # All of a group queued behind the long batch: one batch per group, never mixed.
        expected = sum(1 for n, _ in results if n == name)
        assert int(response.headers["X-Batch-Requests"]) == expected, (name, response.headers)


def test_a_request_larger_than_the_maximum_batch_is_answered_whole(server: ServerProcess) -> None:
    # How it is split into model calls is checked in test_units.py (the model's calls are visible there).
    texts = [f"input {i}" for i in range(MAX_BATCH_SIZE + 3)]
    response = post(server, {"inputs": texts})
    assert response.status_code == 200
    assert len(response.json()) == len(texts)


def test_every_batch_is_logged_as_json_with_size_and_latency(server: ServerProcess) -> None:
    post(server, {"inputs": ["one", "two"]})
    event = server.log_events("batch")[-1]
    assert event["batch_size"] == 2 and event["requests"] == 1
    assert event["latency_ms"] > 0 and event["level"] == "INFO" and event["ok"] is True
