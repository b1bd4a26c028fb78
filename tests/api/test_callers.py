"""Callers never see each other's inferences: status, result, replay and the 422 probe.

Identities are what API Gateway puts in requestContext.identity for IAM-signed requests
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html),
with principal ids shaped like IAM's aws:userid
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable).
"""

from __future__ import annotations

import json

import pytest

from api_handler.async_api.callers import ANONYMOUS, caller_of
from tests.api.conftest import IDENTITY, INPUT_BUCKET, OTHER_IDENTITY

ACCOUNT = "123456789012"


def _identity(caller: str, arn: str) -> dict[str, str]:
    return {"accountId": ACCOUNT, "caller": caller, "user": caller, "userArn": arn, "accessKey": "ASIAEXAMPLE"}


def _complete(api, inference_id: str, body: bytes) -> None:
    bucket, _, key = api.receipt(inference_id)["outputLocation"].removeprefix("s3://").partition("/")
    api.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


# ----------------------------------------------------------------------------- what a caller is
def test_sessions_of_one_role_are_one_caller_and_other_roles_are_not():
    role = "AROA3XFRBF535PLBIFPI4"
    alice = _identity(f"{role}:alice@example.com", f"arn:aws:sts::{ACCOUNT}:assumed-role/team-a/alice@example.com")
    bob = _identity(f"{role}:bob@example.com", f"arn:aws:sts::{ACCOUNT}:assumed-role/team-a/bob@example.com")
    other_role = _identity(
        "AROA3XFRBF535PLBXXXXX:alice@example.com", f"arn:aws:sts::{ACCOUNT}:assumed-role/team-b/alice@example.com"
    )
    key = lambda identity: caller_of({"requestContext": {"identity": identity}}).key  # noqa: E731
    # The session name is chosen by whoever calls AssumeRole: it separates nobody.
    assert key(alice) == key(bob) == f"{ACCOUNT}/{role}"
    assert key(other_role) != key(alice)
    # The same role name re-created (new unique id) is a new caller, as in IAM resource policies.
    assert key(other_role).endswith("AROA3XFRBF535PLBXXXXX")


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (_identity("AIDACKCEVSQ6C2EXAMPLE", f"arn:aws:iam::{ACCOUNT}:user/alice"), f"{ACCOUNT}/AIDACKCEVSQ6C2EXAMPLE"),
        (_identity(f"{ACCOUNT}:carol", f"arn:aws:sts::{ACCOUNT}:federated-user/carol"), f"{ACCOUNT}/{ACCOUNT}:carol"),
        (_identity(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"), f"{ACCOUNT}/{ACCOUNT}"),
        # No principal id but an ARN: the assumed role without its session.
        (
            {"accountId": ACCOUNT, "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/team-a/s1"},
            f"{ACCOUNT}/arn:aws:sts::{ACCOUNT}:assumed-role/team-a",
        ),
        ({"accountId": None, "caller": None, "user": None, "userArn": None}, ANONYMOUS),
        (None, ANONYMOUS),
    ],
    ids=["iam-user", "federated-user", "root", "arn-only", "unsigned", "no-identity"],
)
def test_caller_keys(identity, expected):
    assert caller_of({"requestContext": {"identity": identity}}).key == expected


# ----------------------------------------------------------------------------- isolation
def test_another_caller_gets_404_for_status_and_result_exactly_like_an_unknown_id(api):
    inference_id = api.submit('{"inputs": "secret"}').body["inferenceId"]
    _complete(api, inference_id, b'{"summary": "secret output"}')
    assert api.status(inference_id).body["output"] == {"summary": "secret output"}

    theirs = api.status(inference_id, identity=OTHER_IDENTITY)
    unknown = api.status("r" + "0" * 32, identity=OTHER_IDENTITY)
    assert theirs.status == unknown.status == 404
    assert theirs.body["error"] == unknown.body["error"] == "NotFound"
    assert "secret" not in json.dumps(theirs.body)
    # Same wording apart from the id: nothing tells "exists but not yours" from "no such id".
    assert theirs.body["message"].replace(inference_id, "ID") == unknown.body["message"].replace("r" + "0" * 32, "ID")


def test_the_same_key_from_two_callers_names_two_inferences_and_nothing_leaks(api):
    mine = api.submit('{"inputs": "order for A"}', Idempotency_Key="order-42")
    assert mine.status == 202
    # B, same key, A's exact body: a new inference of B's own, not a replay of A's.
    replay_probe = api.submit('{"inputs": "order for A"}', Idempotency_Key="order-42", identity=OTHER_IDENTITY)
    assert replay_probe.status == 202
    assert replay_probe.body["inferenceId"] != mine.body["inferenceId"]
    assert "Idempotent-Replayed" not in replay_probe.headers
    # B, same key, another body: no 422 telling B that A used the key.
    conflict_probe = api.submit('{"inputs": "different"}', Idempotency_Key="order-43", identity=OTHER_IDENTITY)
    assert conflict_probe.status == 202
    mine_again = api.submit('{"inputs": "something else"}', Idempotency_Key="order-43")
    assert mine_again.status == 202  # B "squatting" order-43 first took nothing from A
    assert mine_again.body["inferenceId"] != conflict_probe.body["inferenceId"]
    # A's key still replays A's inference.
    replay = api.submit('{"inputs": "order for A"}', Idempotency_Key="order-42")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.body["inferenceId"] == mine.body["inferenceId"]
    assert len(api.stub.calls) == 4


def test_receipts_record_the_caller(api):
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]
    receipt = api.receipt(inference_id)
    assert receipt["caller"] == f"{IDENTITY['accountId']}/{IDENTITY['caller'].split(':')[0]}"
    assert receipt["callerArn"] == IDENTITY["userArn"]


def test_a_receipt_without_a_caller_answers_to_nobody(api):
    """Receipts written before inferences were per caller (version 1) have no owner."""
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]
    receipt = api.receipt(inference_id)
    del receipt["caller"]
    api.s3.put_object(
        Bucket=INPUT_BUCKET, Key=f"requests/{inference_id}/receipt.json", Body=json.dumps(receipt).encode()
    )
    assert api.status(inference_id).status == 404


def test_unsigned_requests_are_one_anonymous_caller(api):
    anonymous = {"accountId": None, "caller": None, "user": None, "userArn": None, "accessKey": None}
    inference_id = api.submit('{"inputs": "x"}', identity=anonymous).body["inferenceId"]
    assert api.status(inference_id, identity=dict(anonymous)).status == 202
    assert api.status(inference_id).status == 404  # a signed caller is someone else
