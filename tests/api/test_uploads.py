"""Uploads: a presigned POST whose signed policy bounds size and type, used once, copied to
the inference's own key and validated there, so what SageMaker reads cannot change.

moto stores whatever a form POST sends (it does not enforce POST policies), so the policy
document is checked here against S3's documented semantics
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html and
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html), and the
submit-time checks against objects moto does accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.conftest import INPUT_BUCKET, OTHER_IDENTITY

MAX_UPLOAD = 1024**3  # the default: SageMaker's async payload limit


def _post(upload: dict, payload: bytes, content_type: str | None = None) -> httpx.Response:
    """What a browser or the CLI does with the form: fields first, the file last."""
    fields = dict(upload["fields"])
    file_type = content_type or fields.get("Content-Type", "application/octet-stream")
    files = {upload["fileField"]: ("payload", payload, file_type)}
    return httpx.post(upload["uploadUrl"], data=fields, files=files, timeout=10)


def _conditions(upload: dict) -> tuple[dict, list]:
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    return policy, policy["conditions"]


def _input_of(api, call_index: int = -1) -> tuple[str, bytes]:
    location = api.stub.calls[call_index].headers["x-amzn-sagemaker-inputlocation"]
    bucket, _, key = location.removeprefix("s3://").partition("/")
    return key, api.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _ref(upload: dict) -> str:
    return json.dumps({"uploadId": upload["uploadId"]})


# ----------------------------------------------------------------------------- the signed policy
def test_the_signed_policy_bounds_size_type_key_and_time(api):
    before = datetime.now(UTC)
    upload = api.upload("text/plain")
    assert upload["method"] == "POST" and upload["maxBytes"] == MAX_UPLOAD
    fields = upload["fields"]
    policy, conditions = _conditions(upload)

    # Size: S3 refuses a file outside [min, max] bytes ("content-length-range").
    [size_range] = [c for c in conditions if isinstance(c, list) and c[0] == "content-length-range"]
    assert size_range == ["content-length-range", 1, MAX_UPLOAD]
    # Type: an exact-match condition on Content-Type, and the form field that satisfies it.
    assert {"Content-Type": "text/plain"} in conditions
    assert fields["Content-Type"] == "text/plain"
    # Where: this bucket and exactly this key (no starts-with: one upload, one object).
    assert {"bucket": INPUT_BUCKET} in conditions
    key_conditions = [
        c
        for c in conditions
        if (isinstance(c, dict) and "key" in c) or (isinstance(c, list) and c[1] in ("$key", "key"))
    ]
    assert key_conditions == [{"key": fields["key"]}]
    assert fields["key"].startswith("uploads/") and fields["key"].endswith(upload["uploadId"])
    # When: the policy expires at the configured lifetime (UPLOAD_URL_EXPIRY_SECONDS, 900 s).
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=890) <= expiration <= before + timedelta(seconds=910)
    # Every form field except the signature and the policy itself is bound by a condition,
    # or S3 refuses the POST ("each form field ... must be included in the conditions").
    bound = {k.lower() for c in conditions if isinstance(c, dict) for k in c}
    for name in fields:
        if name.lower() not in {"policy", "x-amz-signature"}:
            assert name.lower() in bound, f"form field {name} is not bound by the policy"


def test_the_policy_is_signed_with_sigv4_so_no_condition_can_be_changed(api):
    """S3 recomputes this signature over the base64 policy: edit a condition, and it no longer matches."""
    fields = api.upload("text/plain")["fields"]
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    key_id, date, region, service, terminal = fields["x-amz-credential"].split("/")
    assert (key_id, service, terminal) == ("testing", "s3", "aws4_request")

    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    signing_key = sign(sign(sign(sign(b"AWS4testing", date), region), service), terminal)
    expected = hmac.new(signing_key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert fields["x-amz-signature"] == expected


def test_the_upload_limit_is_configurable_and_refuses_above_sagemakers(api):
    api.setenv("MAX_UPLOAD_BYTES", "4096")
    _, conditions = _conditions(api.upload("application/json"))
    assert ["content-length-range", 1, 4096] in conditions
    api.setenv("MAX_UPLOAD_BYTES", str(MAX_UPLOAD + 1))
    answer = api.call(
        __import__("tests.api.conftest", fromlist=["event"]).event(
            "POST", "/uploads", body=b'{"contentType": "text/plain"}', headers={"Content-Type": "application/json"}
        )
    )
    assert answer.status == 500  # a configuration error, named in the log


# ----------------------------------------------------------------------------- submit
def test_submit_copies_the_upload_to_the_inferences_own_key_and_removes_the_upload(api):
    upload = api.upload("text/plain")
    payload = b"a very long document " * 1000
    assert _post(upload, payload).status_code in (200, 201, 204)

    answer = api.submit(_ref(upload), Idempotency_Key="big-1")
    assert answer.status == 202, answer.body
    inference_id = answer.body["inferenceId"]
    [call] = api.stub.calls
    key, data = _input_of(api)
    assert key.startswith(f"requests/{inference_id}/")  # not the caller-writable uploads/ prefix
    assert data == payload
    assert call.headers["x-amzn-sagemaker-content-type"] == "text/plain"  # the upload's own type
    assert api.receipt(inference_id)["uploadId"] == upload["uploadId"]
    listed = api.s3.list_objects_v2(Bucket=INPUT_BUCKET, Prefix="uploads/").get("Contents", [])
    assert listed == []  # the spent upload is gone

    again = api.submit(_ref(upload), Idempotency_Key="big-1")
    assert again.status == 202 and again.body == answer.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(api.stub.calls) == 1


def test_re_uploading_after_submit_does_not_change_what_the_model_reads(api):
    upload = api.upload("application/json")
    valid = b'{"inputs": "validated"}'
    _post(upload, valid)
    assert api.submit(_ref(upload)).status == 202
    key, _ = _input_of(api)

    # The form is still within its lifetime: post invalid bytes again.
    assert _post(upload, b"\x00 not json, never validated").status_code in (200, 201, 204)
    assert api.s3.get_object(Bucket=INPUT_BUCKET, Key=key)["Body"].read() == valid
    # And the upload cannot start another inference.
    second = api.submit(_ref(upload))
    assert second.status == 409
    assert second.body["error"] == "UploadAlreadyUsed"
    assert len(api.stub.calls) == 1


def test_an_upload_starts_one_inference_only(api):
    upload = api.upload("text/plain")
    _post(upload, b"payload")
    assert api.submit(_ref(upload), Idempotency_Key="first").status == 202
    other = api.submit(_ref(upload), Idempotency_Key="second")
    assert other.status == 409 and upload["uploadId"] in other.body["message"]
    assert len(api.stub.calls) == 1


def test_another_caller_cannot_use_or_block_an_upload(api):
    upload = api.upload("text/plain")
    _post(upload, b"mine")
    theirs = api.submit(_ref(upload), identity=OTHER_IDENTITY)
    never = api.submit(json.dumps({"uploadId": "u" + "f" * 32}), identity=OTHER_IDENTITY)
    assert theirs.status == never.status == 400  # exactly like an upload that does not exist
    assert theirs.body["message"].replace(upload["uploadId"], "U") == never.body["message"].replace("u" + "f" * 32, "U")
    assert api.stub.calls == []
    assert api.submit(_ref(upload)).status == 202  # the owner's submit still works


def test_an_oversize_upload_is_refused_at_submit_and_nothing_starts(api):
    """S3 enforces the policy's content-length-range; moto does not, so the submit-time check is proven here."""
    api.setenv("MAX_UPLOAD_BYTES", "64")
    upload = api.upload("text/plain")
    assert _post(upload, b"x" * 65).status_code in (200, 201, 204)  # moto: no policy enforcement
    answer = api.submit(_ref(upload), Idempotency_Key="too-big")
    assert answer.status == 413
    assert answer.body["error"] == "PayloadTooLarge"
    assert "65 bytes" in answer.body["message"] and "64" in answer.body["message"]
    assert api.stub.calls == []
    # Nothing of the refused attempt is left under requests/: no copy, no claim.
    assert api.s3.list_objects_v2(Bucket=INPUT_BUCKET, Prefix="requests/").get("KeyCount") == 0

    # Loses nothing: the upload is still there; a correct payload posted to the same form works.
    _post(upload, b"x" * 64)
    assert api.submit(_ref(upload), Idempotency_Key="right-size").status == 202


