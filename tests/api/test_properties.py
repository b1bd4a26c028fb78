"""Property: whatever API Gateway (or anything else) hands the handler, it answers with a
documented status and the JSON error shape, and never raises."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_handler.async_api.errors import DOCUMENTED_STATUSES
from tests.api.conftest import LambdaContext, event

HEADER_NAMES = [
    "Content-Type",
    "Idempotency-Key",
    "X-Invocation-Timeout-Seconds",
    "X-Request-TTL-Seconds",
    "Accept",
    "X-Amzn-SageMaker-Custom-Attributes",
]
HEADER_VALUES = [
    "application/json",
    "text/plain; charset=utf-8",
    "image/png",
    "application/xml",
    "*/*",
    "60",
    "3600",
    "0",
    "-1",
    "99999999999999999999",
    "key-1",
    "",
]
PATHS = ["/invocations", "/uploads", "/invocations/r" + "0" * 32, "/invocations/k" + "a" * 32, "/", "/invocations/"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

# Numbers in other scripts ('²', Arabic-Indic, full-width) are str.isdigit(); Latin-1 and
# beyond are what a header decoded by API Gateway can still carry.
NON_ASCII_VALUES = st.sampled_from(["²", "٣٠٠", "６０", "60²", "naïve", "🙂", "\u00a0", "\u2028"]) | st.text(
    st.characters(min_codepoint=0x80), min_size=1, max_size=30
)


def deep_json(depth: int, *, wrap: str | None = None) -> str:
    nested = "[" * depth + "]" * depth
    return json.dumps({wrap: None}).replace("null", nested) if wrap else nested


deep_bodies = st.builds(
    deep_json, st.integers(1, 20_000), wrap=st.sampled_from([None, "inputs", "contentType", "uploadId"])
)
# Large but under the inline limit: many small values, or one long string.
huge_bodies = st.one_of(
    st.integers(10_000, 200_000).map(lambda n: json.dumps({"inputs": list(range(n))})),
    st.integers(100_000, 1_000_000).map(lambda n: json.dumps({"inputs": "é" * n})),
    st.integers(1_000, 6_000).map(lambda n: '{"inputs": ' + "9" * n + "}"),
)

bodies = st.one_of(
    st.none(),
    deep_bodies,
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda data: base64.b64encode(data).decode()),
    st.sampled_from(['{"uploadId": "u' + "0" * 32 + '"}', '{"uploadId": 5}', '{"contentType": "text/plain"}', "{}"]),
    json_values.map(json.dumps),
)


ROUTES = [("POST", "/invocations"), ("POST", "/uploads"), ("GET", "/invocations/r" + "0" * 32)]


@st.composite
def api_events(draw: st.DrawFn) -> dict:
    """Mostly well-formed requests to real routes (so deep paths run), sometimes anything."""
    if draw(st.integers(0, 3)):
        method, path = draw(st.sampled_from(ROUTES))
    else:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"]) | st.text(max_size=8))
        path = draw(st.sampled_from(PATHS) | st.text(max_size=40).map(lambda p: "/" + p))
    headers = {"Content-Type": draw(st.sampled_from(HEADER_VALUES[:4]))}
    headers.update(
        draw(
            st.dictionaries(
                st.sampled_from(HEADER_NAMES) | st.text(min_size=1, max_size=20),
                st.sampled_from(HEADER_VALUES) | st.text(max_size=60) | NON_ASCII_VALUES,
                max_size=4,
            )
        )
    )
    raw = event(method, path, headers=headers)
    body = draw(bodies)
    raw.update(body=body, isBase64Encoded=draw(st.none() | st.booleans()) if body else None)
    if not draw(st.integers(0, 4)):  # break one arbitrary top-level field
        raw[draw(st.sampled_from(sorted(raw)))] = draw(json_values)
    return raw


def _check(answer: object) -> None:
    assert isinstance(answer, dict)
    assert answer["statusCode"] in DOCUMENTED_STATUSES, answer
    body = json.loads(answer["body"])
    assert isinstance(body, dict)
    if answer["statusCode"] >= 400:
        assert set(body) == {"error", "message", "requestId"}, body
        assert all(isinstance(value, str) for value in body.values())
    for value in (answer.get("headers") or {}).values():
        assert isinstance(value, str) and "\n" not in value and "\r" not in value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=api_events())
def test_any_api_gateway_event_gets_a_documented_answer(api, raw):
    _check(api.module.handler(raw, LambdaContext()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=json_values)
def test_any_event_at_all_gets_a_documented_answer(api, raw):
    _check(api.module.handler(raw, LambdaContext()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.sampled_from(HEADER_NAMES),
    value=NON_ASCII_VALUES,
    route=st.sampled_from(ROUTES),
)
def test_non_ascii_header_values_are_4xx_or_accepted_never_5xx(api, header, value, route):
    method, path = route
    headers = {"Content-Type": "application/json", header: value}
    answer = api.module.handler(event(method, path, body='{"inputs": "x"}', headers=headers), LambdaContext())
    _check(answer)
    assert answer["statusCode"] < 500, answer
    if (
        header in ("X-Invocation-Timeout-Seconds", "X-Request-TTL-Seconds", "X-Amzn-SageMaker-Custom-Attributes")
        and method == "POST"
        and path == "/invocations"
    ):
        assert answer["statusCode"] == 400, answer  # never read as a number or forwarded


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=deep_bodies | huge_bodies, route=st.sampled_from(ROUTES[:2]))
def test_deep_and_huge_json_is_answered_never_5xx(api, body, route):
    method, path = route
    answer = api.module.handler(
        event(method, path, body=body, headers={"Content-Type": "application/json"}), LambdaContext()
    )
    _check(answer)
    assert answer["statusCode"] < 500, answer


principal_ids = st.from_regex(r"(AIDA|AROA)[A-Z0-9]{8,16}", fullmatch=True)
session_names = st.from_regex(r"[\w+=,.@-]{2,32}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    first=principal_ids,
    second=principal_ids,
    session_a=session_names,
    session_b=session_names,
    key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64),
)
def test_idempotency_keys_never_collide_across_principals(first, second, session_a, session_b, key):
    from api_handler.async_api.callers import caller_of
    from api_handler.async_api.logic import inference_id_for_key

    def caller(principal: str, session: str):
        principal_id = f"{principal}:{session}" if principal.startswith("AROA") else principal
        return caller_of({"requestContext": {"identity": {"accountId": "123456789012", "caller": principal_id}}})

    a, b = caller(first, session_a), caller(second, session_b)
    same_principal = first == second
    assert (a.key == b.key) == same_principal  # sessions of one role are one caller; nothing else is
    assert (inference_id_for_key(a, key) == inference_id_for_key(b, key)) == same_principal
