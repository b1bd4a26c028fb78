"""`inference-client listen`: verifies signatures, answers 401 to forgeries, 503 while told to
fail, and exits after --count accepted events; `--callback` reaches the request."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time

import httpx

from api_handler.async_api import webhooks
from inference_client import cli
from local_stack.processes import free_port
from tests.http_stub import StubHandler, serving
from tests.processes import wait_for

SECRET = base64.b64encode(os.urandom(32)).decode()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def test_listen_verifies_and_exits_after_count():
    port = free_port()
    out, err = io.StringIO(), io.StringIO()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            cli.main(
                [
                    "listen",
                    "--port",
                    str(port),
                    "--secret",
                    "whsec_" + SECRET,
                    "--fail-first",
                    "1",
                    "--count",
                    "1",
                    "--timeout",
                    "30",
                ],
                stdout=out,
                stderr=err,
            )
        )
    )
    thread.start()
    wait_for(lambda: _accepts(port), timeout=10, what="listen to open its port")
    url = f"http://127.0.0.1:{port}/hook"
    body = json.dumps(
        {"type": "inference.completed", "data": {"inferenceId": "r" + "1" * 32, "status": "Completed"}}
    ).encode()
    forged = httpx.post(
        url,
        content=body,
        headers={"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    signed = webhooks.signed_headers(SECRET, "msg_1", int(time.time()), body)
    assert httpx.post(url, content=body, headers=signed).status_code == 503  # --fail-first 1
    assert httpx.post(url, content=body, headers=signed).status_code == 204
    thread.join(timeout=10)
    assert result == [0]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("REFUSED (401)")
    assert "answered 503" in lines[1]
    assert lines[2] == f"msg_1: inference.completed r{'1' * 32} Completed"


def test_listen_needs_a_secret(monkeypatch):
    monkeypatch.delenv("CALLBACK_SECRET", raising=False)
    err = io.StringIO()
    assert cli.main(["listen", "--port", "0"], stdout=io.StringIO(), stderr=err) == 2
    assert "secret" in err.getvalue()


def test_submit_sends_the_callback_header():
    seen: dict[str, str] = {}

    class Api(StubHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.update({k.lower(): v for k, v in self.headers.items()})
            self.send_json(202, {"inferenceId": "r" + "2" * 32, "status": "InProgress"})

    out = io.StringIO()
    with serving(Api) as url:
        argv = ["--url", url, "invoke", "--text", "hi", "--callback", "https://hooks.example.com/done"]
        code = cli.main(argv, stdout=out, stderr=io.StringIO())
    assert code == 0, out.getvalue()
    assert seen["x-callback-url"] == "https://hooks.example.com/done"