@pytest.mark.parametrize(("posted_type", "status"), [("application/xml", 415), (None, 202)])
def test_the_content_type_is_checked_on_the_copy(api, posted_type, status):
    upload = api.upload("text/plain")
    fields = dict(upload["fields"])
    if posted_type:
        fields["Content-Type"] = posted_type  # S3 would refuse this POST; moto stores it
    httpx.post(upload["uploadUrl"], data=fields, files={"file": ("p", b"payload", posted_type or "text/plain")})
    assert api.submit(_ref(upload)).status == status


def test_empty_upload_is_400(api):
    upload = api.upload("text/plain")
    api.s3.put_object(Bucket=INPUT_BUCKET, Key=upload["fields"]["key"], Body=b"", ContentType="text/plain")
    answer = api.submit(_ref(upload))
    assert answer.status == 400 and "empty" in answer.body["message"]


def test_submit_before_the_upload_is_400(api):
    upload = api.upload()
    answer = api.submit(_ref(upload))
    assert answer.status == 400
    assert "POST the payload" in answer.body["message"]
    assert api.stub.calls == []


def test_a_failed_start_releases_the_upload_for_a_retry(api):
    upload = api.upload("text/plain")
    _post(upload, b"payload")
    api.stub.fail(3, 503, "ServiceUnavailable")
    assert api.submit(_ref(upload)).status == 503  # no Idempotency-Key: the retry is a new inference
    retried = api.submit(_ref(upload))
    assert retried.status == 202
    _, data = _input_of(api)
    assert data == b"payload"


