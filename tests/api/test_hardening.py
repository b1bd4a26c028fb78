"""Hostile input gets a 4xx in the documented shape, never a 500: regressions for the
crashes found against `make local`, and the header contracts from botocore's
sagemaker-runtime model (the API's own contract: service-2.json)."""

from __future__ import annotations

import json

import pytest
from botocore.loaders import Loader

from api_handler.async_api import logic
from api_handler.async_api.json_input import MAX_JSON_DEPTH, nesting_depth
from tests.api.conftest import event

ERROR_KEYS = {"error", "message", "requestId"}


def _shape(name: str) -> dict:
    return Loader().load_service_model("sagemaker-runtime", "service-2")["shapes"][name]


def _assert_error(answer, status: int, *words: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) == ERROR_KEYS
    for word in words:
        assert word in answer.body["message"], answer.body["message"]


# ----------------------------------------------------------------------------- numeric headers
@pytest.mark.parametrize("value", ["²", "٣٠٠", "６０", "1e3", "+60", "60.0", "0x3c", "6 0"])
@pytest.mark.parametrize("header", ["X-Request-TTL-Seconds", "X-Invocation-Timeout-Seconds"])
def test_numeric_headers_take_ascii_digits_only(api, header, value):
    # '²'.isdigit() and '٣'.isdigit() are True; int('²') raises, int('٣٠٠') is 300.
    _assert_error(api.submit('{"inputs": "x"}', **{header.replace("-", "_"): value}), 400, header)
    assert api.stub.calls == []


def test_numeric_headers_still_accept_plain_numbers_with_surrounding_spaces(api):
    answer = api.submit('{"inputs": "x"}', X_Request_TTL_Seconds=" 120 ")
    assert answer.status == 202
    assert api.stub.calls[0].headers["x-amzn-sagemaker-requestttlseconds"] == "120"


# ----------------------------------------------------------------------------- identifiers
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00"])
def test_identifiers_are_matched_whole(api, suffix):
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]
    _assert_error(api.status(inference_id + suffix), 404)
    ref = json.dumps({"uploadId": "u" + "0" * 32 + suffix})
    _assert_error(api.submit(ref), 400, "uploadId")
    _assert_error(api.submit('{"inputs": "x"}', Idempotency_Key="key" + suffix), 400, "Idempotency-Key")


def test_identifier_patterns_reject_a_trailing_newline():
    for pattern, valid in (
        (logic.INFERENCE_ID, "r" + "0" * 32),
        (logic.UPLOAD_ID, "u" + "0" * 32),
        (logic.IDEMPOTENCY_KEY, "order-1"),
    ):
        assert pattern.fullmatch(valid)
        assert not pattern.fullmatch(valid + "\n")
        assert pattern.search(valid + "\n")  # which is what `$` without fullmatch would have accepted


# ----------------------------------------------------------------------------- JSON
def test_deep_json_on_uploads_is_400_not_a_recursion_error(api):
    body = b'{"contentType": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = api.call(event("POST", "/uploads", body=body, headers={"Content-Type": "application/json"}))
    _assert_error(answer, 400)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_json_bodies_are_400_naming_the_limit(api, depth):
    body = '{"inputs": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    _assert_error(api.submit(body), 400, str(MAX_JSON_DEPTH), "deep")
    assert api.stub.calls == []


def test_json_at_the_depth_limit_is_accepted(api):
    body = '{"inputs": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    assert api.submit(body).status == 202


def test_brackets_inside_strings_do_not_count_as_depth():
    assert nesting_depth(json.dumps({"inputs": "[[[[{{{{" * 1000})) == 1
    assert nesting_depth(json.dumps({"a": ['\\"[', {"b": []}]})) == 4


