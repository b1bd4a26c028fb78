"""The client CLI against the local pipeline, and its retry / signing rules against local stubs."""

from __future__ import annotations

import io
import itertools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import botocore.session
import httpx
import pytest

from inference_client import ClientError, InferenceClient
from inference_client.client import region_from_url
from local_stack.aws import INPUT_PREFIX
from local_stack.pipeline import LocalPipeline
from tests.http_stub import StubHandler, serving
from tests.processes import run_captured

from .conftest import (
    INLINE_RESULT_MAX_BYTES,
    MODEL_ERROR,
    check_cli_prints_the_models_answer,
    invoke_wait,
    run_cli,
    unique_text,
)
from .conftest import receipt_of as _receipt

pytestmark = pytest.mark.slow


def test_invoke_wait_prints_what_the_model_answers(healthy_pipeline: LocalPipeline) -> None:
    err = check_cli_prints_the_models_answer(healthy_pipeline, "Hello from the CLI")
    assert "Completed" in err  # the progress display names the final state


def test_the_module_entry_point_runs(healthy_pipeline: LocalPipeline) -> None:
    argv = [sys.executable, "-m", "inference_client", "--url", str(healthy_pipeline.api_url)]
    completed = run_captured([*argv, "invoke", "--wait", "--quiet", "--text", "entry point"], timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "generated_text" in json.loads(completed.stdout)[0]  # one input: the toolkit's one-element list


def test_submit_from_stdin_then_status_then_result(healthy_pipeline: LocalPipeline) -> None:
    url = str(healthy_pipeline.api_url)
    body = json.dumps({"inputs": unique_text("stdin"), "parameters": {"max_new_tokens": 5}}).encode()
    direct = healthy_pipeline.container.invoke(body).json()

    code, out, err = run_cli("--url", url, "submit", "-", stdin=body)
    assert code == 0, err
    accepted = json.loads(out)
    assert accepted["status"] == "InProgress" and accepted["replayed"] is False
    inference_id = accepted["inferenceId"]

    InferenceClient(url).wait(inference_id, initial_interval=0.1, max_interval=0.2, timeout=60)
    code, out, err = run_cli("--url", url, "status", inference_id)
    assert code == 0 and json.loads(out)["status"] == "Completed", err
    code, out, err = run_cli("--url", url, "result", inference_id)
    assert code == 0 and json.loads(out) == direct, err


def test_large_payloads_go_through_the_upload_flow(healthy_pipeline: LocalPipeline, tmp_path: Path, s3: Any) -> None:
    payload = json.dumps({"inputs": unique_text("uploaded"), "parameters": {"max_new_tokens": 3}}).encode()
    source = tmp_path / "payload.json"
    source.write_bytes(payload)
    saved = tmp_path / "result.json"
    direct = healthy_pipeline.container.invoke(payload).json()

    code, _, err = invoke_wait(healthy_pipeline, "--upload-threshold", "16", str(source), "-o", str(saved))
    assert code == 0, err
    assert json.loads(saved.read_bytes()) == direct
    inference_id = err.split("]")[1].split()[0]  # the progress line names the inference
    receipt = _receipt(s3, healthy_pipeline, inference_id)
    # SageMaker read the API's own copy of the upload, under the inference's requests/ folder.
    assert receipt["uploadId"] and f"/{INPUT_PREFIX}{inference_id}/" in receipt["inputLocation"]


def test_a_result_too_large_to_inline_is_downloaded(healthy_pipeline: LocalPipeline, tmp_path: Path) -> None:
    body = json.dumps({"inputs": [f"sentence {n}" for n in range(120)], "parameters": {"max_new_tokens": 6}})
    direct = healthy_pipeline.container.invoke(body.encode())
    assert len(direct.content) > INLINE_RESULT_MAX_BYTES  # else this test proves nothing
    saved = tmp_path / "big.json"
    code, _, err = invoke_wait(healthy_pipeline, "--content-type", "application/json", "--text", body, "-o", str(saved))
    assert code == 0, err
    document = InferenceClient(str(healthy_pipeline.api_url)).status(err.split("]")[1].split()[0])[0]
    assert "outputUrl" in document and "output" not in document
    assert json.loads(saved.read_bytes()) == direct.json()


def test_a_failed_inference_exits_1_with_the_reason(healthy_pipeline: LocalPipeline) -> None:
    code, out, err = invoke_wait(
        healthy_pipeline, "--content-type", "application/json", "--text", json.dumps(MODEL_ERROR)
    )
    assert code == 1 and out == ""
    assert "failed" in err and "Model Error" in err


def test_usage_errors_are_named(healthy_pipeline: LocalPipeline, tmp_path: Path) -> None:
    code, _, err = run_cli("--url", str(healthy_pipeline.api_url), "submit", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err
    code, _, err = run_cli("--url", str(healthy_pipeline.api_url), "status", "r" + "0" * 32)
    assert code == 3 and "404" in err and "NotFound" in err


# ------------------------------------------------------------------ retries never start a job twice
class _DropFirstResponse(StubHandler):
    """A proxy to the API that forwards the first submit but hangs up before answering."""

    upstream: str
    dropped = 0
    keys: list[str]
    protocol_version = "HTTP/1.1"

    def _proxy(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        response = httpx.request(
            self.command, self.upstream + self.path, content=body, headers=headers, timeout=30, trust_env=False
        )
        if self.command == "POST" and self.path == "/invocations":
            type(self).keys.append(self.headers.get("Idempotency-Key", ""))
            if type(self).dropped == 0:
                type(self).dropped += 1
                self.close_connection = True
                return  # the job started upstream; the client never hears about it
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = do_POST = _proxy


@pytest.fixture
def flaky_proxy(healthy_pipeline: LocalPipeline) -> Iterator[tuple[str, type[_DropFirstResponse]]]:
    handler = type("Handler", (_DropFirstResponse,), {"upstream": healthy_pipeline.api_url, "dropped": 0, "keys": []})
    with serving(handler) as url:
        yield url, handler


def test_a_retried_submit_starts_the_job_once(
    healthy_pipeline: LocalPipeline, flaky_proxy: tuple[str, type[_DropFirstResponse]]
) -> None:
    url, proxy = flaky_proxy
    runtime = healthy_pipeline.runtime
    assert runtime is not None
    received = runtime.stats.received
    client = InferenceClient(url, sleep=lambda _: None)
    accepted = client.submit(json.dumps({"inputs": unique_text("retried")}).encode(), "application/json")
    assert proxy.dropped == 1 and len(proxy.keys) == 2
    assert proxy.keys[0] == proxy.keys[1] != ""  # the retry reused the key
    assert accepted["replayed"] is True  # the API recognised the retry
    assert runtime.stats.received == received + 1  # one job, not two
    assert client.wait(accepted["inferenceId"], initial_interval=0.1, timeout=60)["status"] == "Completed"


# ------------------------------------------------------------------ SigV4
class _Capture(StubHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers.items()))
        self.send_json(202, {"inferenceId": "r1", "status": "InProgress"})


@pytest.fixture
def capture() -> Iterator[tuple[str, list[dict[str, str]]]]:
    handler = type("Capture", (_Capture,), {"seen": []})
    with serving(handler) as url:
        yield f"{url}/prod", handler.seen


def _session(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance metadata service
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return botocore.session.get_session()


def test_requests_are_sigv4_signed_for_execute_api(
    capture: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = capture
    session = _session(
        monkeypatch, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret", AWS_SESSION_TOKEN="token"
    )
    InferenceClient(url, sign=True, region="eu-west-1", session=session).status("r1")
    authorization = seen[-1]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert seen[-1]["X-Amz-Security-Token"] == "token" and seen[-1]["X-Amz-Date"]


def test_local_urls_are_not_signed_by_default(capture: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = capture
    InferenceClient(url).status("r1")
    assert "Authorization" not in seen[-1]


def test_signing_without_credentials_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    session = _session(monkeypatch)
    with pytest.raises(ClientError, match="no AWS credentials"):
        InferenceClient("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", session=session)


def test_the_region_comes_from_an_execute_api_url() -> None:
    assert region_from_url("https://abc123.execute-api.eu-west-1.amazonaws.com/prod") == "eu-west-1"
    assert region_from_url("https://api.example.com/") is None


# ------------------------------------------------------------------ polling backoff
class _Scripted(InferenceClient):
    def __init__(self, answers: list[tuple[str, float | None]]) -> None:
        super().__init__("http://127.0.0.1:9", sleep=self._sleep)
        self.answers = answers
        self.sleeps: list[float] = []

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def status(self, inference_id: str) -> tuple[dict[str, Any], float | None]:
        state, retry_after = self.answers.pop(0)
        return {"inferenceId": inference_id, "status": state}, retry_after


def test_wait_backs_off_and_honours_retry_after_up_to_the_cap() -> None:
    client = _Scripted([("InProgress", None)] * 6 + [("InProgress", 30.0), ("Completed", None)])
    seen: list[str] = []
    document = client.wait(
        "r1", initial_interval=1.0, max_interval=5.0, on_progress=lambda elapsed, doc: seen.append(doc["status"])
    )
    assert document["status"] == "Completed"
    assert client.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0]  # grows by half, capped; Retry-After capped too
    assert seen == ["InProgress"] * 7 + ["Completed"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal_and_logs_changes_elsewhere() -> None:
    from inference_client.cli import Progress

    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(stream)
        for elapsed, state in ((0.0, "InProgress"), (1.5, "InProgress"), (3.25, "Completed")):
            progress(elapsed, {"inferenceId": "r1", "status": state})
    assert terminal.getvalue().count("\r") == 3 and "(poll 3)" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n") and "[    3.2s] r1  Completed" in terminal.getvalue()
    assert log.getvalue().splitlines() == ["[    0.0s] r1  InProgress", "[    3.2s] r1  Completed"]


# ------------------------------------------------------------------ global options, upload progress, output
def test_global_options_may_follow_the_command(healthy_pipeline: LocalPipeline) -> None:
    """Users write `invoke --wait --text ... --url URL` (the README did): both orders work."""
    text = unique_text("url after the command")
    code, out, err = run_cli("invoke", "--wait", "--quiet", "--text", text, "--url", str(healthy_pipeline.api_url))
    assert code == 0, err
    assert "generated_text" in json.loads(out)[0]


def test_a_global_option_after_the_command_wins_and_one_before_it_is_kept() -> None:
    from inference_client.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--url", "http://a.example", "--region", "eu-west-1", "status", "k1"])
    assert (before.url, before.region, before.sign, before.http_timeout) == ("http://a.example", "eu-west-1", None, 35)
    both = parser.parse_args(["--url", "http://a.example", "status", "k1", "--url", "http://b.example", "--no-sign"])
    assert (both.url, both.sign) == ("http://b.example", False)
    with pytest.raises(SystemExit):  # still mutually exclusive after the command
        parser.parse_args(["status", "k1", "--sign", "--no-sign"])


class _CountingApi(StubHandler):
    """Accepts a submit after reading its whole body, and remembers how many bytes came."""

    received: list[int]

    def do_POST(self) -> None:
        self.received.append(len(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_json(202, {"inferenceId": "k" + "1" * 32, "status": "InProgress"})


@pytest.fixture
def counting_api() -> Iterator[tuple[str, list[int]]]:
    handler = type("Handler", (_CountingApi,), {"received": []})
    with serving(handler) as url:
        yield url, handler.received


def test_a_large_submit_shows_bytes_sent_and_rate(counting_api: tuple[str, list[int]], tmp_path: Path) -> None:
    url, received = counting_api
    payload = tmp_path / "big.txt"
    payload.write_bytes(b"a" * 3_000_000)
    code, out, err = run_cli("submit", str(payload), "--url", url)
    assert code == 0, err
    assert received == [3_000_000]
    assert json.loads(out)["inferenceId"] == "k" + "1" * 32
    assert re.search(r"uploaded 3\.0 MB / 3\.0 MB \(100%\) at [\d.]+ [KMG]?B/s in [\d.]+ s", err), err
    code, _, err = run_cli("submit", str(payload), "--url", url, "--quiet")
    assert code == 0 and "uploaded" not in err


def test_the_upload_hook_sees_every_byte_in_order(counting_api: tuple[str, list[int]]) -> None:
    url, received = counting_api
    seen: list[tuple[int, int]] = []
    InferenceClient(url, on_upload_progress=lambda sent, total: seen.append((sent, total))).submit(
        b"x" * 1_000_001, "text/plain"
    )
    assert received == [1_000_001]
    assert seen[0] == (0, 1_000_001) and seen[-1] == (1_000_001, 1_000_001)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen)) and len(seen) > 3


def test_upload_progress_rewrites_one_line_on_a_terminal() -> None:
    from inference_client.cli import UploadProgress

    now = [0.0]
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        now[0] = 0.0
        progress = UploadProgress(stream, clock=lambda: now[0], min_bytes=10)
        for sent in (0, 2_000_000, 4_000_000):
            progress(sent, 4_000_000)
            now[0] += 1.0
    assert terminal.getvalue().count("\r") == 3
    assert "uploading 2.0 MB / 4.0 MB (50%) at 2.0 MB/s" in terminal.getvalue()
    assert log.getvalue() == "uploaded 4.0 MB / 4.0 MB (100%) at 2.0 MB/s in 2.0 s\n"


def test_output_into_a_directory_is_named_by_the_inference_id(tmp_path: Path) -> None:
    from inference_client.cli import emit_result
    from inference_client.client import Result

    err = io.StringIO()
    emit_result(Result(b'{"a": 1}', "application/json", {"inferenceId": "k42"}), f"{tmp_path}/out/", io.StringIO(), err)
    assert (tmp_path / "out" / "k42.json").read_bytes() == b'{"a": 1}'
    assert f"to {tmp_path / 'out' / 'k42.json'}" in err.getvalue()
    emit_result(Result(b"\x89PNG", "image/png", {"inferenceId": "k43"}), str(tmp_path), io.StringIO(), err)
    assert (tmp_path / "k43.png").read_bytes() == b"\x89PNG"
    emit_result(Result(b"plain", "text/plain", {"inferenceId": "k44"}), str(tmp_path / "named.txt"), io.StringIO(), err)
    assert (tmp_path / "named.txt").read_bytes() == b"plain"


def test_binary_output_is_not_dumped_on_a_terminal() -> None:
    from inference_client.cli import UsageError, emit_result
    from inference_client.client import Result

    with pytest.raises(UsageError, match=r"4 bytes of image/png: save it with -o FILE, or -o DIR/ for DIR/k45"):
        emit_result(Result(b"\x89PNG", "image/png", {"inferenceId": "k45"}), None, _Terminal(), io.StringIO())


def test_an_upload_through_the_presigned_flow_reports_progress(healthy_pipeline: LocalPipeline, s3: Any) -> None:
    """Whatever carries the upload (the API's presigned grant), the hook sees it go out whole."""
    payload = json.dumps({"inputs": unique_text("upload progress"), "padding": "a" * 150_000}).encode()
    seen: list[tuple[int, int]] = []
    client = InferenceClient(
        str(healthy_pipeline.api_url), on_upload_progress=lambda sent, total: seen.append((sent, total))
    )
    accepted = client.submit(payload, "application/json", force_upload=True)
    assert _receipt(s3, healthy_pipeline, accepted["inferenceId"])["uploadId"]
    totals = {total for _, total in seen}
    assert len(totals) == 1 and totals.pop() >= len(payload), seen[-3:]  # one body: the upload (a form adds fields)
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1], seen[-3:]