def test_two_concurrent_submits_of_one_upload_start_one_inference(api):
    upload = api.upload("text/plain")
    _post(upload, b"payload")
    from tests.api.conftest import LambdaContext, event

    seen = {}

    def concurrent_submit(_headers):
        api.stub.on_invoke = None
        raw = event(
            "POST",
            "/invocations",
            body=_ref(upload).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": "second"},
        )
        seen["answer"] = api.module.handler(raw, LambdaContext())

    api.stub.on_invoke = concurrent_submit  # runs while the first submit's invoke is in flight
    first = api.submit(_ref(upload), Idempotency_Key="first")
    assert first.status == 202
    assert seen["answer"]["statusCode"] == 409
    assert len(api.stub.calls) == 1


def test_a_submit_that_died_after_starting_resumes_on_the_same_copy(api):
    """The Lambda started the inference but never wrote the receipt: a retry with the same key
    starts it again (at-least-once), from the same immutable copy, though the upload is gone."""
    upload = api.upload("text/plain")
    _post(upload, b"payload")
    first = api.submit(_ref(upload), Idempotency_Key="resume")
    inference_id = first.body["inferenceId"]
    first_key, _ = _input_of(api)
    api.s3.delete_object(Bucket=INPUT_BUCKET, Key=f"requests/{inference_id}/receipt.json")

    again = api.submit(_ref(upload), Idempotency_Key="resume")
    assert again.status == 202 and again.body["inferenceId"] == inference_id
    assert len(api.stub.calls) == 2
    second_key, data = _input_of(api)
    assert second_key == first_key and data == b"payload"
