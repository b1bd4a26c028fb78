"""Naming a model: POST /models/{model}/invocations, ?model= and X-Amzn-SageMaker-Target-Model.

The contract: botocore's sagemaker-runtime model (InvokeEndpoint has TargetModel, 1-1024
printable characters; InvokeEndpointAsync has none, so an async request carries the name as a
`model=<name>` custom attribute, which SageMaker forwards to the container; CustomAttributes is
at most 1024 characters). The async requests go through botocore's real client to the stub
(tests/api/conftest.py), which records the headers SageMaker would receive.
"""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from api_handler.async_api import model_name, realtime
from api_handler.async_api.logic import SubmitRequest
from api_handler.async_api.settings import Settings
from tests.api.conftest import event

RUNTIME = botocore.session.get_session().get_service_model("sagemaker-runtime")


def _submit(
    api,
    path: str = "/invocations",
    *,
    query: dict | None = None,
    headers: dict | None = None,
    path_model: str | None = None,
    body: str = '{"inputs": "hello"}',
):
    raw = event("POST", path, body=body.encode(), headers={"Content-Type": "application/json", **(headers or {})})
    raw["queryStringParameters"] = query
    if path_model is not None:
        raw["pathParameters"] = {"model_name": path_model}
        raw["resource"] = raw["requestContext"]["resourcePath"] = "/models/{model_name}/invocations"
    return api.call(raw)


# ----------------------------------------------------------------------------- async: custom attribute
def test_path_route_forwards_the_model_as_a_custom_attribute(api) -> None:
    answer = _submit(api, "/models/customer-a/invocations", path_model="customer-a")
    assert answer.status == 202, answer.body
    assert api.stub.calls[-1].headers["x-amzn-sagemaker-custom-attributes"] == "model=customer-a"
    assert api.receipt(answer.body["inferenceId"])["model"] == "customer-a"


@pytest.mark.parametrize(
    "how",
    [{"query": {"model": "customer-b"}}, {"headers": {"X-Amzn-SageMaker-Target-Model": "customer-b"}}],
    ids=["query", "header"],
)
def test_query_or_header_name_the_model_on_post_invocations(api, how) -> None:
    answer = _submit(api, **how)
    assert answer.status == 202, answer.body
    assert api.stub.calls[-1].headers["x-amzn-sagemaker-custom-attributes"] == "model=customer-b"