@pytest.mark.parametrize(
    ("body", "parser_says"),
    [
        ('{"inputs": "x"', "Expecting ',' delimiter"),
        ("{'inputs': 'x'}", "Expecting property name enclosed in double quotes"),
        ('{"inputs": NaN}', "NaN"),
        ('{"inputs": 1} trailing', "Extra data"),
        ('\ufeff{"inputs": 1}', "BOM"),
        ('{"inputs": ' + "9" * 5000 + "}", "digits"),
    ],
    ids=["truncated", "single-quotes", "nan", "trailing", "bom", "huge-int"],
)
def test_malformed_json_declared_json_is_400_with_the_parsers_message(api, body, parser_says):
    answer = api.submit(body)
    _assert_error(answer, 400, "not valid JSON", parser_says)
    assert api.stub.calls == []  # never queued, never on a GPU


def test_json_that_is_not_utf8_is_400(api):
    _assert_error(api.submit(b'{"inputs": "\xff\xfe"}'), 400, "UTF-8")


def test_the_same_bytes_declared_text_are_a_model_input(api):
    assert api.submit('{"inputs": "x"', content_type="text/plain").status == 202


def test_vendor_json_types_must_parse_too(api):
    api.setenv("ALLOWED_CONTENT_TYPES", "application/json,application/vnd.example+json")
    _assert_error(api.submit("{", content_type="application/vnd.example+json"), 400, "not valid JSON")


# ----------------------------------------------------------------------------- custom attributes
def test_custom_attributes_reach_invoke_endpoint_async_verbatim(api):
    value = "trace-id=abc123; tenant=A; note=a b"
    answer = api.submit('{"inputs": "x"}', X_Amzn_SageMaker_Custom_Attributes=value)
    assert answer.status == 202
    assert api.stub.calls[0].headers["x-amzn-sagemaker-custom-attributes"] == value
    assert api.receipt(answer.body["inferenceId"])["customAttributes"] == value


def test_without_custom_attributes_none_are_sent(api):
    api.submit('{"inputs": "x"}')
    assert "x-amzn-sagemaker-custom-attributes" not in api.stub.calls[0].headers


def test_custom_attributes_limit_is_sagemakers():
    shape = _shape("CustomAttributesHeader")
    assert shape["max"] == logic.MAX_HEADER_CHARS == 1024
    assert shape["pattern"] == "\\p{ASCII}*"


@pytest.mark.parametrize(
    "value",
    ["a" * 1025, "naïve", "tab\there", "bell\x07", "emoji 🙂"],
    ids=["too-long", "latin-1", "tab", "control", "non-latin"],
)
def test_invalid_custom_attributes_are_400_naming_the_header(api, value):
    answer = api.submit('{"inputs": "x"}', X_Amzn_SageMaker_Custom_Attributes=value)
    _assert_error(answer, 400, "X-Amzn-SageMaker-Custom-Attributes", "1024")
    assert api.stub.calls == []


def test_custom_attributes_of_exactly_1024_characters_pass(api):
    value = "".join(chr(0x21 + i % 94) for i in range(1024))
    assert api.submit('{"inputs": "x"}', X_Amzn_SageMaker_Custom_Attributes=value).status == 202
    assert api.stub.calls[0].headers["x-amzn-sagemaker-custom-attributes"] == value


# ----------------------------------------------------------------------------- other headers
@pytest.mark.parametrize("header", ["Content-Type", "Accept"])
def test_non_ascii_media_headers_are_400_not_a_crash_in_botocore(api, header):
    headers = {"Content-Type": "application/json", header: "application/json; charset=ütf-8"}
    answer = api.call(event("POST", "/invocations", body=b'{"inputs": "x"}', headers=headers))
    _assert_error(answer, 400, header)
    assert api.stub.calls == []


def test_a_lone_surrogate_in_a_text_body_is_400(api):
    raw = event("POST", "/invocations", body=None, headers={"Content-Type": "text/plain"})
    raw["body"] = "broken \ud800 text"
    _assert_error(api.call(raw), 400, "UTF-8")
