"""The SageMaker contract and the request format, against a real server process."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import MAX_REQUEST_BYTES, ServerProcess

pytestmark = pytest.mark.slow


def invoke(server: ServerProcess, payload: object, **headers: str) -> httpx.Response:
    return server.client.post(
        "/invocations", content=json.dumps(payload), headers={"Content-Type": "application/json", **headers}
    )


def test_ping_is_200_once_loaded(server: ServerProcess) -> None:
    response = server.ping()
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_single_input_is_answered_as_the_toolkit_answers_it(server: ServerProcess) -> None:
    response = invoke(server, {"inputs": "The quick brown fox"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    # The toolkit returns what pipeline("...") returned: the text2text pipeline's
    # one-element list, under its "generated_text" key; random weights still emit text.
    (body,) = response.json()
    assert set(body) == {"generated_text"}
    assert isinstance(body["generated_text"], str) and body["generated_text"]


def test_list_input_gives_list_output_in_order(server: ServerProcess) -> None:
    texts = ["The quick brown fox", "two", "Dynamic batching groups requests"]
    solo = [invoke(server, {"inputs": t}).json()[0] for t in texts]
    response = invoke(server, {"inputs": texts})
    assert response.status_code == 200, response.text
    assert response.json() == solo
    assert response.headers["X-Batch-Size"] == "3"


def test_text_plain_body_is_one_input(server: ServerProcess) -> None:
    text = "The quick brown fox"
    response = server.client.post(
        "/invocations", content=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == invoke(server, {"inputs": text}).json()
    # Accept: */* (curl's and requests' default) is JSON, as in the toolkit.
    assert (
        server.client.post(
            "/invocations", content=text.encode(), headers={"Content-Type": "text/plain", "Accept": "*/*"}
        ).json()
        == response.json()
    )


def test_no_content_type_defaults_to_json(server: ServerProcess) -> None:
    response = server.client.post("/invocations", content=b'{"inputs": "two"}')
    assert response.status_code == 200, response.text


def test_parameters_reach_generate(server: ServerProcess) -> None:
    text = "Dynamic batching groups requests"
    short = invoke(server, {"inputs": text, "parameters": {"max_new_tokens": 1}}).json()[0]["generated_text"]
    long = invoke(server, {"inputs": text, "parameters": {"max_new_tokens": 12}}).json()[0]["generated_text"]
    assert len(long) > len(short)
    # Beam search with two returned sequences: two outputs for the one input.
    response = invoke(server, {"inputs": [text], "parameters": {"num_beams": 2, "num_return_sequences": 2}})
    assert response.status_code == 200, response.text
    (sequences,) = response.json()
    assert len(sequences) == 2 and all(set(s) == {"generated_text"} for s in sequences)


def test_accept_json_and_wildcards(server: ServerProcess) -> None:
    for accept in ("*/*", "application/json", "application/*", "text/html, application/json;q=0.9"):
        response = invoke(server, {"inputs": "two"}, Accept=accept)
        assert response.status_code == 200, (accept, response.text)


def test_unknown_headers_ignored_and_custom_attributes_echoed(server: ServerProcess) -> None:
    attributes = "trace_id=abc123,variant=blue"
    response = invoke(
        server,
        {"inputs": "two"},
        **{
            "X-Amzn-SageMaker-Custom-Attributes": attributes,
            "X-Something-Unknown": "whatever",
            "X-Amzn-SageMaker-Target-Model": "ignored",
        },
    )
    assert response.status_code == 200
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == attributes
    assert "X-Amzn-SageMaker-Custom-Attributes" not in invoke(server, {"inputs": "two"}).headers


# --------------------------------------------------------------------------- errors
def assert_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert fragment.lower() in body["message"].lower(), body


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"inputs": "unterminated', "malformed JSON"),
        (b'["inputs"]', '"inputs"'),
        (b'{"text": "no inputs key"}', '"inputs"'),
        (b'{"inputs": []}', "empty"),
        (b'{"inputs": 42}', "string"),
        (b'{"inputs": ["ok", 3]}', "string"),
        (b'{"inputs": "x", "parameters": [1]}', '"parameters"'),
        (b'{"inputs": "x", "parameters": {"no_such_parameter": 1}}', "no_such_parameter"),
        (b'{"inputs": "x", "parameters": {"max_new_tokens": -3}}', "invalid parameters"),
        (b"\xff\xfe not utf-8", "malformed JSON"),
    ],
)
def test_bad_request_is_400(server: ServerProcess, body: bytes, fragment: str) -> None:
    response = server.client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, fragment)


def test_invalid_utf8_text_is_400(server: ServerProcess) -> None:
    response = server.client.post("/invocations", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert_error(response, 400, "utf-8")


def test_unsupported_content_type_is_415(server: ServerProcess) -> None:
    response = server.client.post("/invocations", content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert_error(response, 415, "application/xml")


def test_unacceptable_accept_is_406(server: ServerProcess) -> None:
    assert_error(invoke(server, {"inputs": "two"}, Accept="text/html"), 406, "text/html")
    assert_error(invoke(server, {"inputs": "two"}, Accept="application/json;q=0"), 406, "application/json")


def test_body_over_limit_is_413(server: ServerProcess) -> None:
    big = {"inputs": "x" * (MAX_REQUEST_BYTES + 1)}
    assert_error(invoke(server, big), 413, "limit")

    def chunks():  # no Content-Length: the server must count while reading
        for _ in range(MAX_REQUEST_BYTES // 1024 + 2):
            yield b" " * 1024

    response = server.client.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "limit")


def test_server_keeps_serving_after_errors(server: ServerProcess) -> None:
    server.client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
    invoke(server, {"inputs": "x" * (MAX_REQUEST_BYTES + 1)})
    assert server.ping().status_code == 200
    assert invoke(server, {"inputs": "two"}).status_code == 200


def test_unknown_route_is_json_404(server: ServerProcess) -> None:
    response = server.client.get("/nope")
    assert response.status_code == 404
    assert response.json()["status"] == 404