def test_callers_custom_attributes_are_kept_after_the_model(api) -> None:
    answer = _submit(api, query={"model": "customer-a"}, headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc"})
    assert answer.status == 202, answer.body
    assert api.stub.calls[-1].headers["x-amzn-sagemaker-custom-attributes"] == "model=customer-a; trace=abc"


def test_no_model_named_forwards_the_callers_attributes_unchanged(api) -> None:
    answer = _submit(api, headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc"})
    assert answer.status == 202
    assert api.stub.calls[-1].headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"


def test_two_different_names_are_400_and_nothing_starts(api) -> None:
    answer = _submit(api, query={"model": "a"}, headers={"X-Amzn-SageMaker-Target-Model": "b"})
    assert answer.status == 400
    assert "'a'" in answer.body["message"] and "'b'" in answer.body["message"]
    assert api.stub.calls == []


def test_name_in_the_attributes_that_disagrees_is_400(api) -> None:
    answer = _submit(api, query={"model": "a"}, headers={"X-Amzn-SageMaker-Custom-Attributes": "model=b"})
    assert answer.status == 400 and "model='b'" in answer.body["message"]
    assert api.stub.calls == []


@pytest.mark.parametrize("bad", ["../etc", "/abs", "a b", "a;b", "a=b", "", "x" * 129, "a//b"])
def test_invalid_names_are_400_naming_the_value(api, bad: str) -> None:
    answer = _submit(api, query={"model": bad})
    assert answer.status == 400, bad
    assert "model name" in answer.body["message"]
    assert answer.body["error"] == "BadRequest"
    assert api.stub.calls == []


def test_name_plus_attributes_over_sagemakers_1024_is_400(api) -> None:
    answer = _submit(
        api, query={"model": "customer-a"}, headers={"X-Amzn-SageMaker-Custom-Attributes": "t=" + "x" * 1015}
    )
    assert answer.status == 400 and "1024" in answer.body["message"]
    assert api.stub.calls == []


def test_same_idempotency_key_for_another_model_is_a_conflict(api) -> None:
    first = _submit(api, query={"model": "a"}, headers={"Idempotency-Key": "k-1"})
    again = _submit(api, query={"model": "a"}, headers={"Idempotency-Key": "k-1"})
    other = _submit(api, query={"model": "b"}, headers={"Idempotency-Key": "k-1"})
    assert first.status == 202 and again.status == 202
    assert again.body["inferenceId"] == first.body["inferenceId"]
    assert other.status == 422
    assert len(api.stub.calls) == 1


def test_fingerprint_without_a_model_is_unchanged() -> None:
    """Receipts written before models could be named keep matching their replays."""
    plain = SubmitRequest("application/json", None, "k", 60, 60, payload=b"x")
    named = SubmitRequest("application/json", None, "k", 60, 60, payload=b"x", model="a")
    assert plain.fingerprint != named.fingerprint
    import hashlib

    assert (
        plain.fingerprint
        == hashlib.sha256(f"inline\napplication/json\n{hashlib.sha256(b'x').hexdigest()}".encode()).hexdigest()
    )


# ----------------------------------------------------------------------------- multimodel: TargetModel
def _settings(mode: str) -> Settings:
    return Settings(
        input_bucket="in-b", output_bucket="out-b", failure_bucket="fail-b", endpoint_name="ep", hosting_mode=mode
    )


def test_multimodel_invoke_endpoint_carries_target_model_valid_for_botocore() -> None:
    request = SubmitRequest(
        "application/json", None, None, 60, 60, payload=b"{}", custom_attributes="trace=1", model="customer-a.tar.gz"
    )
    params = realtime.invoke_params(_settings("multimodel"), "r" + "0" * 32, "application/json", b"{}", request)
    assert params["TargetModel"] == "customer-a.tar.gz"
    assert params["CustomAttributes"] == "trace=1"  # the container gets the model from SageMaker, not from here
    report = ParamValidator().validate(params, RUNTIME.operation_model("InvokeEndpoint").input_shape)
    assert not report.has_errors(), report.generate_report()


def test_realtime_single_container_gets_the_name_as_custom_attribute() -> None:
    request = SubmitRequest("application/json", None, None, 60, 60, payload=b"{}", model="customer-a")
    params = realtime.invoke_params(_settings("realtime"), "r" + "0" * 32, "application/json", b"{}", request)
    assert "TargetModel" not in params
    assert params["CustomAttributes"] == "model=customer-a"


def test_every_accepted_name_is_a_valid_target_model() -> None:
    shape = RUNTIME.operation_model("InvokeEndpoint").input_shape.members["TargetModel"]
    import re

    pattern = re.compile(r"\A\S[\x20-\x7e]*\Z")  # TargetModelHeader's \A\S[\p{Print}]*\z, ASCII
    for name in ("a", "customer-a.tar.gz", "group/v2/model.tar.gz", "x" * 128 + "/" + "y" * 128):
        assert model_name.check_model_name(name, "test") == name
        assert shape.metadata["min"] <= len(name) <= shape.metadata["max"] and pattern.match(name)


def test_multimodel_mode_without_a_model_is_400_saying_how_to_name_one(api) -> None:
    api.setenv("HOSTING_MODE", "multimodel")
    answer = _submit(api)
    assert answer.status == 400
    assert (
        "/models/{model}/invocations" in answer.body["message"]
        and "X-Amzn-SageMaker-Target-Model" in answer.body["message"]
    )


def test_attribute_parser_reads_model_among_other_entries() -> None:
    assert model_name.attribute_model("trace=1; model=b, x=2") == "b"
    assert model_name.attribute_model("trace=1") is None
    assert model_name.attribute_model(None) is None
    assert json.loads(json.dumps(model_name.forwarded_attributes("a", None))) == "model=a"


def test_stand_ins_tell_single_and_multi_model_endpoints_apart(tmp_path) -> None:
    """As SageMaker: TargetModel on a single-model endpoint is a ValidationError; a multi-model
    endpoint without one too (botocore's real client against the local stand-ins)."""
    import boto3
    from botocore.exceptions import ClientError

    from local_stack.multi_model import MultiModelRuntime
    from local_stack.realtime_runtime import RealtimeRuntime

    for runtime, kwargs in (
        (RealtimeRuntime(endpoint_name="ep", container_url="http://127.0.0.1:9"), {"TargetModel": "a.tar.gz"}),
        (MultiModelRuntime(endpoint_name="ep", container_url="http://127.0.0.1:9", models_dir=tmp_path), {}),
    ):
        runtime.start()
        try:
            client = boto3.client(
                "sagemaker-runtime",
                endpoint_url=runtime.url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            with pytest.raises(ClientError) as error:
                client.invoke_endpoint(EndpointName="ep", Body=b"{}", ContentType="application/json", **kwargs)
            assert error.value.response["Error"]["Code"] == "ValidationError"
        finally:
            runtime.stop()
