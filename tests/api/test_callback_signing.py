"""Callback signatures per Standard Webhooks (https://www.standardwebhooks.com/), checked
against an independent implementation (the `standardwebhooks` PyPI package), and the
delivery's connection: to the checked address, with the URL's host in SNI and Host."""

from __future__ import annotations

import base64
import datetime
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import standardwebhooks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api_handler.async_api import webhooks
from api_handler.async_api.callback_url import CallbackPolicy, parse_target
from api_handler.notifier import delivery
from inference_client.listen import InvalidSignature, verify_delivery

SECRET = base64.b64encode(os.urandom(32)).decode()
BODY = b'{"type":"inference.completed","data":{"inferenceId":"r' + b"0" * 32 + b'","status":"Completed"}}'


def test_our_signature_verifies_with_the_standardwebhooks_package():
    now = int(time.time())
    headers = webhooks.signed_headers(SECRET, "msg_abc", now, BODY)
    assert headers["webhook-signature"].startswith("v1,")
    for secret in (SECRET, "whsec_" + SECRET):  # with or without the prefix
        assert standardwebhooks.Webhook(secret).verify(BODY, headers)["data"]["status"] == "Completed"


def test_standardwebhooks_signature_verifies_with_ours_and_with_the_cli_sample():
    sender = standardwebhooks.Webhook("whsec_" + SECRET)
    now = datetime.datetime.now(datetime.UTC)
    headers = {
        "webhook-id": "msg_xyz",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sender.sign("msg_xyz", now, BODY.decode()),
    }
    assert webhooks.verify(SECRET, headers, BODY, now=time.time()) == "msg_xyz"
    assert verify_delivery("whsec_" + SECRET, headers, BODY) == "msg_xyz"


def test_tampering_wrong_secret_and_stale_timestamps_fail():
    now = int(time.time())
    headers = webhooks.signed_headers(SECRET, "msg_abc", now, BODY)
    other = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(webhooks.SignatureError, match="no webhook-signature matches"):
        webhooks.verify(SECRET, headers, BODY.replace(b"Completed", b"Failed"), now=now)
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify(other, headers, BODY, now=now)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(BODY, headers)
    stale = webhooks.signed_headers(SECRET, "msg_abc", now - 600, BODY)
    with pytest.raises(webhooks.SignatureError, match="more than 300 s"):
        webhooks.verify(SECRET, stale, BODY, now=now)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(SECRET).verify(BODY, stale)
    with pytest.raises(InvalidSignature):
        verify_delivery(SECRET, {**headers, "webhook-id": "msg_other"}, BODY)


def test_short_or_non_base64_secrets_are_refused():
    with pytest.raises(webhooks.SignatureError, match="not base64"):
        webhooks.signature("not*base64!", "m", 1, b"")
    with pytest.raises(webhooks.SignatureError, match="at least 24"):
        webhooks.signature(base64.b64encode(b"short").decode(), "m", 1, b"")


def test_a_secret_as_secrets_manager_generates_it_is_a_valid_key():
    # GenerateSecretString with ExcludePunctuation, 48 characters: letters and digits only,
    # which is valid base64 (36 bytes) for every Standard Webhooks library.
    generated = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3"
    assert len(generated) == 48
    headers = webhooks.signed_headers(generated, "msg_1", int(time.time()), BODY)
    assert standardwebhooks.Webhook(generated).verify(BODY, headers)


# ----------------------------------------------------------------------------- connection
def _certificate(tmp: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_delivery_connects_to_the_checked_address_with_the_urls_host(tmp_path: Path):
    """The name never gets resolved again: the connection goes to the given address, TLS
    checks the certificate for the URL's host (SNI), and Host names it."""
    host = "hooks.example.com"
    cert, key = _certificate(tmp_path, host)
    seen: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            seen["host"] = self.headers["Host"]
            seen["agent"] = self.headers["User-Agent"]
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        target = parse_target(f"https://{host}:{port}/hook", CallbackPolicy())
        client = ssl.create_default_context(cafile=str(cert))
        outcome = delivery.post(
            target, "127.0.0.1", {"webhook-id": "m"}, b"{}", connect_timeout=2, read_timeout=2, ssl_context=client
        )
        assert outcome.delivered, outcome
        assert seen == {"sni": host, "host": f"{host}:{port}", "agent": delivery.USER_AGENT, "body": b"{}"}
        # A certificate for another name fails (no answer: retried later, never sent in clear).
        wrong = parse_target(f"https://other.example.com:{port}/hook", CallbackPolicy())
        failed = delivery.post(wrong, "127.0.0.1", {}, b"{}", connect_timeout=2, read_timeout=2, ssl_context=client)
        assert failed.status is None and failed.retryable and "CERTIFICATE" in (failed.error or "").upper()
    finally:
        server.shutdown()
        server.server_close()


def test_timeouts_are_bounded_and_retryable():
    # A listener that accepts but never answers: the read timeout ends the attempt.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        target = parse_target(f"http://127.0.0.1:{silent.getsockname()[1]}/", CallbackPolicy(allow_loopback_http=True))
        outcome = delivery.post(target, "127.0.0.1", {}, b"{}", connect_timeout=1, read_timeout=0.5)
        assert outcome.status is None and outcome.retryable and "timed out" in (outcome.error or "")
    finally:
        silent.close()


def test_the_documented_verification_sample_works():
    """docs/api.md's Python sample, run as written, on deliveries signed by the notifier's code
    and by the standardwebhooks package."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "def verify(secret" in b]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "docs/api.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    now = int(time.time())
    assert verify(SECRET, webhooks.signed_headers(SECRET, "msg_doc", now, BODY), BODY) == "msg_doc"
    moment = datetime.datetime.now(datetime.UTC)
    theirs = {
        "webhook-id": "msg_std",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(SECRET).sign("msg_std", moment, BODY.decode()),
    }
    assert verify("whsec_" + SECRET, theirs, BODY) == "msg_std"
    with pytest.raises(ValueError, match="bad signature"):
        verify(SECRET, webhooks.signed_headers(SECRET, "msg_doc", now, BODY), BODY + b" ")
    with pytest.raises(ValueError, match="replay"):
        verify(SECRET, webhooks.signed_headers(SECRET, "msg_doc", now - 3600, BODY), BODY)
